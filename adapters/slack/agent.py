"""Slack's agent messaging experience and the controls on answers: the listeners and what they do.

- `app_home_opened` on the Messages tab (agent view's way of saying a user opened the app's DM):
  suggested prompts for that DM (assistant.threads.setSuggestedPrompts without thread_ts, as agent
  view requires; https://docs.slack.dev/ai/migrating-to-agent-messaging).
- `app_context_changed`: what the user is viewing, remembered per user (bounded) for their next DM
  message when that message does not carry `app_context` itself.
- block_actions on the Stop and feedback buttons (adapters.slack.controls), and
  `agent_session_stopped` (Slack's native stop control of an agent session): stop the answer if the
  clicker asked it or is an admin; store the rating (last click wins); tell the clicker, ephemerally.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncRespond

from adapters.slack.controls import FEEDBACK_ACTION, STOP_ACTION, Click, clicks, rating
from adapters.slack.errors import error_code
from adapters.slack.routing import ASSISTANT_PROMPTS, ASSISTANT_TITLE, viewing_context
from adapters.slack.workspaces import SlackWorkspace
from bot.chat.controls import RATED, RATING_LOST, Stopper, StopSwitches, stop_reply
from bot.storage.feedback import FeedbackStore

log = logging.getLogger(__name__)

JSON = dict[str, Any]
CONTEXTS_REMEMBERED = 10_000


class AgentListeners:
    """The work behind the agent-view, stop and feedback listeners that SlackHandlers registers."""

    def __init__(self, *, switches: StopSwitches, feedback: FeedbackStore,
                 is_admin: Callable[[str, str], bool]) -> None:
        """`is_admin(user_id, team_id)`: whether that person of that workspace is a seedbot admin."""
        self._switches = switches
        self._feedback = feedback
        self._is_admin = is_admin
        self._contexts: OrderedDict[tuple[str, str], str] = OrderedDict()

    # -- agent view --

    async def home_opened(self, body: JSON, workspace: SlackWorkspace) -> None:
        event = body.get("event") or {}
        if event.get("tab") != "messages" or not event.get("channel"):
            return
        self.remember_context(body)
        try:
            await workspace.client.assistant_threads_setSuggestedPrompts(
                channel_id=str(event["channel"]), title=ASSISTANT_TITLE, prompts=list(ASSISTANT_PROMPTS))
        except Exception as exc:  # noqa: BLE001 - the DM works without suggestions
            log.info("assistant.threads.setSuggestedPrompts failed (%s)", error_code(exc))

    def remember_context(self, body: JSON) -> None:
        """Keep what the user of an app_context_changed (or app_home_opened) event is viewing."""
        event = body.get("event") or {}
        user = event.get("user")
        context = event.get("app_context") if event.get("type") != "app_context_changed" else event.get("context")
        if not user or not isinstance(context, dict):
            return
        key = (str(body.get("team_id") or ""), str(user))
        self._contexts[key] = viewing_context(context)
        self._contexts.move_to_end(key)
        if len(self._contexts) > CONTEXTS_REMEMBERED:
            self._contexts.popitem(last=False)

    def context_of(self, team_id: str, user_id: str) -> str:
        return self._contexts.get((team_id, user_id), "")

    # -- controls --

    async def clicked(self, body: JSON, respond: AsyncRespond) -> None:
        for click in clicks(body):
            reply = await (self._stop(click) if click.action_id == STOP_ACTION else self._rate(click))
            if reply:
                await _tell(respond, reply)

    async def _stop(self, click: Click) -> str:
        outcome = self._switches.request_stop(click.value, Stopper(click.user_id, click.user_name),
                                              is_admin=self._is_admin(click.user_id, click.team_id))
        return stop_reply(outcome)

    async def _rate(self, click: Click) -> str:
        parsed = rating(click.value) if click.action_id == FEEDBACK_ACTION else None
        if parsed is None:
            return ""
        helpful, key = parsed
        stored = await self._feedback.rate(key, click.user_id, helpful=helpful)
        return RATED[helpful] if stored else RATING_LOST

    async def session_stopped(self, body: JSON, workspace: SlackWorkspace) -> None:
        """agent_session_stopped: stop every answer in flight in that thread (the event names the
        thread, not the answer)."""
        event = body.get("event") or {}
        channel, thread_ts, user = event.get("channel"), event.get("thread_ts"), event.get("user")
        if not channel or not thread_ts or not user:
            return
        team = str(body.get("team_id") or "")
        stopper = Stopper(str(user), await workspace.users.name(str(user)))
        for key in self._switches.keys_at(f"slack:{team}:{channel}:{thread_ts}"):
            self._switches.request_stop(key, stopper, is_admin=self._is_admin(stopper.user_id, team))
        # Slack leaves the session "processing" after the click; the app moves it on. (A stopped
        # answer's chat.stopStream would too, but Slack already ended those streams itself.)
        try:
            await workspace.client.agents_sessions_setStatus(channel_id=str(channel), thread_ts=str(thread_ts),
                                                         status="active")
        except Exception as exc:  # noqa: BLE001 - the answers stopped; the session label is a nicety
            log.info("agents.sessions.setStatus failed (%s)", error_code(exc))


async def _tell(respond: AsyncRespond | Callable[..., Awaitable[Any]], text: str) -> None:
    """An ephemeral note to the clicker through the payload's response_url (no Web API call)."""
    try:
        await respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:  # noqa: BLE001 - the click itself was handled
        log.info("responding to a click failed (%s)", error_code(exc))
