"""Routes under the API prefix, and the middleware every API call passes: auth, limits, records."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .limits import RateLimits
from .records import Records, RestCall
from .refusals import Refusals
from .rest_common import ApiError, json_response, unauthorized

API_PREFIX = "/api/v10"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Interaction callbacks and webhook-token routes authenticate by the token in the path, not a header.
TOKEN_IN_PATH = ("/interactions/", "/webhooks/")
MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_token", "interaction_token")


class Routes:
    """Collects (method, path, handler) and adds them grouped by path, so one resource serves every method."""

    def __init__(self) -> None:
        self._by_path: dict[str, list[tuple[str, Handler]]] = {}

    def add(self, method: str, path: str, handler: Handler, *, api: bool = True) -> None:
        self._by_path.setdefault(API_PREFIX + path if api else path, []).append((method, handler))

    def install(self, router: web.UrlDispatcher) -> None:
        for path, handlers in self._by_path.items():
            resource = router.add_resource(path)
            for method, handler in handlers:
                resource.add_route(method, handler)


def api_middleware(
    token: str, limits: RateLimits, records: Records, refusals: Refusals
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        route = request.match_info.route.resource
        route_key = f"{request.method} {route.canonical if route is not None else path}"
        major = "+".join(request.match_info[k] for k in MAJOR_PARAMETERS if k in request.match_info)
        response: web.StreamResponse
        try:
            if not path.startswith(TOKEN_IN_PATH) and request.headers.get("Authorization") != f"Bot {token}":
                raise unauthorized()
            limited = limits.admit(request.method, path, route_key, major)
            if limited is None:
                refusals.check(request.method, path)  # a refused call still counts against its bucket
            response = limited if limited is not None else await handler(request)
        except ApiError as error:
            response = error.to_response()
        except web.HTTPException as error:
            # Unknown routes and methods answer in Discord's JSON shape, not aiohttp's text.
            response = json_response(
                {"message": f"{error.status}: {error.reason}", "code": 0}, status=error.status
            )
        if response.status != 429:
            response.headers.update(limits.headers(route_key, major))
        records.calls.append(
            RestCall(request.method, path, dict(request.query), response.status, time.monotonic())
        )
        return response

    return middleware
