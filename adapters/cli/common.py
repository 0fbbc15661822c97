"""What every `seedbot` command shares: one-line errors and settings loaded once per command."""

from __future__ import annotations

import logging
from typing import NoReturn

import typer

from bot.chat.redaction import redact
from bot.config import ConfigError, Settings, load_settings
from bot.ops.logs import configure_logging, writes_json


def die(message: str, code: int = 1) -> NoReturn:
    """End the command with `last_words(message)` and exit status `code` (2: a usage error)."""
    last_words(message)
    raise typer.Exit(code)


def last_words(message: str) -> None:
    """A command's fatal error: `seedbot: message` on stderr, or with SEEDBOT_LOG_FORMAT=json (once the
    settings are loaded) a CRITICAL record, so that every line a log collector reads is JSON."""
    if writes_json():
        logging.getLogger("seedbot").critical(message)
    else:
        typer.echo(f"seedbot: {message}", err=True)


def settings_from_env(*, quiet: bool = False) -> Settings:
    """The settings from the environment and .env, logging configured; a bad value ends the command
    with one line naming the variable (exit status 2). `quiet` is for a command whose output is the
    conversation itself (`ask`): it logs errors only, so a retried model call does not print warnings
    around the answer, unless SEEDBOT_LOG_LEVEL is set."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        die(str(exc), 2)
    level = "ERROR" if quiet and "log_level" not in settings.model_fields_set else settings.log_level
    configure_logging(settings.log_format, level, mask=redact)
    return settings
