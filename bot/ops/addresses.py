"""The id grammar people type: `platform:id` where a platform has one workspace in this deployment,
`platform:workspace:id` where several share it (`slack:T0123:C0456`, `slack:T0123:U0789`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import Platform


@dataclass(frozen=True, slots=True)
class Address:
    """A channel or a person. `workspace_id` is None when the address names none."""

    platform: str
    workspace_id: str | None
    id: str

    @classmethod
    def parse(cls, text: str) -> Address:
        """`slack:U0456` or `slack:T0123:U0456`. Raises ValueError naming the expected shape."""
        parts = text.strip().split(":")
        if len(parts) not in (2, 3) or parts[0] not in tuple(Platform) or not all(parts):
            raise ValueError(f"{text!r} is not an id: write platform:id or platform:workspace:id, "
                             "e.g. slack:U0456 or slack:T0123:U0456")
        return cls(parts[0], parts[1] if len(parts) == 3 else None, parts[-1])

    def __str__(self) -> str:
        return ":".join(p for p in (self.platform, self.workspace_id, self.id) if p)
