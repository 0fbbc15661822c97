"""What `seedbot run` needs from a platform adapter."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from bot.ports import Notifier


class PlatformAdapter(Protocol):
    name: str
    notifier: Notifier

    def mount(self, app: web.Application) -> None:
        """Add HTTP routes to the process's server (before it starts). Most adapters add none."""

    async def start(self) -> None:
        """Connect to the platform. Returns once connected (or raises a ConfigError-worthy error)."""

    async def stop_accepting(self) -> None:
        """Take no new messages (shutdown has begun); answers in flight may still post."""

    async def stop(self) -> None:
        """Stop receiving new messages. Answers in flight are drained by the runner."""
