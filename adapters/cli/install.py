"""`seedbot slack manifest` and `seedbot discord invite`: what installing the bot on each platform needs."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.cli.common import die, settings_from_env

slack_app = typer.Typer(help="Installing the Slack app.", no_args_is_help=True)
discord_app = typer.Typer(help="Installing the Discord bot.", no_args_is_help=True)


@slack_app.command("manifest")
def slack_manifest(
    url: Annotated[str | None, typer.Option("--url", help="The https:// address Slack reaches seedbot at.")] = None,
    socket_mode: Annotated[bool, typer.Option("--socket-mode", help="Use Socket Mode (SLACK_APP_TOKEN) instead "
                                                                    "of a public URL.")] = False,
    name: Annotated[str, typer.Option("--name", help="The app's and the bot user's name.")] = "seedbot",
) -> None:
    """Print a Slack app manifest (YAML) with every scope, event, /seed and interactivity the bot uses."""
    if (url is None) != socket_mode:
        die("pass either --url https://your-host or --socket-mode", 2)
    from adapters.slack.listeners import ASSISTANT_EVENTS, BLOCK_ACTIONS, COMMANDS, EVENTS
    from adapters.slack.manifest import manifest_yaml, slack_manifest

    try:
        manifest = slack_manifest(url, events=(*ASSISTANT_EVENTS, *EVENTS), actions=BLOCK_ACTIONS,
                                  commands=COMMANDS, name=name)
    except ValueError as exc:
        die(str(exc), 2)
    typer.echo(manifest_yaml(manifest), nl=False)


@discord_app.command("invite")
def discord_invite(
    client_id: Annotated[int | None, typer.Option("--client-id", help="Application ID (default: from "
                                                                        "DISCORD_BOT_TOKEN).")] = None,
) -> None:
    """Print the OAuth2 URL that adds the bot to a server with exactly the permissions it uses."""
    from adapters.discord.invite import application_id_from_token, invite_url

    if client_id is None:
        token = settings_from_env().discord_bot_token
        client_id = application_id_from_token(token.get_secret_value()) if token is not None else None
    if client_id is None:
        die("pass --client-id (the Application ID in the Discord Developer Portal) or set DISCORD_BOT_TOKEN", 2)
    typer.echo(invite_url(client_id))
