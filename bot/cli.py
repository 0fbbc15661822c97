"""`seedbot`: run the bot, ask a question, manage the database."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from bot.app import build_core
from bot.config import ConfigError, Settings, load_settings
from bot.domain import NANOS_PER_USD, Attachment, AttachmentKind, Incoming, Platform, ThreadKey
from bot.terminal import TerminalSink

app = typer.Typer(help="seedbot: code answers and diff reviews from seed-2-0-code, in Slack, Discord and here.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

CLI_WORKSPACE = "local"
CLI_CHANNEL = "cli"


def _die(message: str, code: int = 1) -> None:
    typer.echo(f"seedbot: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        _die(str(exc), 2)
        raise  # unreachable; keeps type checkers calm


def _read_file(path: Path, settings: Settings) -> Attachment:
    try:
        data = path.read_bytes()
    except OSError as exc:
        _die(f"cannot read {path}: {exc.strerror}")
    if len(data) > settings.max_attachment_bytes:
        _die(f"{path} is {len(data):,} bytes; the limit is {settings.max_attachment_bytes:,} "
             "(SEEDBOT_MAX_ATTACHMENT_BYTES)")
    if b"\x00" in data[:8192]:
        _die(f"{path} looks binary; only text files can be added to a question")
    return Attachment(filename=path.name, kind=AttachmentKind.TEXT, size=len(data), data=data)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question. Use - to read it from standard input.")],
    web: Annotated[bool, typer.Option("--web", help="Let the model search the web.")] = False,
    effort: Annotated[str | None, typer.Option("--effort", help="Reasoning effort: low, medium or high.")] = None,
    no_thinking: Annotated[bool, typer.Option("--no-thinking", help="Answer without thinking first.")] = False,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Add a text file to the question.")] = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Continue the conversation with this id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of streaming.")] = False,
) -> None:
    """Ask seed-2-0-code a question; the answer streams here, budgeted and saved like any chat message."""
    if effort is not None and effort not in ("low", "medium", "high"):
        _die("--effort must be low, medium or high", 2)
    settings = _settings()
    text = sys.stdin.read() if question == "-" else question
    attachments = tuple(_read_file(p, settings) for p in file or [])
    thread_id = thread or uuid.uuid4().hex[:12]
    incoming = Incoming(
        thread=ThreadKey(Platform.CLI, CLI_WORKSPACE, CLI_CHANNEL, thread_id), message_id=uuid.uuid4().hex,
        user_id="cli", user_name="terminal", text=text, attachments=attachments, is_direct=True,
        web_search=web, thinking=False if no_thinking else None, reasoning_effort=effort,
    )
    sink = TerminalSink(quiet=as_json)
    try:
        answer = asyncio.run(_ask(settings, incoming, sink))
    except ConfigError as exc:
        _die(str(exc), 2)
    if sink.failure is not None:
        raise typer.Exit(1)
    if answer is None:
        _die("this message was already answered")
    if as_json:
        usage = answer.usage
        typer.echo(json.dumps({
            "answer": answer.text,
            "usage": {"prompt_tokens": usage.prompt_tokens, "cached_tokens": usage.cached_tokens,
                      "completion_tokens": usage.completion_tokens, "reasoning_tokens": usage.reasoning_tokens},
            "cost_usd": _usd_string(answer.cost_nanos),
            "status": answer.status,
            "thread": thread_id,
        }))
    elif thread is None:
        typer.echo(f"(continue with: seedbot ask --thread {thread_id} \"...\")", err=True)
    if answer.status != "ok":
        raise typer.Exit(1)


async def _ask(settings: Settings, incoming: Incoming, sink: TerminalSink):  # noqa: ANN202
    core = await build_core(settings)
    try:
        return await core.service.handle(incoming, sink)
    finally:
        await core.aclose()


def _usd_string(nanos: int) -> str:
    return format((Decimal(nanos) / NANOS_PER_USD).normalize(), "f")


@app.command()
def run() -> None:
    """Run the bot: every configured platform, the HTTP server (/slack/events, /healthz, /metrics)."""
    from adapters.run import run_until_signalled

    settings = _settings()
    try:
        asyncio.run(run_until_signalled(settings))
    except ConfigError as exc:
        _die(str(exc), 2)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the schema migrations to DATABASE_URL."""
    from bot import migrate

    settings = _settings()
    try:
        migrate.upgrade(settings.database_url, revision)
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        _die(f"migration failed: {type(exc).__name__}: {exc}")
    typer.echo(f"database is at {revision}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()
