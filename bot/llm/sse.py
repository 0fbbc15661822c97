"""Reading a server-sent event stream (text/event-stream) as the WHATWG HTML standard says, for the Seed
client: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

# WHATWG: "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present."
_BOM = "\ufeff".encode()


async def sse_data(body: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The data of each server-sent event in `body`, as the WHATWG HTML standard ("Server-sent events",
    interpreting an event stream) reads it: one leading byte order mark ignored; lines end in LF, CRLF or
    CR; `data:` lines (one leading space dropped) are joined by LF; a blank line ends the event; comments
    and other fields are skipped; an event not ended by a blank line when the stream ends is dropped.
    Lines may be any length; an event is yielded as soon as the line that ends it has arrived."""
    pending = bytearray()
    data: list[str] = []
    at_start = True
    after_cr = False  # the last line read ended in CR: an LF arriving next belongs to it
    async for chunk in body.iter_any():
        if after_cr and chunk:
            after_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        pending += chunk
        if at_start:
            if len(pending) < len(_BOM) and _BOM.startswith(pending):
                continue  # a byte order mark may be cut across chunks
            at_start = False
            if pending.startswith(_BOM):
                del pending[:len(_BOM)]
        if b"\n" not in chunk and b"\r" not in chunk:
            continue  # no line ended here: a long line is split once, when it ends
        lines = pending.splitlines(keepends=True)
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            pending = bytearray(lines.pop())  # not ended yet: waits for more bytes
        else:
            pending = bytearray()
            after_cr = bool(lines) and lines[-1].endswith(b"\r")
        for line in lines:
            if (event := _read_line(line, data)) is not None:
                yield event


def _read_line(raw: bytes | bytearray, data: list[str]) -> str | None:
    """Take one line of an event stream into `data`; the event's data if the line ended the event."""
    line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
    if not line:
        event = "\n".join(data)
        data.clear()
        return event or None  # an event with empty data is not dispatched
    if not line.startswith(":"):
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    return None
