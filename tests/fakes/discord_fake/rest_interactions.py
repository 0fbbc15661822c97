"""REST routes for interaction responses: the callback, then followups and edits through the webhook token."""

from __future__ import annotations

import time

from aiohttp import web

from . import messages
from .backend import Backend
from .interactions import APPLICATION_COMMAND, MESSAGE_COMPONENT, InteractionState
from .messages import MessageBody
from .model import CHAT_INPUT_COMMAND, EPHEMERAL, JSON, LOADING
from .records import InteractionCallback
from .rest_common import (
    UNKNOWN_MESSAGE,
    ApiError,
    UploadedFile,
    edit_stored_message,
    form_error,
    json_response,
    message_body,
    no_content,
    read_message_request,
    store_uploads,
    unknown,
    validate_message_fields,
)
from .routing import Routes

CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
MODAL = 9
# Response types Discord accepts for an application command (component-only types are refused).
COMMAND_RESPONSE_TYPES = (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL)
COMPONENT_RESPONSE_TYPES = (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE, MODAL)
TRUE_VALUES = ("1", "true", "True")


class InteractionRoutes:
    def __init__(self, backend: Backend) -> None:
        self.b = backend

    def register(self, routes: Routes) -> None:
        routes.add("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self.callback)
        routes.add("POST", "/webhooks/{application_id}/{webhook_token}", self.followup)
        message_path = "/webhooks/{application_id}/{webhook_token}/messages/{message_id}"
        routes.add("GET", message_path, self.get_message)
        routes.add("PATCH", message_path, self.edit_message)
        routes.add("DELETE", message_path, self.delete_message)

    async def callback(self, request: web.Request) -> web.Response:
        interaction_id = request.match_info["interaction_id"]
        state = self.b.interactions.live_state(
            int(interaction_id) if interaction_id.isdigit() else -1, request.match_info["interaction_token"]
        )
        if state.response_type is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        body, files = await read_message_request(request)
        response_type, data = body.get("type"), body.get("data") or {}
        allowed = COMPONENT_RESPONSE_TYPES if state.kind == MESSAGE_COMPONENT else COMMAND_RESPONSE_TYPES
        if response_type not in allowed:
            raise form_error(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
        draft: MessageBody | None = None
        if response_type == CHANNEL_MESSAGE:
            validate_message_fields(data)
            draft = message_body(data, store_uploads(self.b.world, data, files))
        elif response_type == DEFERRED_CHANNEL_MESSAGE:
            draft = MessageBody(flags=LOADING | (int(data.get("flags") or 0) & EPHEMERAL))
        if response_type == UPDATE_MESSAGE:
            validate_message_fields(data)
        # Acknowledged before the first await, so a concurrent second callback is refused.
        state.response_type = response_type
        self.b.records.interaction_callbacks.append(
            InteractionCallback(state.id, state.token, response_type, data, time.monotonic())
        )
        message = await self._create(state, draft, data) if draft is not None else None
        if response_type == UPDATE_MESSAGE and state.component_message_id in self.b.world.messages:
            message = await self._edit(self.b.world.messages[state.component_message_id], data, [])
        if request.query.get("with_response") not in TRUE_VALUES:
            return no_content()
        return json_response(_callback_response(state, response_type, message))

    async def followup(self, request: web.Request) -> web.Response:
        state = self._state(request)
        body, files = await read_message_request(request)
        original = self._original(state)
        if original is not None and original["flags"] & LOADING:
            # The first followup after a deferral fills in the "thinking..." message, keeping its visibility.
            message = await self._edit(original, body, files)
        else:
            validate_message_fields(body)
            message = await self._create(
                state, message_body(body, store_uploads(self.b.world, body, files)), body
            )
        return json_response(message) if request.query.get("wait") in TRUE_VALUES else no_content()

    async def get_message(self, request: web.Request) -> web.Response:
        return json_response(self._owned_message(self._state(request), request.match_info["message_id"]))

    async def edit_message(self, request: web.Request) -> web.Response:
        message = self._owned_message(self._state(request), request.match_info["message_id"])
        body, files = await read_message_request(request)
        return json_response(await self._edit(message, body, files))

    async def delete_message(self, request: web.Request) -> web.Response:
        message = self._owned_message(self._state(request), request.match_info["message_id"])
        await self.b.delete(message, via="interaction")
        return no_content()

    # -- helpers -----------------------------------------------------------------------------------

    def _state(self, request: web.Request) -> InteractionState:
        application_id = request.match_info["application_id"]
        return self.b.interactions.webhook_state(
            int(application_id) if application_id.isdigit() else -1, request.match_info["webhook_token"]
        )

    def _original(self, state: InteractionState) -> JSON | None:
        if state.original_message_id is None:
            return None
        return self.b.world.messages.get(state.original_message_id)

    def _owned_message(self, state: InteractionState, message_id: str) -> JSON:
        if message_id == "@original":
            wanted = state.original_message_id
        else:
            wanted = int(message_id) if message_id.isdigit() else None
        message = self.b.world.messages.get(wanted) if wanted in state.message_ids else None
        if message is None:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return message

    async def _create(self, state: InteractionState, draft: MessageBody, body: JSON) -> JSON:
        world = self.b.world
        user = world.users[state.user_id]
        summary: JSON = {"id": str(state.id), "type": state.kind, "name": state.command_name}
        message = messages.create(
            world,
            self.b.channel(state.channel_id),
            world.bot,
            draft,
            message_type=CHAT_INPUT_COMMAND,
            webhook_id=str(world.application_id),
            application_id=str(world.application_id),
            interaction=dict(summary, user=user.to_payload()),
            interaction_metadata=dict(
                summary,
                command_type=1,
                user=user.to_payload(),
                authorizing_integration_owners={"0": str(state.guild_id or 0)},
            ),
        )
        state.message_ids.append(int(message["id"]))
        if state.original_message_id is None:
            state.original_message_id = int(message["id"])
        self.b.record("create", message, via="interaction", body=body)
        if not message["flags"] & EPHEMERAL:
            await self.b.gateway.dispatch_message("MESSAGE_CREATE", message)
        return message

    async def _edit(self, message: JSON, body: JSON, files: list[UploadedFile]) -> JSON:
        visibility = message["flags"] & EPHEMERAL
        edited = edit_stored_message(self.b.world, message, body, files)
        edited["flags"] = (edited["flags"] & ~(LOADING | EPHEMERAL)) | visibility
        self.b.record("edit", edited, via="interaction", body=body)
        if not visibility:
            await self.b.gateway.dispatch_message("MESSAGE_UPDATE", edited)
        return edited


def _callback_response(state: InteractionState, response_type: int, message: JSON | None) -> JSON:
    interaction: JSON = {"id": str(state.id), "type": APPLICATION_COMMAND}
    resource: JSON = {"type": response_type}
    if message is not None:
        interaction.update(
            response_message_id=message["id"],
            response_message_loading=bool(message["flags"] & LOADING),
            response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
        )
        resource["message"] = message
    return {"interaction": interaction, "resource": resource}
