"""Every setting seedbot reads, in one place. Nothing else reads the environment.

Settings come from the environment and an optional `.env` file. `load_settings()` turns a bad value
into one `ConfigError` line that names the variable, so the CLI never shows a traceback for it.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.budget.limits import BudgetLimit, parse_budget
from bot.domain import Address, Effort
from bot.storage.engine import ASYNC_DRIVERS, ASYNCPG_URL_PARAMETERS, POOL_SIZE, normalise_url


class ConfigError(Exception):
    """A setting is missing or malformed. The message is one line naming the variable."""


def _admin_list(value: object) -> object:
    """`slack:U0123, discord:4567` -> ("slack:U0123", "discord:4567"): in the order written (the first
    admin is the default for `seedbot admin link`), each once. Each must be a person's address
    (bot.domain.Address: platform:id or platform:workspace:id); anything else is refused with that shape."""
    if isinstance(value, str):
        parts = (part.strip() for part in value.split(","))
        return tuple(dict.fromkeys(str(Address.parse(part)) for part in parts if part))
    return value


def _comma_ints(value: object) -> object:
    """`1,2, 3` -> (1, 2, 3); anything but digits and commas is refused."""
    if not isinstance(value, str):
        return value
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if any(not part.isdigit() for part in parts):
        raise ValueError("must be a comma-separated list of numbers")
    return tuple(int(part) for part in parts)


def _budget(value: object) -> object:
    return parse_budget(value) if isinstance(value, str) else value


def _zone(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from exc


def _database_url(value: object) -> object:
    """A DATABASE_URL SQLAlchemy can parse, for SQLite or PostgreSQL through the drivers installed
    (aiosqlite, asyncpg); anything else would fail later with a traceback from deep in the engine."""
    if not isinstance(value, str):
        return value
    try:
        url = make_url(normalise_url(value))
        port = url.port
    except (ArgumentError, ValueError):
        raise ValueError("is not a database URL (write sqlite+aiosqlite:///path.db or postgresql://...)") from None
    if url.host and "@" in url.host:  # the password's tail: never echo it
        raise ValueError("holds an @ after the password's first one: write an @ inside the password as %40")
    if url.drivername not in ASYNC_DRIVERS.values():
        raise ValueError(f"{url.drivername!r} is not supported: use sqlite+aiosqlite:///path.db or postgresql://...")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not a TCP port (1-65535)")
    if url.drivername == ASYNC_DRIVERS["postgresql"] and (unknown := sorted(set(url.query) - ASYNCPG_URL_PARAMETERS)):
        raise ValueError(f"{', '.join(unknown)}: seedbot reaches PostgreSQL through asyncpg, whose URL takes "
                         f"{', '.join(sorted(ASYNCPG_URL_PARAMETERS))} (and libpq's sslmode)")
    return value


def _http_url(value: object) -> object:
    """An http:// or https:// URL with a host (the Seed endpoint, Slack's API): a typo here would
    otherwise read as "the service is unreachable"."""
    if isinstance(value, str):
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("must be an http:// or https:// URL")
    return value


# Settings arrive as strings; these parse each once, at load, into the value every component uses.
AdminIds = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_admin_list)]
IdTuple = Annotated[tuple[int, ...], NoDecode, BeforeValidator(_comma_ints)]
Budget = Annotated[BudgetLimit, NoDecode, BeforeValidator(_budget)]
Zone = Annotated[ZoneInfo, NoDecode, BeforeValidator(_zone)]
DatabaseUrl = Annotated[str, BeforeValidator(_database_url)]
HttpUrl = Annotated[str, BeforeValidator(_http_url)]


class Settings(BaseSettings):
    """Every setting, typed and validated once when loaded (`load_settings`); components receive this
    object (or the values they need) and never parse a setting again."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      arbitrary_types_allowed=True)

    # The Seed endpoint
    seed_api_key: SecretStr | None = Field(default=None, alias="SEED_API_KEY")
    seed_base_url: HttpUrl = Field(default="https://api.empiriolabs.ai/v1", alias="SEED_BASE_URL")
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
    database_url: DatabaseUrl = Field(default="sqlite+aiosqlite:///seedbot.db", alias="DATABASE_URL")
    # PostgreSQL connections one process keeps (bot.storage.engine.POOL_SIZE); SQLite has no pool to size.
    database_pool_size: int = Field(default=POOL_SIZE, ge=1, le=1000, alias="SEEDBOT_DATABASE_POOL_SIZE")

    # Conversation
    context_tokens: int = Field(default=120_000, ge=2_000, alias="SEEDBOT_CONTEXT_TOKENS")
    token_safety_factor: float = Field(default=1.25, ge=1.0, le=4.0, alias="SEEDBOT_TOKEN_SAFETY_FACTOR")
    default_reasoning_effort: Effort = Field(default="medium", alias="SEEDBOT_REASONING_EFFORT")
    max_attachment_bytes: int = Field(default=1_048_576, gt=0, alias="SEEDBOT_MAX_ATTACHMENT_BYTES")
    max_image_bytes: int = Field(default=5_242_880, gt=0, alias="SEEDBOT_MAX_IMAGE_BYTES")
    min_answer_tokens: int = Field(default=256, ge=1, alias="SEEDBOT_MIN_ANSWER_TOKENS")
    # Mask secrets in messages and text files before they are stored or sent to the model.
    redact_input: bool = Field(default=True, alias="SEEDBOT_REDACT_INPUT")

    # Budgets
    default_budget: Budget = Field(default=parse_budget("5.00/day"), alias="SEEDBOT_DEFAULT_CHANNEL_BUDGET")
    global_budget_limit: Budget = Field(default=BudgetLimit(None), alias="SEEDBOT_GLOBAL_BUDGET")
    # Each person's limit in a channel whose admins set none (`/seed budget user ...`).
    default_user_budget: Budget = Field(default=BudgetLimit(None), alias="SEEDBOT_DEFAULT_USER_BUDGET")
    # Before refusing, turn web search off, then thinking, then shrink max_tokens; false: only shrink.
    degrade: bool = Field(default=True, alias="SEEDBOT_DEGRADE")
    reservation_ttl_seconds: int = Field(default=900, gt=0, alias="SEEDBOT_RESERVATION_TTL")
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, alias="SEEDBOT_SHUTDOWN_GRACE")
    tz: Zone = Field(default=ZoneInfo("UTC"), alias="SEEDBOT_TIMEZONE")
    admin_ids: AdminIds = Field(default=(), alias="SEEDBOT_ADMINS")

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
    slack_api_url: HttpUrl = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    # Multi-workspace install (Slack's OAuth flow): all three, and no SLACK_BOT_TOKEN. The ID and the
    # secret alone also serve "Sign in with Slack" for the console.
    slack_client_id: str | None = Field(default=None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, alias="SLACK_CLIENT_SECRET")
    slack_scopes: str = Field(default="", alias="SLACK_SCOPES")

    # Discord
    discord_bot_token: SecretStr | None = Field(default=None, alias="DISCORD_BOT_TOKEN")
    discord_api_url: str = Field(default="https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    discord_shard_count: int | None = Field(default=None, ge=1, alias="DISCORD_SHARD_COUNT")
    discord_shard_ids: IdTuple = Field(default=(), alias="DISCORD_SHARD_IDS")
    discord_edit_interval: float = Field(default=1.0, gt=0, alias="DISCORD_EDIT_INTERVAL")
    discord_guild_ids: IdTuple = Field(default=(), alias="DISCORD_GUILD_IDS")

    # Admin reports
    report_time: time = Field(default=time(9, 0), alias="SEEDBOT_REPORT_TIME")

    # Operations
    retention_days: int = Field(default=90, ge=0, alias="SEEDBOT_RETENTION_DAYS")
    log_format: Literal["text", "json"] = Field(default="text", alias="SEEDBOT_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="WARNING", alias="SEEDBOT_LOG_LEVEL")
    event_loop: Literal["uvloop", "asyncio"] = Field(default="uvloop", alias="SEEDBOT_EVENT_LOOP")

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
