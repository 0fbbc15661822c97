"""Crash recovery's Slack part: the reply of an answer whose process died is finished where it lives, with the
notice (adapters.common.recovery decides which answers and when)."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.controls import JSON
from adapters.slack.errors import error_code
from adapters.slack.transport import remove_kept_stop_button
from bot.storage.claimants import InterruptedAnswer

log = logging.getLogger(__name__)


async def finish_interrupted(client: AsyncWebClient, answer: InterruptedAnswer, notice: str) -> None:
    """A reply still streaming is stopped with `notice` as its last line; otherwise (never opened, posted, or its
    stream ended by Slack) `notice` is posted in the thread. A reply that opened with the Stop button loses it
    (`remove_kept_stop_button`; a posted one is read back with conversations.replies for its blocks). Raises what
    the notice's chat.postMessage raises (adapters.common.recovery logs it)."""
    where = answer.reply_location
    channel = str(where.get("channel") or answer.channel_id)
    thread_ts = str(where.get("thread_ts") or answer.thread_id)
    ts = str(where.get("ts") or "")
    if ts and where.get("streaming"):
        try:
            stopped = await client.chat_stopStream(channel=channel, ts=ts, markdown_text=f"\n\n_{notice}_")
        except Exception as exc:  # noqa: BLE001 - the notice goes in the thread instead
            log.info("chat.stopStream of an interrupted answer failed (%s)", error_code(exc))
        else:
            if where.get("controls"):
                await remove_kept_stop_button(client, channel, ts, stopped.get("message"))
            return
    await client.chat_postMessage(channel=channel, thread_ts=thread_ts, markdown_text=notice)
    if ts and where.get("controls"):
        await remove_kept_stop_button(client, channel, ts, await read_message(client, channel, thread_ts, ts))


async def read_message(client: AsyncWebClient, channel: str, thread_ts: str, ts: str) -> JSON | None:
    """Message `ts` of the thread `thread_ts`, as conversations.replies returns it (untrusted: the caller checks
    its fields), or None if Slack did not give it (logged)."""
    try:
        response = await client.conversations_replies(channel=channel, ts=thread_ts, oldest=ts, latest=ts,
                                                      inclusive=True, limit=2)
    except Exception as exc:  # noqa: BLE001 - only the Stop button is left behind
        log.info("reading message %s back from Slack failed (%s)", ts, error_code(exc))
        return None
    messages = response.get("messages")
    found = [m for m in messages if isinstance(m, dict) and m.get("ts") == ts] if isinstance(messages, list) else []
    return found[0] if found else None
