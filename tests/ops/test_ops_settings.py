"""Settings for running seedbot for real: log format, retention, multi-workspace Slack."""

from __future__ import annotations

import pytest

from adapters.runtime import check_platforms
from bot.config import ConfigError, load_settings


def test_defaults_keep_text_logs_and_ninety_days() -> None:
    settings = load_settings(_env_file=None)
    assert (settings.log_format, settings.log_level, settings.retention_days) == ("text", "WARNING", 90)
    assert not settings.slack_installs and settings.workspace_scoped_platforms == frozenset()


@pytest.mark.parametrize(("name", "value"), [("SEEDBOT_LOG_FORMAT", "xml"), ("SEEDBOT_LOG_LEVEL", "LOUD"),
                                             ("SEEDBOT_RETENTION_DAYS", "-1")])
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}:"):
        load_settings(_env_file=None, **{name: value})


def test_the_install_flow_needs_id_secret_and_scopes_and_no_bot_token() -> None:
    full = {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s", "SLACK_SCOPES": "chat:write"}
    assert load_settings(_env_file=None, **full).slack_installs
    assert load_settings(_env_file=None, **full).workspace_scoped_platforms == {"slack"}
    # Client id and secret alone serve "Sign in with Slack", not installs.
    assert not load_settings(_env_file=None, SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="s").slack_installs
    assert not load_settings(_env_file=None, SLACK_BOT_TOKEN="xoxb-1", **full).slack_installs
    with pytest.raises(ConfigError, match="^SLACK_SIGNING_SECRET"):
        check_platforms(load_settings(_env_file=None, **full))
    check_platforms(load_settings(_env_file=None, SLACK_SIGNING_SECRET="x", **full))
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SCOPES"):
        check_platforms(load_settings(_env_file=None, SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="s"))
