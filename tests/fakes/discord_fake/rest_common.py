"""Pieces every REST route shares: Discord's error shapes, JSON responses, message bodies."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from . import messages
from .messages import MessageBody
from .model import JSON, World

CONTENT_LIMIT = 2000
EMBEDS_LIMIT = 10
EMBED_TOTAL_LIMIT = 6000
EMBED_FIELD_LIMITS = {"title": 256, "description": 4096}


class ApiError(Exception):
    """An error answer in Discord's format: {"message", "code"} plus "errors" for form errors."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def to_response(self) -> web.Response:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def unauthorized() -> ApiError:
    return ApiError(401, 0, "401: Unauthorized")


def unknown(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_USER = 10013
UNKNOWN_INTERACTION = 10062
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
FORBIDDEN_MESSAGES = {MISSING_ACCESS: "Missing Access", MISSING_PERMISSIONS: "Missing Permissions"}


def forbidden(code: int) -> ApiError:
    """Discord's 403 for `code` (MISSING_ACCESS or MISSING_PERMISSIONS), with its documented message."""
    return ApiError(403, code, FORBIDDEN_MESSAGES[code])


def form_error(path: list[str | int], code: str, message: str) -> ApiError:
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def json_response(payload: Any, status: int = 200) -> web.Response:
    # discord.py only parses bodies whose Content-Type is exactly "application/json".
    return web.Response(
        status=status, body=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )


def no_content() -> web.Response:
    return web.Response(status=204)


@dataclass(frozen=True)
class UploadedFile:
    index: int
    filename: str
    content_type: str | None
    data: bytes


async def read_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json(loads=json.loads)
    except json.JSONDecodeError as exc:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc


async def read_message_request(request: web.Request) -> tuple[JSON, list[UploadedFile]]:
    """Reads a JSON body, or discord.py's multipart form: a payload_json part and files[n] parts."""
    if not request.content_type.startswith("multipart/"):
        body = await read_json(request)
        return (body if isinstance(body, dict) else {}), []
    payload: JSON = {}
    files: list[UploadedFile] = []
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        name = part.name or ""
        if name == "payload_json":
            payload = json.loads(await part.text())
        elif name.startswith("files[") and name.endswith("]"):
            data = bytes(await part.read(decode=False))
            content_type = part.headers.get("Content-Type")
            files.append(UploadedFile(int(name[6:-1]), part.filename or "unknown", content_type, data))
    return payload, sorted(files, key=lambda f: f.index)


BUTTON_STYLES = (1, 2, 3, 4, 5, 6)
LINK_STYLE, PREMIUM_STYLE = 5, 6


def validate_components(components: object) -> None:
    """Message components as Discord checks them: up to 5 action rows of up to 5 buttons; a button
    has a style, a label or emoji, and (unless a link) a custom_id of 1..100 characters, unique."""
    if not isinstance(components, list) or len(components) > 5:
        raise form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    seen: set[str] = set()
    for row_index, row in enumerate(components):
        if not isinstance(row, dict) or row.get("type") != 1:
            raise form_error(["components", row_index, "type"], "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Invalid row")
        buttons = row.get("components") or []
        if not 1 <= len(buttons) <= 5:
            raise form_error(["components", row_index, "components"], "BASE_TYPE_BAD_LENGTH",
                             "Must be between 1 and 5 in length.")
        for index, button in enumerate(buttons):
            where = ["components", row_index, "components", index]
            if not isinstance(button, dict) or button.get("type") != 2 or button.get("style") not in BUTTON_STYLES:
                raise form_error(where, "COMPONENT_TYPE_INVALID", "Invalid component")
            if not (button.get("label") or button.get("emoji")) or len(button.get("label") or "") > 80:
                raise form_error(where + ["label"], "BASE_TYPE_REQUIRED", "A button needs a label (<= 80) or emoji")
            if button["style"] not in (LINK_STYLE, PREMIUM_STYLE):
                custom_id = button.get("custom_id")
                if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100 or custom_id in seen:
                    raise form_error(where + ["custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED",
                                     "custom_id must be 1..100 characters and unique in the message")
                seen.add(custom_id)


def validate_message_fields(body: JSON) -> None:
    if body.get("components"):
        validate_components(body["components"])
    content = body.get("content") or ""
    if len(content) > CONTENT_LIMIT:
        raise form_error(["content"], "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > EMBEDS_LIMIT:
        raise form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", f"Must be {EMBEDS_LIMIT} or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for name, limit in EMBED_FIELD_LIMITS.items():
            text = embed.get(name) or ""
            total += len(text)
            if len(text) > limit:
                too_long = f"Must be {limit} or fewer in length."
                raise form_error(["embeds", index, name], "BASE_TYPE_MAX_LENGTH", too_long)
    if total > EMBED_TOTAL_LIMIT:
        raise form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def reject_empty(content: str, embeds: list[JSON], attachments: list[JSON], body: JSON) -> None:
    if not (
        content
        or embeds
        or attachments
        or body.get("sticker_ids")
        or body.get("components")
        or body.get("poll")
    ):
        raise ApiError(400, 50006, "Cannot send an empty message")


def store_uploads(world: World, body: JSON, files: list[UploadedFile]) -> list[JSON]:
    """Stores uploaded files as attachments; payload_json's attachments[] may rename or describe them."""
    described = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
    stored: list[JSON] = []
    for upload in files:
        meta = described.get(str(upload.index), {})
        attachment = world.store_file(
            meta.get("filename") or upload.filename, upload.data, upload.content_type
        )
        if meta.get("description"):
            attachment["description"] = meta["description"]
        stored.append(attachment)
    return stored


def message_body(body: JSON, attachments: list[JSON]) -> MessageBody:
    validate_message_fields(body)
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    reject_empty(content, embeds, attachments, body)
    return MessageBody(
        content=content,
        embeds=embeds,
        attachments=attachments,
        allowed_mentions=body.get("allowed_mentions"),
        message_reference=body.get("message_reference"),
        flags=int(body.get("flags") or 0),
        nonce=body.get("nonce"),
        tts=bool(body.get("tts")),
        components=body.get("components") or [],
    )


def edit_stored_message(world: World, message: JSON, body: JSON, files: list[UploadedFile]) -> JSON:
    """Applies a PATCH to a stored message, all or nothing, and returns the stored result."""
    validate_message_fields(body)
    candidate = messages.edit(world, copy.deepcopy(message), body, store_uploads(world, body, files))
    reject_empty(candidate["content"], candidate["embeds"], candidate["attachments"], candidate)
    world.messages[int(candidate["id"])] = candidate
    return candidate
