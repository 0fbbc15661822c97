"""Reading server-sent events (bot.llm.sse.sse_data) however the bytes are cut into chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.llm.sse import sse_data


class Chunks:
    """What `sse_data` reads: an aiohttp StreamReader's `iter_any`, here over fixed chunks."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def events(*chunks: bytes) -> list[str]:
    return [data async for data in sse_data(Chunks(*chunks))]  # type: ignore[arg-type]


STREAM = (b': keep-alive\r\ndata: {"a": 1}\r\n\r\n'
          b'event: x\ndata:two\ndata:  lines\nid: 7\n\n'
          b'data: caf\xc3\xa9\r\rdata: [DONE]\n\n')
EXPECTED = ['{"a": 1}', "two\n lines", "café", "[DONE]"]


async def test_events_in_one_chunk() -> None:
    assert await events(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7])
async def test_events_whatever_the_chunk_boundaries(size: int) -> None:
    # CRLF, a multi-byte character and "data:" itself all get cut somewhere.
    assert await events(*(STREAM[i:i + size] for i in range(0, len(STREAM), size))) == EXPECTED


async def test_a_long_line_across_many_chunks_is_one_event() -> None:
    long = b"x" * 300_000
    assert await events(b"data: ", *(long[i:i + 1000] for i in range(0, len(long), 1000)), b"\n\n") == ["x" * 300_000]


async def test_an_event_the_stream_never_ends_is_dropped_and_empty_data_is_not_an_event() -> None:
    assert await events(b"data:\n\ndata: ok\n\ndata: cut") == ["ok"]
    assert await events(b"data: ok\n\r") == ["ok"]  # a CR at the very end still ends its line


@pytest.mark.parametrize("chunks", [(b"\xef\xbb\xbfdata: first\n\ndata: second\n\n",),
                                    (b"\xef", b"\xbb", b"\xbfdata: first\n\ndata: second\n\n")])
async def test_one_leading_byte_order_mark_is_ignored_even_cut_across_chunks(chunks: tuple[bytes, ...]) -> None:
    assert await events(*chunks) == ["first", "second"]


async def test_a_cr_ending_a_line_ends_it_at_once_and_an_lf_after_it_is_not_a_second_line() -> None:
    assert await events(b"data: a\r\r", b"data: partial") == ["a"]
    assert await events(b"data: a\r", b"\ndata: b\r", b"\n\r\n") == ["a\nb"]


async def test_an_event_is_yielded_when_its_ending_line_arrives_not_with_the_next_chunk() -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    class Live:
        async def iter_any(self) -> AsyncIterator[bytes]:
            while (chunk := await queue.get()) is not None:
                yield chunk

    reader = sse_data(Live())  # type: ignore[arg-type]
    await queue.put(b"data: first\r\r")
    assert await asyncio.wait_for(anext(reader), 1.0) == "first"  # nothing more has been sent
    await queue.put(None)
    assert [data async for data in reader] == []
