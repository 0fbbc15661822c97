"""`seedbot`: run the bot, ask a question, manage the database."""

from __future__ import annotations

import asyncio
import errno
import getpass
import importlib.metadata
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.exc import DBAPIError

from adapters.cli.asking import answer_in_terminal, answer_json
from adapters.cli.common import die, last_words, settings_from_env
from adapters.cli.install import discord_app, slack_app
from adapters.core import Core, build_core
from adapters.terminal.sink import TerminalSink
from bot.budget.scopes import GLOBAL_SCOPE, is_scope_key
from bot.chat.service import Answer
from bot.config import ConfigError, Settings
from bot.domain import Attachment, AttachmentKind, Incoming, Platform, ThreadKey, counted, first_line, format_usd
from bot.ops.chart import render_chart
from bot.ops.logs import TEXT_FORMAT
from bot.ops.reports import SpendReport, parse_report_day, render_summary, runs_out_lines, top_users_line
from bot.storage.engine import database_unreachable

app = typer.Typer(help="seedbot: code answers and diff reviews from seed-2-0-code, in Slack, Discord and here.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
budget_app = typer.Typer(help="Channel budgets.", no_args_is_help=True)
app.add_typer(budget_app, name="budget")
admin_app = typer.Typer(help="The admin console (/admin on the HTTP server).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(slack_app, name="slack")
app.add_typer(discord_app, name="discord")


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"seedbot {importlib.metadata.version('seedbot')}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="Print the version and exit.")] = False) -> None:
    """seedbot: code answers and diff reviews from seed-2-0-code, in Slack, Discord and here."""

T = TypeVar("T")

CLI_WORKSPACE = "local"
CLI_CHANNEL = "cli"


def _read_file(path: Path, settings: Settings) -> Attachment:
    """A --file judged like a file shared in chat; a refused one ends the command with its skip note."""
    from adapters.common.attachments import AttachmentLimits, skipped

    limits = AttachmentLimits(settings.max_attachment_bytes, settings.max_image_bytes)
    try:
        size = path.stat().st_size
        refusal = limits.refuse_before_download(path.name, size)
        data = b"" if refusal else path.read_bytes()
    except OSError as exc:
        die(f"cannot read {path}: {exc.strerror}", 2)
    attachment = skipped(path.name, size, refusal) if refusal else limits.classify(path.name, data)
    if attachment.kind is AttachmentKind.SKIPPED:
        die(f"{path} was skipped: {attachment.skipped_reason}")
    return attachment


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question. Use - to read it from standard input.")],
    web: Annotated[bool, typer.Option("--web", help="Let the model search the web.")] = False,
    effort: Annotated[str | None, typer.Option("--effort", help="Reasoning effort: low, medium or high.")] = None,
    no_thinking: Annotated[bool, typer.Option("--no-thinking", help="Answer without thinking first.")] = False,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Add a text file or image.")] = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Continue the conversation with this id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of streaming.")] = False,
) -> None:
    """Ask seed-2-0-code a question; the answer streams here, budgeted and saved like any chat message."""
    if effort is not None and effort not in ("low", "medium", "high"):
        die("--effort must be low, medium or high", 2)
    if effort is not None and no_thinking:
        # The request would carry no reasoning_effort at all (bot.llm.events.ChatRequest): say so, not ignore it.
        die("--effort sets how long the model thinks, and --no-thinking turns thinking off: give one of them", 2)
    settings = settings_from_env(quiet=True)
    text = sys.stdin.read() if question == "-" else question
    if not text.strip() and not file:
        die("give a question (or - to read it from standard input)", 2)
    attachments = tuple(_read_file(p, settings) for p in file or [])
    thread_id = thread or uuid.uuid4().hex[:12]
    incoming = Incoming(
        thread=ThreadKey(Platform.CLI, CLI_WORKSPACE, CLI_CHANNEL, thread_id), message_id=uuid.uuid4().hex,
        user_id="cli", user_name="terminal", text=text, attachments=attachments, is_direct=True,
        web_search=web, thinking=False if no_thinking else None, reasoning_effort=effort,
    )
    sink = TerminalSink(quiet=as_json)
    try:
        answer = asyncio.run(answer_in_terminal(settings, incoming, sink, continuing=thread is not None))
    except ConfigError as exc:
        die(str(exc), 2)
    if answer is None and sink.failure is None:
        die("this message was already answered")
    if as_json:
        typer.echo(json.dumps(answer_json(answer or Answer(status="failed"), thread_id, sink.failure)))
    elif thread is None and sink.failure is None:
        typer.echo(f"(continue with: seedbot ask --thread {thread_id} \"...\")", err=True)
    if sink.failure is not None or answer is None or answer.status != "ok":
        raise typer.Exit(1)


@app.command()
def run() -> None:
    """Run the bot: every configured platform, the HTTP server (/slack/events, /healthz, /metrics, /admin)."""
    from adapters.runtime import serve

    settings = settings_from_env()
    try:
        serve(settings)
    except ConfigError as exc:
        die(str(exc), 2)


