from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.budget.limits import BudgetLimit, Period, parse_budget
from bot.config import ConfigError, load_settings


def test_defaults_are_the_documented_ones() -> None:
    settings = load_settings(_env_file=None)
    assert settings.seed_base_url == "https://api.empiriolabs.ai/v1"
    assert settings.seed_model == "seed-2-0-code"
    assert settings.database_url.startswith("sqlite")
    assert settings.context_tokens == 120_000
    assert settings.default_budget == BudgetLimit(5_000_000_000, Period.DAY)
    assert settings.global_budget_limit.unlimited
    assert settings.seed_price_cached_input_per_m is None
    assert settings.default_user_budget.unlimited and settings.degrade is True
    assert load_settings(_env_file=None, SEEDBOT_DEFAULT_USER_BUDGET="1/day",
                         SEEDBOT_DEGRADE="false").degrade is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEED_PRICE_INPUT_PER_M", "cheap"),
        ("SEED_PRICE_OUTPUT_PER_M", "-1"),
        ("SEEDBOT_DEFAULT_CHANNEL_BUDGET", "five dollars"),
        ("SEEDBOT_DEFAULT_USER_BUDGET", "a lot"),
        ("SEEDBOT_DEGRADE", "maybe"),
        ("SEEDBOT_TIMEZONE", "Mars/Olympus"),
        ("SEEDBOT_CONTEXT_TOKENS", "many"),
        ("DISCORD_SHARD_IDS", "0,one"),
        ("SEED_BASE_URL", "notaurl"),
        ("SLACK_API_URL", "ftp://slack.com/api/"),
        ("DATABASE_URL", "mysql://root@db/seed"),
        ("DATABASE_URL", "postgresql://user:S3cretPw@127.0.0.1:99999/x"),
        ("DATABASE_URL", "postgresql://user@127.0.0.1:port/x"),
        ("SEEDBOT_ADMINS", "bogus"),
        ("SEEDBOT_ADMINS", "slack:U1,,discord"),
        ("SEEDBOT_ADMINS", "teams:U1"),
    ],
)
def test_a_malformed_value_is_one_line_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **{name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_admins_are_read_as_addresses_in_the_order_written_each_once() -> None:
    settings = load_settings(_env_file=None, SEEDBOT_ADMINS=" slack:U1, discord:42,slack:T1:U2 ,slack:U1")
    assert settings.admin_ids == ("slack:U1", "discord:42", "slack:T1:U2")


def test_missing_key_is_named() -> None:
    with pytest.raises(ConfigError, match="^SEED_API_KEY"):
        load_settings(_env_file=None).require_api_key()


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("5/day", BudgetLimit(5_000_000_000, Period.DAY)),
        ("$12.50/week", BudgetLimit(12_500_000_000, Period.WEEK)),
        ("100/month", BudgetLimit(100_000_000_000, Period.MONTH)),
        ("0.25", BudgetLimit(250_000_000, Period.DAY)),
        ("none", BudgetLimit(None)),
    ],
)
def test_budget_parsing(text: str, limit: BudgetLimit) -> None:
    assert parse_budget(text) == limit


def test_the_cli_reports_a_bad_setting_in_one_line_without_a_traceback(tmp_path) -> None:  # noqa: ANN001
    env = {**os.environ, "SEED_API_KEY": "k", "SEED_PRICE_INPUT_PER_M": "cheap"}
    result = subprocess.run([sys.executable, "-m", "adapters.cli", "ask", "hi"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "seedbot: SEED_PRICE_INPUT_PER_M: Input should be a valid decimal"
    assert "Traceback" not in result.stderr
