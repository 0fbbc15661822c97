"""Every setting seedbot reads, in one place. Nothing else reads the environment.

Settings come from the environment and an optional `.env` file. `load_settings()` turns a bad value
into one `ConfigError` line that names the variable, so the CLI never shows a traceback for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain import NANOS_PER_USD


class ConfigError(Exception):
    """A setting is missing or malformed. The message is one line naming the variable."""


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """A spending limit per period. `limit_nanos is None` means unlimited."""

    limit_nanos: int | None
    period: Period = Period.DAY

    @property
    def unlimited(self) -> bool:
        return self.limit_nanos is None

    def describe(self) -> str:
        if self.limit_nanos is None:
            return "unlimited"
        dollars = Decimal(self.limit_nanos) / NANOS_PER_USD
        return f"${dollars.normalize():f}/{self.period.value}"


_BUDGET_RE = re.compile(r"^\$?\s*(\d+(?:\.\d+)?)\s*(?:/\s*(day|week|month|daily|weekly|monthly))?$")
_PERIOD_ALIASES = {"daily": "day", "weekly": "week", "monthly": "month"}
# Far above any real chat budget and far below what a 64-bit nano-dollar counter holds ($9.2 billion),
# so sums of spent and reserved amounts never overflow the database column.
MAX_BUDGET_USD = 1_000_000


def parse_budget(text: str) -> BudgetLimit:
    """`5/day`, `$12.50/week`, `100/month`, `none` (unlimited). A bare amount is per day."""
    value = text.strip().lower()
    if value in ("none", "unlimited", "off"):
        return BudgetLimit(None)
    match = _BUDGET_RE.match(value)
    if not match:
        raise ValueError(f"{text!r} is not a budget; write it like 5/day, 12.50/week, 100/month or none")
    amount = Decimal(match.group(1))
    period = _PERIOD_ALIASES.get(match.group(2) or "day", match.group(2) or "day")
    nanos = amount * NANOS_PER_USD
    if amount > MAX_BUDGET_USD or nanos != nanos.to_integral_value():
        raise ValueError(f"{text!r} is out of range: a budget is $0 to ${MAX_BUDGET_USD:,} per {period}, "
                         "in steps of at most a nano-dollar ($0.000000001), or none")
    return BudgetLimit(int(nanos), Period(period))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # The Seed endpoint
    seed_api_key: SecretStr | None = Field(default=None, alias="SEED_API_KEY")
    seed_base_url: str = Field(default="https://api.empiriolabs.ai/v1", alias="SEED_BASE_URL")
    seed_model: str = Field(default="seed-2-0-code", alias="SEED_MODEL")
    seed_timeout_seconds: float = Field(default=120.0, gt=0, alias="SEED_TIMEOUT_SECONDS")
    seed_max_retries: int = Field(default=3, ge=0, le=10, alias="SEED_MAX_RETRIES")
    seed_max_tokens: int = Field(default=4096, ge=1, le=65536, alias="SEED_MAX_TOKENS")

    # Prices per 1M tokens, USD
    seed_price_input_per_m: Decimal = Field(default=Decimal("0.40"), ge=0, alias="SEED_PRICE_INPUT_PER_M")
    seed_price_output_per_m: Decimal = Field(default=Decimal("2.40"), ge=0, alias="SEED_PRICE_OUTPUT_PER_M")
    seed_price_input_long_per_m: Decimal = Field(
        default=Decimal("0.80"), ge=0, alias="SEED_PRICE_INPUT_LONG_PER_M"
    )
    seed_price_output_long_per_m: Decimal = Field(
        default=Decimal("4.80"), ge=0, alias="SEED_PRICE_OUTPUT_LONG_PER_M"
    )
    seed_price_cached_input_per_m: Decimal | None = Field(
        default=None, ge=0, alias="SEED_PRICE_CACHED_INPUT_PER_M"
    )
    seed_price_web_search_per_call: Decimal = Field(
        default=Decimal("0"), ge=0, alias="SEED_PRICE_WEB_SEARCH_PER_CALL"
    )
    seed_long_context_threshold: int = Field(default=128_000, gt=0, alias="SEED_LONG_CONTEXT_THRESHOLD")

    # Storage
    database_url: str = Field(default="sqlite+aiosqlite:///seedbot.db", alias="DATABASE_URL")

    # Conversation
    context_tokens: int = Field(default=120_000, ge=2_000, alias="SEEDBOT_CONTEXT_TOKENS")
    token_safety_factor: float = Field(default=1.25, ge=1.0, le=4.0, alias="SEEDBOT_TOKEN_SAFETY_FACTOR")
    default_reasoning_effort: str = Field(default="medium", alias="SEEDBOT_REASONING_EFFORT")
    max_attachment_bytes: int = Field(default=1_048_576, gt=0, alias="SEEDBOT_MAX_ATTACHMENT_BYTES")
    max_image_bytes: int = Field(default=5_242_880, gt=0, alias="SEEDBOT_MAX_IMAGE_BYTES")
    min_answer_tokens: int = Field(default=256, ge=1, alias="SEEDBOT_MIN_ANSWER_TOKENS")
    # Mask secrets in messages and text files before they are stored or sent to the model.
    redact_input: bool = Field(default=True, alias="SEEDBOT_REDACT_INPUT")

    # Budgets
    default_channel_budget: str = Field(default="5.00/day", alias="SEEDBOT_DEFAULT_CHANNEL_BUDGET")
    global_budget: str = Field(default="none", alias="SEEDBOT_GLOBAL_BUDGET")
    default_user_budget: str = Field(default="none", alias="SEEDBOT_DEFAULT_USER_BUDGET")
    # Before refusing, turn web search off, then thinking, then shrink max_tokens; false: only shrink.
    degrade: bool = Field(default=True, alias="SEEDBOT_DEGRADE")
    reservation_ttl_seconds: int = Field(default=900, gt=0, alias="SEEDBOT_RESERVATION_TTL")
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, alias="SEEDBOT_SHUTDOWN_GRACE")
    timezone: str = Field(default="UTC", alias="SEEDBOT_TIMEZONE")
    admins: str = Field(default="", alias="SEEDBOT_ADMINS")

    # Review
    review_tokens: int = Field(default=100_000, ge=1_000, alias="SEEDBOT_REVIEW_TOKENS")
    review_max_calls: int = Field(default=4, ge=1, le=32, alias="SEEDBOT_REVIEW_MAX_CALLS")

    # HTTP server (Slack events, health, metrics)
    http_host: str = Field(default="0.0.0.0", alias="SEEDBOT_HTTP_HOST")
    http_port: int = Field(default=3000, ge=0, le=65535, alias="SEEDBOT_HTTP_PORT")
    http_read_timeout: float = Field(default=10.0, gt=0, alias="SEEDBOT_HTTP_READ_TIMEOUT")

    # Admin console (/admin on the HTTP server); the public URL is where sign-in links point
    console_enabled: bool = Field(default=True, alias="SEEDBOT_CONSOLE")
    public_url: str | None = Field(default=None, alias="SEEDBOT_PUBLIC_URL")

    # Slack
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    # Multi-workspace install (Slack's OAuth flow): all three, and no SLACK_BOT_TOKEN.
    slack_client_id: str | None = Field(default=None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, alias="SLACK_CLIENT_SECRET")
    slack_scopes: str = Field(default="", alias="SLACK_SCOPES")

    # Discord
    discord_bot_token: SecretStr | None = Field(default=None, alias="DISCORD_BOT_TOKEN")
    discord_api_url: str = Field(default="https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    discord_shard_count: int | None = Field(default=None, ge=1, alias="DISCORD_SHARD_COUNT")
    discord_shard_ids: str = Field(default="", alias="DISCORD_SHARD_IDS")
    discord_edit_interval: float = Field(default=1.0, gt=0, alias="DISCORD_EDIT_INTERVAL")
    discord_guild_ids: str = Field(default="", alias="DISCORD_GUILD_IDS")

    # Admin reports
    report_time: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", alias="SEEDBOT_REPORT_TIME")

    # Operations
    retention_days: int = Field(default=90, ge=0, alias="SEEDBOT_RETENTION_DAYS")
    log_format: Literal["text", "json"] = Field(default="text", alias="SEEDBOT_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="WARNING", alias="SEEDBOT_LOG_LEVEL")

    @field_validator("default_channel_budget", "global_budget", "default_user_budget")
    @classmethod
    def _valid_budget(cls, value: str) -> str:
        parse_budget(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from exc
        return value

    @field_validator("default_reasoning_effort")
    @classmethod
    def _valid_effort(cls, value: str) -> str:
        if value not in ("low", "medium", "high"):
            raise ValueError("must be low, medium or high")
        return value

    @field_validator("discord_shard_ids", "discord_guild_ids")
    @classmethod
    def _valid_id_list(cls, value: str) -> str:
        if any(not part.strip().isdigit() for part in value.split(",") if part.strip()):
            raise ValueError("must be a comma-separated list of numbers")
        return value

    @property
    def discord_shard_id_list(self) -> list[int] | None:
        return [int(p) for p in self.discord_shard_ids.split(",") if p.strip()] or None

    @property
    def discord_guild_id_list(self) -> list[int]:
        return [int(p) for p in self.discord_guild_ids.split(",") if p.strip()]

    @property
    def slack_installs(self) -> bool:
        """Whether Slack workspaces install the app through OAuth (many workspaces, tokens in the
        database) instead of one SLACK_BOT_TOKEN. Client id and secret alone do not: they also serve
        "Sign in with Slack"."""
        return (self.slack_bot_token is None and bool(self.slack_client_id) and self.slack_client_secret is not None
                and bool(self.slack_scopes.strip()))

    @property
    def workspace_scoped_platforms(self) -> frozenset[str]:
        """Platforms whose ids carry the workspace (`slack:T0123:C0456`) because several of their
        workspaces share this deployment."""
        return frozenset({"slack"}) if self.slack_installs else frozenset()

    @property
    def default_budget(self) -> BudgetLimit:
        return parse_budget(self.default_channel_budget)

    @property
    def default_user_budget_limit(self) -> BudgetLimit:
        """Each person's limit in a channel whose admins set none (`/seed budget user ...`)."""
        return parse_budget(self.default_user_budget)

    @property
    def global_budget_limit(self) -> BudgetLimit:
        return parse_budget(self.global_budget)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def admin_ids(self) -> frozenset[str]:
        """`slack:U0123,discord:4567` -> {"slack:U0123", "discord:4567"}."""
        return frozenset(part.strip() for part in self.admins.split(",") if part.strip())

    def require_api_key(self) -> str:
        if self.seed_api_key is None or not self.seed_api_key.get_secret_value():
            raise ConfigError("SEED_API_KEY is not set: export SEED_API_KEY=<your key> (or put it in .env)")
        return self.seed_api_key.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning validation errors into one readable line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "a setting"
        env_name = _env_name(name)
        raise ConfigError(f"{env_name}: {_clean(first.get('msg', 'invalid value'))}") from None
    except (InvalidOperation, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _env_name(field_or_alias: str) -> str:
    if field_or_alias.isupper():
        return field_or_alias
    field = Settings.model_fields.get(field_or_alias)
    return field.alias if field and field.alias else field_or_alias.upper()


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")