@budget_app.command("set")
def budget_set(
    channel: Annotated[str, typer.Argument(help="platform:channel, e.g. slack:C0123 or discord:4567, or global.")],
    value: Annotated[str, typer.Argument(help="5/day, 12.50/week, 100/month or none.")],
    user: Annotated[str | None, typer.Option(
        "--user", help="A person's own limit in the channel (platform:user, e.g. slack:U0456), "
                       "or '*' for everyone there without one.")] = None,
) -> None:
    """Set a channel's budget (or the global cap, or a person's limit in a channel). Recorded with who and when."""
    from bot.budget.limits import parse_budget
    from bot.budget.scopes import person_scope

    _check_scope(channel)
    scope = channel
    if user is not None:
        channel_platform = channel.partition(":")[0]
        platform, _, user_id = (channel_platform, "", "*") if user == "*" else user.partition(":")
        if channel == "global" or platform != channel_platform or not user_id:
            die(f"--user {user!r}: write a person on the channel's platform, e.g. {channel_platform}:U0456, "
                 "or '*'", 2)
        scope = person_scope(channel, user_id)
    try:
        parse_budget(value)
    except ValueError as exc:
        die(str(exc), 2)
    settings = settings_from_env()

    async def change(core: Core) -> tuple[str, str]:
        return await core.budget.limits.set_limit(scope, value, changed_by=f"cli:{getpass.getuser()}")

    old, new = _with_core(settings, change)
    typer.echo(f"{scope}: {old} → {new}")


@budget_app.command("show")
def budget_show(
    channel: Annotated[str | None, typer.Argument(help="platform:channel or global; all budgets if omitted.")] = None,
) -> None:
    """Show a budget with its spend this period and recent changes, or list every budget."""
    settings = settings_from_env()
    if channel is not None:
        _check_scope(channel)

    async def show(core: Core) -> str:
        if channel is not None:
            return await core.admin.budget_show(channel)
        lines = [f"default for channels: {settings.default_budget.describe()}",
                 f"global cap: {(await core.budget.limits.limit_for_scope(GLOBAL_SCOPE)).describe()}"]
        lines += [f"{scope_key}: {limit.describe()}" for scope_key, limit in await core.budget.limits.explicit_limits()
                  if scope_key != GLOBAL_SCOPE]  # said above, whether set or the default
        return "\n".join(lines)

    typer.echo(_with_core(settings, show))


@admin_app.command("link")
def admin_link(
    as_admin: Annotated[str | None, typer.Option("--as", help="The admin to sign in as, e.g. slack:U0123; "
                                                           "default the first in SEEDBOT_ADMINS.")] = None,
) -> None:
    """Print a one-time sign-in URL for the admin console (valid for 10 minutes, signs in once)."""
    from adapters.web.console import sign_in_url

    settings = settings_from_env()
    admins = list(settings.admin_ids)
    if not admins:
        die("SEEDBOT_ADMINS is empty: list the admins first, e.g. SEEDBOT_ADMINS=slack:U0123", 2)
    admin_id = as_admin or admins[0]
    if admin_id not in settings.admin_ids:
        die(f"{admin_id} is not in SEEDBOT_ADMINS", 2)
    if not settings.console_enabled:
        die("the console is off (SEEDBOT_CONSOLE=false)", 2)

    async def link(core: Core) -> str:
        return await sign_in_url(core, admin_id)

    typer.echo(_with_core(settings, link))


