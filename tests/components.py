"""Skipping a test whose outside component (a mail client, a system tool, inotify) is
missing, except in CI.

On a developer's machine such a test skips and says what to install.  `.ci/run`
installs every component and sets CLEVERMAIL_REQUIRE_COMPONENTS=1: there a missing
component is a failure, so a broken install can never turn into a quiet row of skips.
"""

import os

import pytest

REQUIRE_ENV = "CLEVERMAIL_REQUIRE_COMPONENTS"


def component_missing(why):
    """Skip the calling test because of `why`, or fail it where components are required."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{why} ({REQUIRE_ENV} is set: CI must provide it)", pytrace=False)
    pytest.skip(why)
