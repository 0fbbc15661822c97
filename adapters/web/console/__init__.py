"""The admin console: spend, budgets, the ledger and conversations in a browser, under /admin on the
process's HTTP server. Off with SEEDBOT_CONSOLE=false."""

from __future__ import annotations

from aiohttp import web

from adapters.core import Core
from adapters.web.console.auth import ConsoleAuth, signing_key
from adapters.web.console.routes import PREFIX, Console, Platforms


async def mount_console(app: web.Application, core: Core, platforms: Platforms) -> None:
    """Add /admin's routes and its session guard to `app` (before it starts). `platforms` returns the
    names of the chat platforms this process serves, for the health page."""
    auth = ConsoleAuth(core.db, await signing_key(core.db), core.settings.admin_ids)
    console = Console(core, auth, platforms)
    app.middlewares.append(console.guard)
    app.add_routes(console.routes())


async def sign_in_url(core: Core, admin_id: str) -> str:
    """A one-time sign-in URL for `admin_id` (what `seedbot admin link` prints), pointing at
    SEEDBOT_PUBLIC_URL, or this machine's HTTP port when that is unset."""
    settings = core.settings
    base = (settings.public_url or f"http://localhost:{settings.http_port}").rstrip("/")
    auth = ConsoleAuth(core.db, await signing_key(core.db), settings.admin_ids)
    return f"{base}{PREFIX}/login?token={auth.link_token(admin_id)}"
