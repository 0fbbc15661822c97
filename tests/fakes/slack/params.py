"""Reading a Web API request: its parameters (query, form or JSON body) and its bearer token."""

from __future__ import annotations

import base64
import json

from aiohttp import web

from .model import JSON, SlackError

# Fields that form-encoded callers send as JSON strings; normalised so assertions see structures.
_JSON_FIELDS = ("blocks", "attachments", "chunks", "files", "prompts", "metadata", "loading_messages")


async def read_params(request: web.Request) -> JSON:
    params: JSON = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise SlackError("invalid_json") from None
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_FIELDS:
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise SlackError("invalid_arguments", f"{key} is not valid JSON") from None
    return params


def bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(client_id, client_secret) sent as HTTP Basic credentials, as slack_sdk sends them; else None."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        return None
    client_id, _, client_secret = base64.b64decode(auth[len("Basic "):]).decode().partition(":")
    return client_id, client_secret
