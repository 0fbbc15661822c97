"""SeedClient against the fake Seed server: the stream, the request body, and every fault."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.llm import (
    ChatRequest,
    ContentDelta,
    Finish,
    ReasoningDelta,
    RetryPolicy,
    SeedAuthError,
    SeedClient,
    SeedContentFiltered,
    SeedContextTooLong,
    SeedQuotaExhausted,
    SeedRateLimited,
    SeedStreamBroken,
    SeedUnavailable,
    UsageReport,
)
from bot.llm.errors import SeedError, classify_error
from tests.fakes.seed import FakeSeed, Reply


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client_for(fake: FakeSeed, sleep: SleepRecorder, **kw: object) -> SeedClient:
    return SeedClient(api_key=fake.api_key, base_url=fake.base_url, model=fake.model, sleep=sleep, **kw)


def ask(text: str = "What is a monad?", **kw: object) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


async def collect(client: SeedClient, request: ChatRequest) -> list[object]:
    return [event async for event in client.stream(request)]


async def test_stream_yields_reasoning_content_usage_and_finish(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Use a dict.", reasoning="Thinking about maps.", chunk_chars=4))
    async with client_for(fake_seed, SleepRecorder()) as client:
        events = await collect(client, ask(reasoning_effort="high", enable_web_search=True, enable_caching=True,
                                           max_tokens=300, stop=["END", "STOP"]))
    text = "".join(e.text for e in events if isinstance(e, ContentDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert text == "Use a dict."
    assert reasoning == "Thinking about maps."
    assert [e.reason for e in events if isinstance(e, Finish)] == ["stop"]
    usage = [e.usage for e in events if isinstance(e, UsageReport)][0]
    assert usage.completion_tokens == fake_seed.count("Use a dict.") + fake_seed.count("Thinking about maps.")
    assert usage.reasoning_tokens == fake_seed.count("Thinking about maps.")
    assert usage.web_searches == 1  # search on and no counter reported: billed as one
    body = fake_seed.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["reasoning_effort"] == "high"
    assert body["enable_web_search"] is True and body["enable_caching"] is True
    assert body["max_tokens"] == 300 and body["stop"] == "END,STOP"
    assert body["model"] == "seed-2-0-code"


async def test_answers_in_a_row_share_one_connection(fake_seed: FakeSeed) -> None:
    """A finished stream is read to the end of its body, so its connection goes back to the pool."""
    fake_seed.script(Reply(content="One."), Reply(content="Two."), Reply(content="Three."))
    async with client_for(fake_seed, SleepRecorder()) as client:
        for _ in range(3):
            await collect(client, ask())
    peers = {r.peer for r in fake_seed.requests}
    assert len(fake_seed.requests) == 3 and len(peers) == 1 and None not in peers


async def test_thinking_off_sends_no_effort(fake_seed: FakeSeed) -> None:
    async with client_for(fake_seed, SleepRecorder()) as client:
        await collect(client, ask(enable_thinking=False, reasoning_effort="high"))
    body = fake_seed.requests[0].body
    assert body["enable_thinking"] is False
    assert "reasoning_effort" not in body


async def test_overload_429_is_retried_honouring_retry_after(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(fault="overload_429", retry_after=7), Reply(content="ok now"))
    sleep = SleepRecorder()
    async with client_for(fake_seed, sleep) as client:
        completion = await client.complete(ask())
    assert completion.content == "ok now"
    assert len(fake_seed.requests) == 2
    assert sleep.delays == [7.0]


async def test_overload_429_gives_up_after_max_retries(fake_seed: FakeSeed) -> None:
    fake_seed.script(*[Reply(fault="overload_429", retry_after=1) for _ in range(5)])
    async with client_for(fake_seed, SleepRecorder(), retry=RetryPolicy(max_retries=2)) as client:
        with pytest.raises(SeedRateLimited) as caught:
            await collect(client, ask())
    assert len(fake_seed.requests) == 3
    assert caught.value.retry_after == 1.0


async def test_retry_after_longer_than_we_wait_is_not_slept(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(fault="overload_429", retry_after=3600))
    sleep = SleepRecorder()
    async with client_for(fake_seed, sleep) as client:
        with pytest.raises(SeedRateLimited):
            await collect(client, ask())
    assert len(fake_seed.requests) == 1 and sleep.delays == []


async def test_quota_429_is_not_retried(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(fault="quota_429"))
    sleep = SleepRecorder()
    async with client_for(fake_seed, sleep) as client:
        with pytest.raises(SeedQuotaExhausted) as caught:
            await collect(client, ask())
    assert len(fake_seed.requests) == 1 and sleep.delays == []
    assert caught.value.status == 429
    assert "quota" in caught.value.user_message


async def test_500_is_retried_with_backoff_then_succeeds(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(fault="server_500"), Reply(fault="server_500"), Reply(content="recovered"))
    sleep = SleepRecorder()
    async with client_for(fake_seed, sleep, retry=RetryPolicy(max_retries=3, backoff_base=0.5)) as client:
        completion = await client.complete(ask())
    assert completion.content == "recovered"
    assert len(fake_seed.requests) == 3
    assert len(sleep.delays) == 2
    assert 0 <= sleep.delays[0] <= 0.5 and 0 <= sleep.delays[1] <= 1.0  # full jitter under the doubling cap


async def test_500_exhausted_is_provider_unavailable(fake_seed: FakeSeed) -> None:
    fake_seed.script(*[Reply(fault="server_500") for _ in range(4)])
    async with client_for(fake_seed, SleepRecorder(), retry=RetryPolicy(max_retries=3)) as client:
        with pytest.raises(SeedUnavailable):
            await collect(client, ask())
    assert len(fake_seed.requests) == 4


async def test_context_too_long_is_not_retried(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(fault="context_400"))
    async with client_for(fake_seed, SleepRecorder()) as client:
        with pytest.raises(SeedContextTooLong):
            await collect(client, ask())
    assert len(fake_seed.requests) == 1


async def test_bad_key_is_auth_error_without_retry(fake_seed: FakeSeed) -> None:
    sleep = SleepRecorder()
    client = SeedClient(api_key="wrong-key-123", base_url=fake_seed.base_url, model=fake_seed.model, sleep=sleep)
    async with client:
        with pytest.raises(SeedAuthError) as caught:
            await collect(client, ask())
    assert len(fake_seed.requests) == 1 and sleep.delays == []
    assert "wrong-key-123" not in str(caught.value)


async def test_stream_cut_mid_answer_raises_after_the_partial_answer(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="abcdefghijklmnopqrstuvwxyz", chunk_chars=5, fault="cut", cut_after_chunks=2))
    received: list[str] = []
    async with client_for(fake_seed, SleepRecorder()) as client:
        with pytest.raises(SeedStreamBroken):
            async for event in client.stream(ask()):
                if isinstance(event, ContentDelta):
                    received.append(event.text)
    assert "".join(received) == "abcdefghij"
    assert len(fake_seed.requests) == 1  # a started answer is never silently re-run


async def test_slow_first_token_arrives_within_the_timeout(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="late but fine", first_token_delay=0.6))
    async with client_for(fake_seed, SleepRecorder(), timeout=5.0) as client:
        completion = await client.complete(ask())
    assert completion.content == "late but fine"


async def test_first_token_slower_than_the_timeout_is_unavailable(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="too late", first_token_delay=1.5))
    async with client_for(fake_seed, SleepRecorder(), timeout=0.3, retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises((SeedUnavailable, SeedStreamBroken)):
            await collect(client, ask())


async def test_content_filter_is_a_finish_reason_and_complete_raises(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="partial", fault="content_filter"), Reply(content="x", fault="content_filter"))
    async with client_for(fake_seed, SleepRecorder()) as client:
        events = await collect(client, ask())
        assert Finish("content_filter") in events
        with pytest.raises(SeedContentFiltered):
            await client.complete(ask())


async def test_unreachable_endpoint_is_retried_then_unavailable() -> None:
    sleep = SleepRecorder()
    client = SeedClient(api_key="k", base_url="http://127.0.0.1:9/v1", model="seed-2-0-code", sleep=sleep,
                        retry=RetryPolicy(max_retries=2))
    async with client:
        with pytest.raises(SeedUnavailable):
            await collect(client, ask())
    assert len(sleep.delays) == 2


async def test_api_key_never_in_repr_or_logs(fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake_seed.script(Reply(fault="overload_429", retry_after=0), Reply(content="fine"))
    client = client_for(fake_seed, SleepRecorder())
    async with client:
        await client.complete(ask())
    assert fake_seed.api_key not in repr(client)
    assert fake_seed.api_key not in caplog.text
    assert fake_seed.requests[0].headers["Authorization"] == f"Bearer {fake_seed.api_key}"


async def test_length_finish_is_reported(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content=" ".join(["word"] * 200)))
    async with client_for(fake_seed, SleepRecorder()) as client:
        completion = await client.complete(ask(max_tokens=10))
    assert completion.finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens <= 10


async def test_connection_closed_without_a_response_is_unavailable_and_retried(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(fault="drop"), Reply(content="Back."))
    sleep = SleepRecorder()
    async with client_for(fake_seed, sleep, retry=RetryPolicy(max_retries=1)) as client:
        events = await collect(client, ask())
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "Back."
    assert len(sleep.delays) == 1


async def test_a_stream_that_dies_before_any_text_is_unavailable_after_text_broken(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Never shown.", fault="cut", cut_after_chunks=0),
                     Reply(content="Shown, then cut.", chunk_chars=5, fault="cut", cut_after_chunks=1))
    async with client_for(fake_seed, SleepRecorder(), retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(SeedUnavailable):
            await collect(client, ask())
        with pytest.raises(SeedStreamBroken):
            await collect(client, ask())


async def test_a_redirect_is_an_error_not_a_second_request(fake_seed: FakeSeed) -> None:
    # Following a 307 would send the whole conversation again, wherever Location points.
    fake_seed.script(Reply(fault="redirect_307"), Reply(content="Should never be asked for."))
    async with client_for(fake_seed, SleepRecorder(), retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(SeedError) as caught:
            await collect(client, ask())
    assert caught.value.status == 307
    assert len(fake_seed.requests) == 1


async def test_an_answer_complete_at_done_is_not_held_by_a_body_left_open(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="All here.", fault="hold_after_done"))
    async with client_for(fake_seed, SleepRecorder(), timeout=30.0) as client:
        started = asyncio.get_running_loop().time()
        completion = await client.complete(ask())
        waited = asyncio.get_running_loop().time() - started
    assert completion.content == "All here." and completion.finish_reason == "stop"
    assert waited < 10  # not the 30-s read timeout, nor the fake's 60-s hold


async def test_absurdly_deep_json_is_a_malformed_chunk_and_an_error_body_still_classifies(fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Fine.", extra_chunks=("[" * 100_000,)))
    async with client_for(fake_seed, SleepRecorder()) as client:
        completion = await client.complete(ask())
        assert completion.content == "Fine." and client.malformed_chunks == 1
    assert isinstance(classify_error(500, b"[" * 100_000), SeedUnavailable)


async def test_a_closed_client_refuses_calls_instead_of_opening_new_connections(fake_seed: FakeSeed) -> None:
    client = client_for(fake_seed, SleepRecorder())
    await client.complete(ask())
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.complete(ask())
    assert len(fake_seed.requests) == 1


def test_retry_policy_follows_retry_after_up_to_its_cap_and_gives_up_on_what_is_not_retryable() -> None:
    policy = RetryPolicy(max_retries=2, max_retry_after=10.0)
    overload = classify_error(429, b'{"error": {"code": "ServerOverloaded"}}', reason="Too Many Requests")
    assert policy.delay(overload, 0, 3.0) == 3.0
    assert policy.delay(overload, 0, 11.0) is None  # a wait longer than we allow: give up now
    assert policy.delay(overload, 2, None) is None  # retries used up
    assert 0 <= policy.delay(overload, 1, None) <= 1.0  # full jitter under backoff_base * 2**1
    assert policy.delay(classify_error(401, b"", reason="Unauthorized"), 0, None) is None
