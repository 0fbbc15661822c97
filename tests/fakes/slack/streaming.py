"""Streaming answers: chat.startStream, chat.appendStream, chat.stopStream and their chunks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .checks import channel_param, check_blocks, require
from .model import JSON, MARKDOWN_LIMIT, Message, SlackError
from .state import SlackState

TASK_STATUSES = ("pending", "in_progress", "complete", "error")


def check_chunks(chunks: Any) -> None:
    """Streaming chunks (chat.*Stream `chunks`): markdown_text, task_update, plan_update, blocks."""
    if not isinstance(chunks, list):
        raise SlackError("invalid_arguments", "chunks must be an array")
    for chunk in chunks:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind == "markdown_text":
            if not isinstance(chunk.get("text"), str):
                raise SlackError("invalid_arguments", "markdown_text chunk needs text")
        elif kind == "task_update":
            if not chunk.get("id") or not chunk.get("title") or chunk.get("status") not in TASK_STATUSES:
                raise SlackError("invalid_arguments", "task_update chunk needs id, title and a known status")
        elif kind == "plan_update":
            if not chunk.get("title"):
                raise SlackError("invalid_arguments", "plan_update chunk needs title")
        elif kind == "blocks":
            check_blocks(chunk.get("blocks"))
        else:
            raise SlackError("invalid_arguments", f"unknown chunk type {kind!r}")


class Streams:
    """chat.startStream, chat.appendStream and chat.stopStream, with Slack's rules for streams."""

    def __init__(self, state: SlackState, bot_message: Callable[..., Message], api: Callable[[Message], JSON]) -> None:
        self.state = state
        self.config = state.config
        self._bot_message = bot_message
        self._api = api

    def handlers(self) -> dict[str, Callable[[JSON], JSON]]:
        return {"chat.startStream": self.start_stream, "chat.appendStream": self.append_stream,
                "chat.stopStream": self.stop_stream}

    @staticmethod
    def _stream_text(params: JSON) -> tuple[str, list[JSON]]:
        """The markdown a stream call adds (markdown_text + markdown_text chunks) and its other chunks."""
        chunks: list[JSON] = params.get("chunks") or []
        check_chunks(chunks)
        parts = [params.get("markdown_text") or ""]
        parts += [c.get("text", "") for c in chunks if c.get("type") == "markdown_text"]
        text = "".join(parts)
        if len(text) > MARKDOWN_LIMIT:
            raise SlackError("msg_too_long")
        return text, [c for c in chunks if c.get("type") != "markdown_text"]

    def _check_streaming_available(self) -> None:
        if not self.config.streaming_enabled:
            raise SlackError("unknown_method")

    def start_stream(self, params: JSON) -> JSON:
        self._check_streaming_available()
        channel = channel_param(params)
        require(params, "thread_ts")
        if params.get("task_display_mode") not in (None, "timeline", "plan"):
            raise SlackError("invalid_arguments", "task_display_mode must be timeline or plan")
        if self.config.require_stream_recipient and not channel.startswith("D"):
            for key in ("recipient_user_id", "recipient_team_id"):
                if not params.get(key):
                    raise SlackError(f"missing_{key}")
        text, chunks = self._stream_text(params)
        message = self._bot_message(
            channel,
            str(params["thread_ts"]),
            markdown_text=text,
            chunks=chunks,
            stream_state="streaming",
            stream_started_at=time.monotonic(),
        )
        self.state.add_message(message, "chat.startStream")
        return {"channel": channel, "ts": message.ts}

    def _streaming_message(self, params: JSON) -> Message:
        self._check_streaming_available()
        channel = channel_param(params)
        require(params, "ts")
        message = self.state.find(channel, str(params["ts"]))
        if message is None:
            raise SlackError("message_not_found")
        ttl, started = self.config.stream_ttl, message.stream_started_at
        if message.stream_state == "streaming" and ttl is not None and started is not None:
            if time.monotonic() - started > ttl:
                message.stream_state = "expired"
        if message.stream_state != "streaming":
            raise SlackError("message_not_in_streaming_state")
        return message

    def _extend(self, message: Message, params: JSON) -> None:
        text, chunks = self._stream_text(params)
        message.markdown_text = (message.markdown_text or "") + text
        message.chunks += chunks

    def append_stream(self, params: JSON) -> JSON:
        message = self._streaming_message(params)
        if not params.get("markdown_text") and not params.get("chunks"):
            raise SlackError("no_text")
        self._extend(message, params)
        self.state.revise(message, "chat.appendStream")
        return {"channel": message.channel, "ts": message.ts}

    def stop_stream(self, params: JSON) -> JSON:
        message = self._streaming_message(params)
        if params.get("session_status") not in (None, "active", "processing", "suspended", "closed"):
            raise SlackError("invalid_arguments", "session_status must be active, processing, suspended or closed")
        if params.get("blocks"):
            check_blocks(params["blocks"])
        self._extend(message, params)
        if self.config.stream_keeps_chunk_blocks:
            kept = [b for c in message.chunks if c.get("type") == "blocks" for b in c["blocks"]]
            message.blocks = [{"type": "markdown", "text": message.markdown_text or ""}, *kept,
                              *(params.get("blocks") or [])]
        elif params.get("blocks"):
            message.blocks = params["blocks"]
        if params.get("metadata"):
            message.metadata = params["metadata"]
        message.stream_state = "stopped"
        self.state.revise(message, "chat.stopStream")
        return {"channel": message.channel, "ts": message.ts, "message": self._api(message)}
