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
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.recovery import ReplyTracker
from adapters.common.supervisor import AnswerSupervisor
from adapters.common.tasks import BackgroundTasks
from adapters.core import Core
from adapters.slack.agent import AgentListeners
from adapters.slack.controls import FEEDBACK_ACTION, STOP_ACTION, escape_mrkdwn
from adapters.slack.errors import error_code
from adapters.slack.names import SlackNames
from adapters.slack.routing import (
    ASSISTANT_PROMPTS,
    ASSISTANT_TITLE,
    Addressed,
    Ignored,
    assistant_thread_started,
    decide,
)
from adapters.slack.sink import FLUSH_INTERVAL_SECONDS, SlackSink
from adapters.slack.transport import StreamingSwitch, Target
from adapters.slack.workspaces import SlackWorkspace
from bot.chat.controls import StopSwitches
from bot.domain import Incoming
from bot.storage.request_claims import RequestClaims

log = logging.getLogger(__name__)

COMMAND_FAILED = "Sorry, that command failed on my side. Please try again in a minute."
# What the app listens to; the app manifest (adapters.slack.manifest) subscribes to exactly these.
ASSISTANT_EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")
EVENTS = ("app_mention", "message", "app_home_opened", "app_context_changed", "agent_session_stopped")
BLOCK_ACTIONS = (STOP_ACTION, FEEDBACK_ACTION)
COMMANDS = ("/seed",)


class SlackHandlers:
    """`workspaces` gives the workspace (bot identity, token-bearing client, user names, files) of
    the event Bolt authorized into a context."""

    def __init__(self, *, core: Core, tasks: BackgroundTasks,
                 workspaces: Callable[[AsyncBoltContext], SlackWorkspace], switch: StreamingSwitch,
                 interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self._core = core
        self._supervisor = AnswerSupervisor(core.service)
        self._claims = RequestClaims(core.db)
        self._tasks = tasks
        self._workspaces = workspaces
        self._switch = switch
        self._interval = interval
        self.inflight: set[asyncio.Task[Any]] = set()
        self.switches = StopSwitches()
        self.agent = AgentListeners(switches=self.switches, feedback=core.reports.feedback,
                                    is_admin=lambda user_id, team_id: core.admin.is_admin("slack", user_id, team_id))
        # What register() subscribed to, by Events API type, action_id and command: the app manifest
        # (adapters.slack.manifest) is checked against these.
        self.events: set[str] = set()
        self.actions: set[str] = set()
        self.commands: set[str] = set()

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

        async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond,
                             request: AsyncBoltRequest) -> None:
            # A signed command replayed within the signature window runs once, on any replica.
            signature = (request.headers.get("x-slack-signature") or [""])[0]
            if signature and not await self._claims.claim(f"slack-command:{signature}"):
                log.warning("replayed Slack command ignored")
                await ack()
                return
            await ack()
            self._spawn(self._answer_command(command, respond), "slack:command")

        async def on_other_event(body: dict[str, Any]) -> None:
            log.debug("Slack event %s ignored", (body.get("event") or {}).get("type"))

        async def on_home_opened(body: dict[str, Any], context: AsyncBoltContext) -> None:
            self._spawn(self.agent.home_opened(body, self._workspaces(context)), "slack:home")

        async def on_context_changed(body: dict[str, Any]) -> None:
            self.agent.remember_context(body)

        async def on_session_stopped(body: dict[str, Any], context: AsyncBoltContext) -> None:
            self._spawn(self.agent.session_stopped(body, self._workspaces(context)), "slack:session-stopped")

        async def on_action(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
            await ack()
            self._spawn(self.agent.clicked(body, respond), "slack:action")

        assistant = AsyncAssistant()
        assistant.thread_started(on_thread_started)
        assistant.user_message(on_assistant_message)
        # Bolt's default would store the context with conversations.replies, which Slack rate-limits hard.
        assistant.thread_context_changed(on_other_event)
        app.assistant(assistant)
        self.events |= set(ASSISTANT_EVENTS)
        listeners = {"app_mention": on_event, "message": on_event, "app_home_opened": on_home_opened,
                     "app_context_changed": on_context_changed, "agent_session_stopped": on_session_stopped}
        for event in EVENTS:
            app.event(event)(listeners[event])
            self.events.add(event)
        for action in BLOCK_ACTIONS:
            app.action(action)(on_action)
            self.actions.add(action)
        for command in COMMANDS:
            app.command(command)(on_command)
            self.commands.add(command)
        # Acknowledge every other event the app may be subscribed to, so Slack never retries them.
        app.event(re.compile(".*"))(on_other_event)

    # -- work --

    def route(self, body: dict[str, Any], workspace: SlackWorkspace, *, assistant: bool) -> None:
        decision = decide(body, workspace.identity, assistant=assistant)
        if isinstance(decision, Ignored):
            level = logging.WARNING if decision.reason.startswith("malformed") else logging.DEBUG
            log.log(level, "Slack event ignored: %s", decision.reason)
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
        target = Target(decision.reply_channel, decision.reply_thread_ts, incoming.user_id,
                        decision.recipient_team_id)
        tracker = ReplyTracker(self._core.store)
        sink = SlackSink(workspace.client, target, switch=self._switch, assistant=decision.assistant,
                         interval=self._interval, on_open=tracker.opened, answer_key=incoming.dedup_key)

        async def prepare(incoming: Incoming) -> Incoming:
            name, attachments = await asyncio.gather(workspace.users.name(incoming.user_id),
                                                     workspace.files.fetch_all(decision.files))
            names = SlackNames(workspace.client, self._core.names)
            self._spawn(names.learn(key.channel_id, incoming.user_id, name), "slack:names")
            context = incoming.context or (self.agent.context_of(key.workspace_id, incoming.user_id)
                                           if incoming.is_direct else "")
            return dataclasses.replace(incoming, user_name=name, attachments=attachments, context=context)

        place = f"{key.platform.value}:{key.workspace_id}:{key.channel_id}:{key.thread_id}"
        switch = self.switches.open(incoming.dedup_key, incoming.user_id, place)
        try:
            await self._supervisor.answer(incoming, sink, prepare=prepare, tracker=tracker, stop=switch)
        finally:
            self.switches.close(switch)

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
            # The subcommand only: the rest of the line is the user's text.
            log.exception("/seed %s failed", str(command.get("text") or "").split(" ", 1)[0])
            text = COMMAND_FAILED
        # The reply is mrkdwn, where `<` starts a link or a mention whatever precedes it (a name, a usage's `<amount>`).
        await respond(text=escape_mrkdwn(text), response_type="ephemeral")
