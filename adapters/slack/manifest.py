"""The Slack app manifest (YAML) for one-step install: `seedbot slack manifest --url https://host`.

Built from what SlackHandlers registers (events, block actions, the /seed command), so the app asks
Slack for exactly what the code listens to, plus the bot scopes its Web API calls need. Shape:
https://docs.slack.dev/reference/app-manifest (agent_view replaces assistant_view under the agent
messaging experience; https://docs.slack.dev/ai/migrating-to-agent-messaging).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from adapters.slack.adapter import EVENTS_PATH

# Events API types that Slack subscribes to under other names (message.* by conversation type).
SUBSCRIPTION_NAMES = {"message": ("message.channels", "message.groups", "message.im", "message.mpim")}
# Bot scopes, each for what needs it.
BOT_SCOPES = (
    "app_mentions:read",  # app_mention
    "assistant:write",  # agent view, assistant.threads.setSuggestedPrompts/setStatus
    "channels:history",  # message.channels
    "channels:read",  # conversations.info for channel names in reports
    "chat:write",  # chat.postMessage/update and chat.*Stream
    "commands",  # /seed
    "files:read",  # attachments people share
    "files:write",  # the daily summary's chart
    "groups:history",  # message.groups
    "groups:read",  # conversations.info for private channel names in reports
    "im:history",  # message.im
    "im:read",  # DM metadata on events
    "im:write",  # conversations.open for summaries and alerts
    "mpim:history",  # message.mpim: replies in a group DM's thread the bot answers in
    "users:read",  # users.info for names
)
DESCRIPTION = "Answers code questions and reviews diffs with ByteDance seed-2-0-code, within per-channel budgets."
AGENT_DESCRIPTION = ("Ask about code, paste an error or a diff, or attach files. Add --web to let it search "
                     "the web, --fast to skip thinking.")


def bot_events(events: Iterable[str]) -> list[str]:
    """Manifest subscription names for Events API types, sorted."""
    return sorted({name for event in events for name in SUBSCRIPTION_NAMES.get(event, (event,))})


def slack_manifest(base_url: str | None, *, events: Iterable[str], actions: Iterable[str],
                   commands: Iterable[str], name: str = "seedbot") -> dict[str, Any]:
    """The manifest as a dict. `base_url` is where `seedbot run` serves HTTP (https://host); events,
    interactivity and /seed all post to its /slack/events. None means Socket Mode (no Request URLs).
    Raises ValueError for a URL Slack would refuse (Request URLs must be https)."""
    url: str | None = None
    if base_url is not None:
        base = base_url.rstrip("/")
        if not base.startswith("https://") or len(base) <= len("https://"):
            raise ValueError("--url must be the https:// address Slack can reach seedbot at")
        url = base + EVENTS_PATH
    at = {"url": url} if url else {}
    request_url = {"request_url": url} if url else {}
    slash = [{"command": command, **at, "description": "Budgets and spend (admins change budgets)",
              "usage_hint": "budget 5/day | spend | help", "should_escape": False} for command in sorted(commands)]
    return {
        "_metadata": {"major_version": 2, "minor_version": 1},
        "display_information": {"name": name, "description": DESCRIPTION},
        "features": {
            "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": False},
            "bot_user": {"display_name": name, "always_online": True},
            "agent_view": {"agent_description": AGENT_DESCRIPTION},
            "slash_commands": slash,
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": {**request_url, "bot_events": bot_events(events)},
            "interactivity": {"is_enabled": bool(list(actions)), **request_url},
            "org_deploy_enabled": False,
            "socket_mode_enabled": url is None,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True)
