"""`seedbot discord invite`: the OAuth2 URL that adds the bot to a server with exactly the
permissions it uses (built by discord.py's oauth_url; bits per
https://discord.com/developers/docs/topics/permissions)."""

from __future__ import annotations

import base64
import binascii

import discord

SCOPES = ("bot", "applications.commands")  # the bot user, and the slash commands


def bot_permissions() -> discord.Permissions:
    """What the bot does in a server, and nothing more."""
    return discord.Permissions(
        view_channel=True,  # see the channels it is mentioned in
        send_messages=True,  # answers, alerts, the typing indicator
        read_message_history=True,  # reply to a message (answers where no thread can be opened)
        create_public_threads=True,  # open a thread from the question
        send_messages_in_threads=True,  # answer in that thread
        attach_files=True,  # the daily summary's chart
    )


def application_id_from_token(token: str) -> int | None:
    """A bot token begins with its user id in base64; a bot's user id is its application's id.
    None if the token does not have that shape."""
    head = token.split(".", 1)[0]
    try:
        decoded = base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(decoded) if decoded.isdigit() else None


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=bot_permissions(), scopes=SCOPES)
