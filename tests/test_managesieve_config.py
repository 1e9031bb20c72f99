"""The [managesieve] listener in the config schema: off by default, a listener of its
own kind when set, its own idle timeout, and one unit of dist/systemd's per kind."""

from clevermail.activation import KINDS
from clevermail.config import load_config, render_defaults
from clevermail.settings import Listener


def test_off_by_default():
    settings = load_config(path=None)
    assert [listener for listener in settings.listeners if listener.protocol == "managesieve"] == []
    assert settings.limits["managesieve"].timeout == 600
    assert "[managesieve]\n" in render_defaults()


def test_a_listener_when_set(make_config, tmp_path):
    settings = make_config(tmp_path, managesieve={"listen": ["127.0.0.1:4190", "[::1]:4190"]},
                           limits={"managesieve_timeout": 42})
    ours = [listener for listener in settings.listeners if listener.protocol == "managesieve"]
    assert ours == [Listener("managesieve", "managesieve", ("127.0.0.1", 4190), False),
                    Listener("managesieve", "managesieve", ("::1", 4190), False)]
    assert settings.limits["managesieve"].timeout == 42
    assert "managesieve" in KINDS       # socket activation matches it by name
