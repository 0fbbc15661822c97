"""The Slack workspaces one process serves, each with its own bot token, Web API client, user-name
cache and file fetcher.

With SLACK_BOT_TOKEN there is one workspace, known from auth.test at start. Installed through Slack's
OAuth flow (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SCOPES) there is one per installation: Bolt's
authorization finds the installation in slack-sdk's installation store for each event, and the
workspace's objects are built from it on first use and kept, keyed by team and token (a reinstall
brings a new token, hence a new entry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.slack.files import FileFetcher
from adapters.slack.notifier import SlackNotifier
from adapters.slack.routing import BotIdentity
from adapters.slack.users import UserNames
from bot.config import Settings

# How long an install link stays valid, seconds (Slack's own example uses 10 minutes).
OAUTH_STATE_SECONDS = 600


def authorize_url(api_url: str) -> str:
    """Slack's OAuth authorize page beside its Web API: https://slack.com/api/ ->
    https://slack.com/oauth/v2/authorize (https://api.slack.com/authentication/oauth-v2), so a proxy
    or a test server standing in for the API serves it too."""
    return urljoin(api_url if api_url.endswith("/") else api_url + "/", "../oauth/v2/authorize")


def oauth_settings(settings: Settings, installations: AsyncInstallationStore,
                   engine: AsyncEngine) -> AsyncOAuthSettings:
    """Bolt's install flow on /slack/install and /slack/oauth_redirect, with slack-sdk's SQLAlchemy
    installation store and its state store on our database (tables from our migrations). The
    authorize page derives from SLACK_API_URL; oauth.v2.access goes through Bolt's client, whose base
    is SLACK_API_URL too."""
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret.get_secret_value()
        if settings.slack_client_secret else None,
        scopes=[scope.strip() for scope in settings.slack_scopes.split(",") if scope.strip()],
        installation_store=installations,
        state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=OAUTH_STATE_SECONDS, engine=engine),
        authorization_url=authorize_url(settings.slack_api_url),
    )


@dataclass(frozen=True, slots=True)
class SlackWorkspace:
    """What answering in one workspace needs."""

    identity: BotIdentity
    token: str
    client: AsyncWebClient
    users: UserNames
    files: FileFetcher


class Workspaces:
    """`build(token)` makes a workspace's client, user names and file fetcher (the adapter shares
    one HTTP session and its retry policy across all of them)."""

    def __init__(self, build: Callable[[str], tuple[AsyncWebClient, UserNames, FileFetcher]]) -> None:
        self._build = build
        self._known: dict[tuple[str, str], SlackWorkspace] = {}
        # SLACK_BOT_TOKEN mode: every event belongs to this one (set once auth.test has answered).
        self.single: SlackWorkspace | None = None

    def add(self, identity: BotIdentity, token: str) -> SlackWorkspace:
        key = (identity.team_id, token)
        if key not in self._known:
            client, users, files = self._build(token)
            self._known[key] = SlackWorkspace(identity, token, client, users, files)
        return self._known[key]

    def all(self) -> list[SlackWorkspace]:
        return list(self._known.values())

    def for_context(self, context: AsyncBoltContext) -> SlackWorkspace:
        """The workspace of one event, from Bolt's authorization of it. Raises RuntimeError before
        start (single mode) or when Bolt authorized no bot token."""
        if self.single is not None:
            return self.single
        token = context.bot_token
        if not token:
            raise RuntimeError("Slack event without an authorized bot token")
        identity = BotIdentity(context.bot_user_id or "", context.bot_id or "", context.team_id or "")
        return self.add(identity, token)


class InstalledNotifier:
    """bot.ports.Notifier across installed workspaces: people are addressed `T0123:U0456` (the user
    part of `slack:T0123:U0456` in SEEDBOT_ADMINS), channels by their workspace id; each message goes
    out with that workspace's bot token from the installation store. Raises LookupError for a
    workspace without an installation (the delivery is retried later, like any failed one)."""

    def __init__(self, store: AsyncInstallationStore, workspaces: Workspaces) -> None:
        self._store = store
        self._workspaces = workspaces

    async def send_direct(self, user_id: str, text: str, *, png: bytes | None = None, filename: str = "") -> None:
        team_id, _, user = user_id.rpartition(":")
        notifier = await self._notifier(team_id)
        await notifier.send_direct(user, text, png=png, filename=filename)

    async def send_channel(self, workspace_id: str, channel_id: str, text: str) -> None:
        await (await self._notifier(workspace_id)).send_channel(workspace_id, channel_id, text)

    async def workspace(self, team_id: str) -> SlackWorkspace:
        """The installed workspace `team_id`, with its bot token from the installation store (also right
        after a restart, before it sent any event). Raises LookupError if it has no installation."""
        bot = await self._store.async_find_bot(enterprise_id=None, team_id=team_id or None)
        if bot is None or not bot.bot_token:
            raise LookupError(f"seedbot is not installed in Slack workspace {team_id or '(none given)'}")
        return self._workspaces.add(BotIdentity(bot.bot_user_id or "", bot.bot_id or "", team_id), bot.bot_token)

    async def _notifier(self, team_id: str) -> SlackNotifier:
        return SlackNotifier((await self.workspace(team_id)).client)
