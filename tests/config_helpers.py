"""Helpers of the config tests (test_config.py, test_config_settings.py)."""

import dataclasses


def comparable(settings):
    return dataclasses.replace(settings, source="")
