"""Bolt listeners and the path of one Slack message to the core.

Every listener returns at once: Bolt (process_before_response=False) has already acknowledged the
event before calling it, and the answer runs in a task of the process's BackgroundTasks. Retried
deliveries are answered like first ones; the core's dedup on the message ts turns every copy after
the first into a no-op, whichever replica it reaches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncAssistant, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events_logic import (
    ASSISTANT_PROMPTS,
    ASSISTANT_TITLE,
    Addressed,
    Ignored,
    assistant_thread_started,
    decide,
)
from adapters.slack.sink import FLUSH_INTERVAL_SECONDS, SlackSink
from adapters.slack.stream import StreamingSwitch, Target, error_code
from adapters.slack.workspaces import SlackWorkspace
from bot.app import Core
from bot.background import BackgroundTasks

log = logging.getLogger(__name__)

COMMAND_FAILED = "Sorry, that command failed on my side. Please try again in a minute."


class SlackHandlers:
    """`workspaces` gives the workspace (bot identity, token-bearing client, user names, files) of
    the event Bolt authorized into a context."""

    def __init__(self, *, core: Core, tasks: BackgroundTasks,
                 workspaces: Callable[[AsyncBoltContext], SlackWorkspace], switch: StreamingSwitch,
                 interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self._core = core
        self._tasks = tasks
        self._workspaces = workspaces
        self._switch = switch
        self._interval = interval
        self.inflight: set[asyncio.Task[Any]] = set()

    def register(self, app: AsyncApp) -> None:
        # Bolt passes listener arguments by parameter name, so listeners are plain functions.
        async def on_event(body: dict[str, Any], context: AsyncBoltContext) -> None:
            self.route(body, self._workspaces(context), assistant=False)

        async def on_assistant_message(body: dict[str, Any], context: AsyncBoltContext) -> None:
            self.route(body, self._workspaces(context), assistant=True)

        async def on_thread_started(body: dict[str, Any], context: AsyncBoltContext) -> None:
            thread = assistant_thread_started(body)
            if thread is not None:
                client = self._workspaces(context).client
                self._spawn(self._suggest_prompts(client, thread.channel_id, thread.thread_ts), "slack:prompts")

        async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
            await ack()
            self._spawn(self._answer_command(command, respond), "slack:command")

        async def on_other_event(body: dict[str, Any]) -> None:
            log.debug("Slack event %s ignored", (body.get("event") or {}).get("type"))

        assistant = AsyncAssistant()
        assistant.thread_started(on_thread_started)
        assistant.user_message(on_assistant_message)
        # Bolt's default would store the context with conversations.replies, which Slack rate-limits hard.
        assistant.thread_context_changed(on_other_event)
        app.assistant(assistant)
        app.event("app_mention")(on_event)
        app.event("message")(on_event)
        app.command("/seed")(on_command)
        # Acknowledge every other event the app may be subscribed to, so Slack never retries them.
        app.event(re.compile(".*"))(on_other_event)

    # -- work --

    def route(self, body: dict[str, Any], workspace: SlackWorkspace, *, assistant: bool) -> None:
        decision = decide(body, workspace.identity, assistant=assistant)
        if isinstance(decision, Ignored):
            log.debug("Slack event ignored: %s", decision.reason)
            return
        key = decision.incoming.dedup_key
        self._spawn(self.answer(decision, workspace), f"slack:{key}")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = self._tasks.spawn(coro, name=name)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def answer(self, decision: Addressed, workspace: SlackWorkspace) -> None:
        incoming = decision.incoming
        key = incoming.thread
        if decision.needs_thread_check and not await self._core.store.has_thread(
                key.platform.value, key.workspace_id, key.channel_id, key.thread_id):
            return
        name, attachments = await asyncio.gather(workspace.users.name(incoming.user_id),
                                                 workspace.files.fetch_all(decision.files))
        incoming = dataclasses.replace(incoming, user_name=name, attachments=attachments)
        target = Target(decision.reply_channel, decision.reply_thread_ts, incoming.user_id,
                        decision.recipient_team_id)
        sink = SlackSink(workspace.client, target, switch=self._switch, assistant=decision.assistant,
                         interval=self._interval)
        await self._core.service.handle(incoming, sink)

    @staticmethod
    async def _suggest_prompts(client: AsyncWebClient, channel_id: str, thread_ts: str) -> None:
        try:
            await client.assistant_threads_setSuggestedPrompts(
                channel_id=channel_id, thread_ts=thread_ts, title=ASSISTANT_TITLE, prompts=list(ASSISTANT_PROMPTS))
        except Exception as exc:  # noqa: BLE001 - the pane works without suggestions
            log.info("assistant.threads.setSuggestedPrompts failed (%s)", error_code(exc))

    async def _answer_command(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        try:
            text = await self._core.admin.slash_command("slack", str(command.get("user_id") or ""),
                                                        str(command.get("channel_id") or ""),
                                                        str(command.get("text") or ""),
                                                        workspace_id=str(command.get("team_id") or ""))
        except Exception:  # noqa: BLE001 - the user gets a sentence, the log gets the traceback
            log.exception("/seed %s failed", command.get("text"))
            text = COMMAND_FAILED
        await respond(text=text, response_type="ephemeral")
