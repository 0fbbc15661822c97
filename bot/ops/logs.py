"""Process logging: plain text by default, or one JSON object per line (`SEEDBOT_LOG_FORMAT=json`)
carrying the ids of the answer a line belongs to.

The ids live in a context variable, set once per answer by `answer_context` (the chat service
wraps every `handle` in it). asyncio copies context variables into each task, so every line logged
while that answer runs, in the core or an adapter, carries them without any call site formatting
them. The JSON encoding itself is python-json-logger's: it already handles exceptions, stack info,
timestamps and values json cannot encode, which a hand-written formatter would have to repeat.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from bot.domain import Incoming

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The ids of the answer being worked on in this task, as record attribute name -> value.
_answer_ids: ContextVar[dict[str, str] | None] = ContextVar("seedbot_answer_ids", default=None)


def answer_ids(incoming: Incoming) -> dict[str, str]:
    """The log fields of one message: platform, workspace, channel, thread and message ids (the
    platform's own ids, as in `Incoming.dedup_key`)."""
    key = incoming.thread
    # Suffixed `_id`: `thread` and `message` are LogRecord's own attributes (thread ident, final text).
    return {"platform": key.platform.value, "workspace_id": key.workspace_id, "channel_id": key.channel_id,
            "thread_id": key.thread_id, "message_id": incoming.message_id}


@contextmanager
def answer_context(incoming: Incoming) -> Iterator[None]:
    """Every line logged inside (and in tasks started inside) carries `incoming`'s ids."""
    token = _answer_ids.set(answer_ids(incoming))
    try:
        yield
    finally:
        _answer_ids.reset(token)


class SecretMaskingFilter(logging.Filter):
    """Masks secrets with `mask` (text -> text: bot.chat.redaction.redact, passed in by the process that
    configures logging) in each record's message, arguments included, and traceback, so that an error quoting
    what it was given (a provider's refusal, a library's exception) writes no secret into the log. It never drops
    a record. Runs on the handler, once per record written."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a call whose arguments do not fit its format: the handler reports it
            return True
        record.msg, record.args = self._mask(message), None
        if record.exc_info:
            # The text formatter writes exc_text when it is set; the JSON one only once exc_info is gone.
            record.exc_text = self._mask("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self._mask(record.stack_info)
        return True


class AnswerContextFilter(logging.Filter):
    """Copies the current answer's ids onto each record as attributes (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_answer_ids.get() or {}).items():
            setattr(record, name, value)
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per line: timestamp, level, logger, message, the answer's ids when inside one,
    exc_info as a string when there is a traceback."""
    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp=True,
                         rename_fields={"levelname": "level", "name": "logger"})


# The least each library logs at, whatever SEEDBOT_LOG_LEVEL says. At DEBUG, Bolt's Socket Mode client and
# discord.py's gateway log whole event payloads (a message's text, before seedbot masks a pasted secret),
# slack_sdk and aiohttp requests and responses (tokens), aiosqlite every statement with its parameters; at
# INFO, SQLAlchemy does the same (message content, installation tokens). DEBUG is for seedbot's own loggers.
LIBRARY_LEVELS = {"slack_bolt": logging.INFO, "slack_sdk": logging.INFO, "discord": logging.INFO,
                  "aiohttp": logging.INFO, "aiosqlite": logging.INFO, "sqlalchemy": logging.WARNING}


def configure_logging(log_format: str, level: str, *, mask: Callable[[str], str]) -> None:
    """Replace the root logger's handlers with one stderr handler in `log_format` ("text" or "json") at
    `level`; the libraries of LIBRARY_LEVELS log at their floor or above; every line is masked by `mask`
    (SecretMaskingFilter)."""
    handler = logging.StreamHandler()
    handler.addFilter(LibraryFloorFilter())
    handler.addFilter(AnswerContextFilter())
    handler.addFilter(SecretMaskingFilter(mask))
    handler.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    root_level = logging.getLogger().level
    # Spares the libraries formatting what the filter would drop; the filter is what holds, since Bolt
    # gives its app logger the root's level of its own accord (slack_bolt/logger).
    for name, floor in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(max(floor, root_level))


def writes_json() -> bool:
    """Whether the root logger writes JSON lines (configure_logging("json", ...) ran), so that a command's last
    words go out as one more JSON record rather than a plain line a log pipeline cannot parse."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)


class LibraryFloorFilter(logging.Filter):
    """Drops a record of a LIBRARY_LEVELS library (or of a logger below it) under that library's floor."""

    def filter(self, record: logging.LogRecord) -> bool:
        library = record.name.partition(".")[0]
        return record.levelno >= LIBRARY_LEVELS.get(library, logging.NOTSET)
