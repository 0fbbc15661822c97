"""How an answer's platform stopped taking it (a refusal for good, or a message not taken this once), as a
reply sink keeps it: the first of each kind, logged once."""

from __future__ import annotations

import logging

from bot.ports import SinkBroken

# What the person reads when the last write of an answer was a new message the platform did not take this once
# (not refused for good: the sentence may go through where the message did not).
INCOMPLETE = "This answer could not be posted in full; please ask again."


class DeliveryFailure:
    """Why a reply sink stopped posting an answer, as the bot.ports.SinkBroken it raises from then on. Two kinds:

    - refused for good (`refuse`): no permission to post in the channel, the channel or the message being edited
      gone. Nothing more is posted, not even a sentence saying so (`for_good`).
    - not taken this once (`drop`): a new message the platform did not take (a 5xx, a 429 past the client's
      retries). It is not posted again, since the platform may have taken it anyway; the rest of the answer is
      dropped, but a sentence saying so may still go through (`dropped_only`).

    Each kind keeps its first text and logs it once, at WARNING, on the sink's own logger: the text names the
    channel id and the platform's error code, since that is what an operator acts on (invite the bot, lift the
    channel's posting restriction). Later ones of the same kind are consequences of the first: neither kept nor
    logged. `raise_if_lost` raises the refusal for good if there is one, else the drop."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._refused: SinkBroken | None = None
        self._dropped: SinkBroken | None = None

    def refuse(self, text: str) -> None:
        """Note a refusal for good described by `text` (kept and logged only if it is the first)."""
        if self._refused is None:
            self._refused = self._noted(text)

    def drop(self, text: str) -> None:
        """Note a message not taken this once, described by `text` (kept and logged only if it is the first)."""
        if self._dropped is None:
            self._dropped = self._noted(text)

    @property
    def for_good(self) -> bool:
        """Whether the platform refused the answer for good (then not even a sentence is posted)."""
        return self._refused is not None

    @property
    def dropped_only(self) -> bool:
        """Whether a message was not taken this once and nothing was refused for good (a sentence may go)."""
        return self._dropped is not None and self._refused is None

    def raise_if_lost(self) -> None:
        """Raises the kept SinkBroken, if the answer was refused or a message dropped."""
        if (lost := self._refused or self._dropped) is not None:
            raise lost

    def _noted(self, text: str) -> SinkBroken:
        lost = SinkBroken(text)
        self._log.warning("%s; the rest of the answer is dropped", lost)
        return lost