@app.command()
def spend(
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD), default 6 days ago.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, inclusive (YYYY-MM-DD), default today.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Spend from the ledger over a range of days in SEEDBOT_TIMEZONE."""
    settings = settings_from_env()
    today = datetime.now(settings.tz).date()
    last = _parse_day(until, "--until") if until else today
    first = _parse_day(since, "--since") if since else last - timedelta(days=6)
    if first > last:
        die("--since is after --until", 2)

    async def figures(core: Core) -> SpendReport:
        return await core.reports.spend_days(first, last)

    report = _with_core(settings, figures)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
        return
    typer.echo(f"{first} to {last}: {format_usd(report.cost_nanos)} in {counted(report.requests, 'model call')}, "
               f"{counted(report.answers, 'answer')}, {report.refusals} refused for budget, {report.failures} failed")
    for channel in report.channels:
        line = f"  {channel.label:<30} {format_usd(channel.cost_nanos):>12}  {counted(channel.requests, 'call')}"
        if channel.position.forecast_nanos is not None:
            line += f"  month-end forecast {format_usd(channel.position.forecast_nanos)} of {channel.position.budget}"
        typer.echo(line)
    for warning in runs_out_lines(report):
        typer.echo(warning)
    if report.users:
        typer.echo(top_users_line(report))


@app.command()
def report(
    date_: Annotated[str | None, typer.Option("--date", help="The day (YYYY-MM-DD), default yesterday.")] = None,
    send: Annotated[bool, typer.Option("--send", help="Deliver it to the admins now instead of printing.")] = False,
    chart: Annotated[Path | None, typer.Option("--chart", help="Also write the 14-day chart to this PNG file.")]
    = None,
) -> None:
    """Print the daily summary, or deliver it now (once per admin per day, like the scheduled one)."""
    settings = settings_from_env()
    day = _parse_day(date_, "--date") if date_ else datetime.now(settings.tz).date() - timedelta(days=1)
    if chart is not None:

        async def png(core: Core) -> bytes:
            series, labels = await core.reports.chart_data(day)
            return await asyncio.to_thread(render_chart, series, day, labels)

        try:
            chart.write_bytes(_with_core(settings, png))
        except OSError as exc:
            die(f"--chart: cannot write {chart}: {exc.strerror}", 2)
    if send:
        from adapters.runtime import send_summary_now

        try:
            sent, skipped = asyncio.run(send_summary_now(settings, day))
        except ConfigError as exc:
            die(str(exc), 2)
        typer.echo(f"summary for {day} sent to {sent} admins" + (f"; {skipped} already had it" if skipped else ""))
        return

    async def text(core: Core) -> str:
        since, until = core.reports.day_bounds(day)
        return render_summary(await core.reports.spend(since, until), day)

    typer.echo(_with_core(settings, text))


@app.command()
def forget(
    user: Annotated[str | None, typer.Option("--user", help="A person: slack:U0456 (or slack:T0123:U0456).")] = None,
    thread: Annotated[str | None, typer.Option("--thread", help=(
        "A conversation: its thread id, or platform:channel:ID, or platform:workspace:channel:ID."))] = None,
) -> None:
    """Delete a person's messages everywhere (and the answers to them), or one conversation. Spend
    history stays: ledger rows keep their money and lose only the thread they belonged to."""
    from bot.domain import Address
    from bot.ops.retention import Retention, ThreadBeingAnswered

    if (user is None) == (thread is None):
        die("give exactly one of --user or --thread", 2)
    if user is not None:
        try:
            person = Address.parse(user)
        except ValueError as exc:
            die(str(exc), 2)
    settings = settings_from_env()

    async def work(core: Core) -> str:
        retention = Retention(core.db)
        if user is not None:
            try:
                removed = await retention.forget_user(person.platform, person.workspace_id, person.id)
            except ThreadBeingAnswered:
                die(f"{user} is being answered right now; try again in a minute")
            return f"{user}: {removed.describe()}"
        assert thread is not None
        *where, thread_id = thread.split(":")
        if len(where) not in (0, 2, 3):
            die("--thread is ID, platform:channel:ID or platform:workspace:channel:ID", 2)
        platform, workspace, channel = (where[0], where[1] if len(where) == 3 else None, where[-1]) if where \
            else (None, None, None)
        found = await retention.find_threads(platform, workspace, channel, thread_id)
        if not found:
            die(f"no stored conversation has the thread id {thread}")
        if len(found) > 1:
            die(f"{len(found)} conversations have the thread id {thread_id} (in "
                 f"{', '.join(sorted(ref.address for ref in found))}); write it as platform:channel:ID", 2)
        try:
            removed = await retention.forget_thread(found[0].pk)
        except ThreadBeingAnswered:
            die(f"{thread} is being answered right now; try again in a minute")
        return f"{thread}: {removed.describe()}"

    typer.echo(_with_core(settings, work))


def _check_scope(scope: str) -> None:
    if not is_scope_key(scope):
        die(f"{scope!r} is not a channel: write platform:channel, e.g. slack:C0123, discord:4567 or cli:cli "
            "(the terminal), or global", 2)


def _parse_day(text: str, option: str) -> date:
    try:
        return parse_report_day(text)
    except ValueError as exc:
        die(f"{option} {exc}", 2)


def _with_core(settings: Settings, work: Callable[[Core], Awaitable[T]]) -> T:
    """Run `work` with a Core that needs no Seed key (admin commands make no model calls)."""

    async def run_it() -> T:
        core = await build_core(settings, require_model_key=False)
        try:
            return await work(core)
        finally:
            await core.aclose()

    try:
        return asyncio.run(run_it())
    except ConfigError as exc:
        die(str(exc), 2)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the schema migrations to DATABASE_URL."""
    from bot.storage import migrate

    settings = settings_from_env()
    try:
        migrate.upgrade(settings.database_url, revision)
    except DBAPIError:
        raise  # main() words it, as for every command
    except OSError as exc:
        raise database_unreachable(settings.database_url, exc) from None
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        die(f"migration failed: {type(exc).__name__}: {first_line(exc)}")
    typer.echo(f"database is at {revision}")


def main() -> None:
    """The `seedbot` console script. A database that cannot be reached or used, or any other connection
    refused on the way, ends a command with one line on stderr and exit status 1, not a traceback."""
    logging.basicConfig(level=logging.WARNING, format=TEXT_FORMAT)
    try:
        app()
    except DBAPIError as exc:
        last_words(f"the database (DATABASE_URL) failed: {first_line(exc.orig or exc)}")
        sys.exit(1)
    except OSError as exc:  # TimeoutError included
        if exc.errno == errno.EADDRINUSE:  # the HTTP server's port, not a service we failed to reach
            last_words(f"cannot listen: {first_line(exc)} (set SEEDBOT_HTTP_PORT to a free port)")
        else:
            last_words(f"cannot connect: {type(exc).__name__}: {first_line(exc)}")
        sys.exit(1)

