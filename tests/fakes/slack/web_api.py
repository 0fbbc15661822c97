"""The Web API methods the fake implements (chat, conversations, users, assistant threads, agent sessions),
with streaming (streaming.py) and file uploads (files.py) plugged in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .checks import channel_param, check_content, require
from .files import Files
from .model import JSON, AssistantThread, Message, SlackError, dm_channel_id
from .oauth import FakeWorkspace
from .state import SlackState
from .streaming import Streams


class WebApi:
    """Handlers for the Web API methods the fake implements. Each returns the body minus "ok"."""

    def __init__(self, state: SlackState, base_url: Callable[[], str], socket_url: Callable[[], str],
                 identity: Callable[[], FakeWorkspace]) -> None:
        self.state = state
        self.config = state.config
        self.identity = identity  # the workspace whose bot token made the request
        self._socket_url = socket_url
        self.dms: dict[tuple[str, ...], str] = {}
        self.streams = Streams(state, self._bot_message, self._api)
        self.files = Files(state, base_url, self._bot_message)
        self.handlers: dict[str, Callable[[JSON], JSON]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            **self.streams.handlers(),
            "conversations.open": self.conversations_open,
            "users.info": self.users_info,
            "conversations.info": self.conversations_info,
            "conversations.replies": self.conversations_replies,
            "assistant.threads.setStatus": self.set_status,
            "assistant.threads.setSuggestedPrompts": self.set_suggested_prompts,
            "assistant.threads.setTitle": self.set_title,
            "agents.sessions.setStatus": self.set_session_status,
            **self.files.handlers(),
            "apps.connections.open": self.connections_open,
        }

    def _api(self, message: Message) -> JSON:
        return message.to_api(self.config.team_id, self.config.app_id)

    def auth_test(self, params: JSON) -> JSON:
        c, me = self.config, self.identity()
        return {
            "url": f"https://{c.team_domain}.slack.com/",
            "team": me.team_name,
            "user": c.bot_name,
            "team_id": me.team_id,
            "user_id": me.bot_user_id,
            "bot_id": me.bot_id,
            "is_enterprise_install": False,
        }

    def _bot_message(self, channel: str, thread_ts: str | None, **fields: Any) -> Message:
        me = self.identity()
        ts = self.state.clock.next()
        return Message(channel, ts, me.bot_user_id, bot_id=me.bot_id, thread_ts=thread_ts, **fields)

    def post_message(self, params: JSON) -> JSON:
        channel = channel_param(params)
        text, markdown, blocks = check_content(params)
        message = self._bot_message(
            channel,
            params.get("thread_ts"),
            text=text or "",
            markdown_text=markdown,
            blocks=blocks,
            metadata=params.get("metadata"),
        )
        self.state.add_message(message, "chat.postMessage")
        return {"channel": channel, "ts": message.ts, "message": self._api(message)}

    def _own_message(self, params: JSON) -> Message:
        channel = channel_param(params)
        require(params, "ts")
        message = self.state.find(channel, str(params["ts"]))
        if message is None:
            raise SlackError("message_not_found")
        if message.user != self.config.bot_user_id:
            raise SlackError("cant_update_message")
        return message

    def update(self, params: JSON) -> JSON:
        message = self._own_message(params)
        text, markdown, blocks = check_content(params)
        # Slack replaces the text but keeps the old blocks unless new ones (maybe []) are given.
        message.text, message.markdown_text = text or "", markdown
        if blocks is not None:
            message.blocks = blocks or None
        self.state.revise(message, "chat.update")
        return {
            "channel": message.channel,
            "ts": message.ts,
            "text": message.visible_text,
            "message": self._api(message),
        }

    def conversations_open(self, params: JSON) -> JSON:
        if params.get("channel"):
            return {"channel": {"id": params["channel"]}}
        require(params, "users")
        users = tuple(sorted(u.strip() for u in str(params["users"]).split(",") if u.strip()))
        for user in users:
            if user not in self.state.users:
                raise SlackError("user_not_found")
        already = users in self.dms
        if not already:
            self.dms[users] = dm_channel_id(users[0]) if len(users) == 1 else self.state.new_id("G")
        return {"no_op": already, "already_open": already, "channel": {"id": self.dms[users]}}

    def users_info(self, params: JSON) -> JSON:
        require(params, "user")
        user = self.state.users.get(str(params["user"]))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_api()}

    def conversations_info(self, params: JSON) -> JSON:
        require(params, "channel")
        channel_id = str(params["channel"])
        known = self.state.conversations.get(channel_id)
        if known is not None:
            return {"channel": known.to_api()}
        if channel_id.startswith("D"):
            # A DM: the conversation object has no name, only the other person.
            return {"channel": {"id": channel_id, "is_im": True, "is_channel": False, "is_group": False,
                                "is_private": True, "user": "U" + channel_id[1:], "created": 1_700_000_000}}
        raise SlackError("channel_not_found")

    def conversations_replies(self, params: JSON) -> JSON:
        """A thread (https://docs.slack.dev/reference/methods/conversations.replies), `ts` naming its parent or
        any of its replies: the parent first, always, then its replies oldest first within `oldest` and
        `latest` (each excluded unless `inclusive`), at most `limit`; one page (has_more false).
        thread_not_found if `ts` names no message of the channel."""
        channel = channel_param(params)
        require(params, "ts")
        found = self.state.find(channel, str(params["ts"]))
        if found is None:
            raise SlackError("thread_not_found")
        root = self.state.find(channel, found.thread_ts) if found.thread_ts else found
        if root is None:
            raise SlackError("thread_not_found")
        inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or "inf")

        def within(message: Message) -> bool:
            at = float(message.ts)
            return (oldest <= at <= latest) if inclusive else (oldest < at < latest)

        replies = [m for m in self.state.thread(channel, root.ts) if m is not root and within(m)]
        limit = int(params.get("limit") or 1000)
        messages = [root, *replies][:limit]
        return {"messages": [self._api(m) for m in messages], "has_more": False,
                "response_metadata": {"next_cursor": ""}}

    def _assistant_thread(self, params: JSON, *required: str) -> AssistantThread:
        require(params, "channel_id", "thread_ts", *required)
        key = (str(params["channel_id"]), str(params["thread_ts"]))
        return self.state.assistant.setdefault(key, AssistantThread())

    def _prompt_target(self, params: JSON) -> AssistantThread:
        """setSuggestedPrompts: a thread (assistant view) or, without thread_ts, the DM (agent view)."""
        require(params, "channel_id", "prompts")
        key = (str(params["channel_id"]), str(params.get("thread_ts") or ""))
        return self.state.assistant.setdefault(key, AssistantThread())

    def set_status(self, params: JSON) -> JSON:
        if "status" not in params:
            raise SlackError("invalid_arguments", "missing required field: status")
        thread = self._assistant_thread(params)
        thread.status, thread.loading_messages = str(params["status"]), params.get("loading_messages")
        return {}

    def set_suggested_prompts(self, params: JSON) -> JSON:
        thread = self._prompt_target(params)
        prompts = params["prompts"]
        if not isinstance(prompts, list) or len(prompts) > 4 or not all(
                isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
            raise SlackError("invalid_arguments", "prompts: up to 4, each with title and message")
        thread.prompts = prompts
        if params.get("title"):
            thread.title = params["title"]
        return {}

    def set_session_status(self, params: JSON) -> JSON:
        """agents.sessions.setStatus: creates the thread's agent session if needed, sets its status."""
        require(params, "channel_id", "status")
        if params["status"] not in ("active", "processing", "suspended", "closed"):
            raise SlackError("invalid_arguments", "status must be active, processing, suspended or closed")
        key = (str(params["channel_id"]), str(params.get("thread_ts") or ""))
        self.state.sessions[key] = str(params["status"])
        return {}

    def set_title(self, params: JSON) -> JSON:
        self._assistant_thread(params, "title").title = str(params["title"])
        return {}

    def connections_open(self, params: JSON) -> JSON:
        return {"url": self._socket_url()}
