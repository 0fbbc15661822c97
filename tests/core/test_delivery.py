"""DeliveryFailure: the two ways a platform stops taking an answer, kept by a reply sink, each logged once."""

from __future__ import annotations

import logging

import pytest

from adapters.common.delivery import DeliveryFailure
from bot.ports import SinkBroken


def test_a_drop_then_a_refusal_raises_the_refusal_and_allows_no_sentence(caplog: pytest.LogCaptureFixture) -> None:
    failure = DeliveryFailure(logging.getLogger("test.delivery"))
    failure.raise_if_lost()  # nothing lost yet: no raise
    failure.drop("did not take chat.postMessage in C1 (internal_error)")
    failure.drop("did not take chat.postMessage in C1 (internal_error) again")
    assert failure.dropped_only and not failure.for_good
    with pytest.raises(SinkBroken, match="internal_error"):
        failure.raise_if_lost()
    failure.refuse("refused chat.update in C1: channel_not_found")
    failure.refuse("refused chat.postMessage in C1: not_in_channel")
    assert failure.for_good and not failure.dropped_only
    with pytest.raises(SinkBroken, match="channel_not_found"):
        failure.raise_if_lost()
    assert [r.getMessage() for r in caplog.records] == [
        "did not take chat.postMessage in C1 (internal_error); the rest of the answer is dropped",
        "refused chat.update in C1: channel_not_found; the rest of the answer is dropped",
    ]
