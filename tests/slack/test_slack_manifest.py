"""`seedbot slack manifest` and `seedbot discord invite`: what they print, parsed, against what the app
really registers (the Bolt listeners of a running bot) and the permissions Discord documents."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.discord.invite import application_id_from_token
from adapters.slack.manifest import SUBSCRIPTION_NAMES
from tests.cli.test_cli_ask import run_cli
from tests.fakes.seed import FakeSeed
from tests.slack.harness import RunningBot


async def matching_listeners(app: AsyncApp, body: dict | None) -> set[int]:
    """Which of the app's Bolt listeners (by position) match a request with `body`, leaving out the
    catch-all that only acknowledges; every one of them when `body` is None."""

    async def matches(payload: dict) -> set[int]:
        request = AsyncBoltRequest(body=payload, mode="socket_mode")
        found = set()
        for index, listener in enumerate(app._async_listeners):  # noqa: SLF001 - what Bolt dispatches to
            if await listener.async_matches(req=request, resp=BoltResponse(status=200)):
                found.add(index)
        return found

    catch_all = await matches({"type": "event_callback", "event": {"type": "zz_never_subscribed"}})
    if body is None:
        return set(range(len(app._async_listeners))) - catch_all  # noqa: SLF001
    return await matches(body) - catch_all


def api_type(subscription: str) -> str:
    """message.im -> message; other subscription names are Events API types themselves."""
    return next((event for event, names in SUBSCRIPTION_NAMES.items() if subscription in names), subscription)


async def test_manifest_subscribes_to_exactly_what_the_running_app_listens_to(
        bot: RunningBot, fake_seed: FakeSeed, tmp_path: Path) -> None:
    code, out, err = await run_cli(fake_seed, tmp_path, "slack", "manifest", "--url", "https://bot.example.com/")
    assert code == 0, err
    manifest = yaml.safe_load(out)
    settings = manifest["settings"]
    url = "https://bot.example.com/slack/events"
    assert settings["event_subscriptions"]["request_url"] == url == settings["interactivity"]["request_url"]
    assert settings["interactivity"]["is_enabled"] is True and settings["socket_mode_enabled"] is False
    assert manifest["features"]["agent_view"]["agent_description"]
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True

    handlers = bot.adapter.handlers
    subscribed = {api_type(name) for name in settings["event_subscriptions"]["bot_events"]}
    assert subscribed == handlers.events
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == sorted(handlers.commands)
    assert all(c["url"] == url for c in manifest["features"]["slash_commands"])

    # Every subscribed event, block action and command reaches one of the app's own Bolt listeners
    # (not only the catch-all that acknowledges the rest), and every listener is reached by one.
    app = bot.adapter.app
    reached: set[int] = set()
    for event in subscribed - {"assistant_thread_started", "assistant_thread_context_changed"}:
        found = await matching_listeners(app, {"type": "event_callback", "event": {"type": event}})
        assert found, f"no listener for {event}"
        reached |= found
    for action in handlers.actions:
        found = await matching_listeners(app, {"type": "block_actions", "actions": [{"action_id": action}]})
        assert found, f"no listener for the {action} block action"
        reached |= found
    for command in handlers.commands:
        found = await matching_listeners(app, {"command": command, "text": ""})
        assert found, f"no listener for {command}"
        reached |= found
    assert reached == await matching_listeners(app, None), "a listener no manifest entry reaches"

    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history", "commands",
            "assistant:write", "chat:write"} <= scopes
    assert {"message.channels", "message.groups", "message.im", "message.mpim"} <= set(
        settings["event_subscriptions"]["bot_events"])


async def test_socket_mode_manifest_has_no_request_urls(fake_seed: FakeSeed, tmp_path: Path) -> None:
    code, out, err = await run_cli(fake_seed, tmp_path, "slack", "manifest", "--socket-mode")
    assert code == 0, err
    settings = yaml.safe_load(out)["settings"]
    assert settings["socket_mode_enabled"] is True and "request_url" not in settings["event_subscriptions"]
    code, _, err = await run_cli(fake_seed, tmp_path, "slack", "manifest", "--url", "http://plain.example.com")
    assert code == 2 and "https://" in err


async def test_discord_invite_asks_for_exactly_the_permissions_the_bot_uses(fake_seed: FakeSeed,
                                                                             tmp_path: Path) -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.fake-secret"
    assert application_id_from_token(token) == 123456789012345678
    code, out, err = await run_cli(fake_seed, tmp_path, "discord", "invite", env={"DISCORD_BOT_TOKEN": token})
    assert code == 0, err
    query = parse_qs(urlsplit(out.strip()).query)
    assert query["client_id"] == ["123456789012345678"]
    assert query["scope"] == ["bot applications.commands"]
    # View Channel, Send Messages, Attach Files, Read Message History, Create Public Threads,
    # Send Messages in Threads (https://discord.com/developers/docs/topics/permissions).
    bits = {10, 11, 15, 16, 35, 38}
    assert int(query["permissions"][0]) == sum(1 << bit for bit in bits)
    code, _, err = await run_cli(fake_seed, tmp_path, "discord", "invite")
    assert code == 2 and "--client-id" in err
