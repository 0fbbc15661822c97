"""An answer its platform refused for good, as a reply sink keeps it: the first refusal only, logged once."""

from __future__ import annotations

import logging

from bot.ports import SinkBroken

# What the person reads when the last write of an answer was a new message the platform did not take this once
# (not refused for good: the sentence may go through where the message did not).
INCOMPLETE = "This answer could not be posted in full; please ask again."


class Refusal:
    """The first time a platform refused an answer for good (no permission to post in the channel, the
    channel or the message being edited gone), as the bot.ports.SinkBroken the sink raises from then on.

    `refuse(text)` keeps the first refusal and logs it once, at WARNING, on the sink's own logger: `text`
    names the channel id and the platform's error code, since that is what an operator acts on (invite the
    bot, lift the channel's posting restriction). Later refusals of the same answer are consequences of the
    first: they are neither kept nor logged."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.lost: SinkBroken | None = None

    def refuse(self, text: str) -> None:
        """Note a refusal described by `text` (kept and logged only if it is the first)."""
        if self.lost is None:
            self.lost = SinkBroken(text)
            self._log.warning("%s; the rest of the answer is dropped", self.lost)

    def raise_if_lost(self) -> None:
        """Raises the kept SinkBroken, if the answer was refused."""
        if self.lost is not None:
            raise self.lost
