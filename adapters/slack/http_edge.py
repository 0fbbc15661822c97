"""The HTTP edge of Slack's Events API and slash commands: every request gets an answer, none a
traceback. Pure checks, applied in this order by SlackAdapter.handle_http:

1. Signature headers (Slack's "Verifying requests from Slack"): `X-Slack-Request-Timestamp` is Unix
   seconds (digits), `X-Slack-Signature` is `v0=` and 64 hex digits. Anything else is 401.
2. The body is UTF-8 (Slack sends nothing else, whatever a Content-Type claims); otherwise 400.
3. After the signature is verified: the payload has the shape Slack documents for its kind (an
   Events API JSON object, a slash command or interactivity form). A signed payload of another shape
   is answered 200, so Slack does not retry it, and ignored with one WARNING line. An `event_callback`
   is answered 200 whatever its fields hold, so only its outline (an object with a `type`, an `event`
   object with a `type`) is checked before the ack, and the JSON types of its fields after it
   (`event_callback_problem`), by the dispatch: a hundred events at once each wait for the checks of
   the ones before them.
4. An `event_callback` is acknowledged before Bolt dispatches it. Slack wants every event
   acknowledged within 3 s, and an event_callback with an empty 200 whatever the app does with it
   (Slack's Events API documentation: "respond with an HTTP 200 OK"); Bolt would first parse, run its
   middleware and match listeners, so with a hundred events at once each would wait for the others
   (SlackAdapter's AckFirst also holds the dispatches until a burst's requests have all been answered).
   Everything else (url_verification, slash commands, interactivity) still gets Bolt's own response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")

# Fields of an Events API envelope and of its event that Bolt or our routing read, with the JSON
# types Slack documents for them (None: the field may be absent or null).
_ENVELOPE_FIELDS: dict[str, tuple[type, ...]] = {
    "team_id": (str,), "api_app_id": (str,), "enterprise_id": (str,), "event_id": (str,),
    "context_team_id": (str,), "context_enterprise_id": (str,), "authorizations": (list,),
    "is_ext_shared_channel": (bool,), "token": (str,), "challenge": (str,),
}
_EVENT_FIELDS: dict[str, tuple[type, ...]] = {
    "type": (str,), "subtype": (str,), "user": (str,), "channel": (str,), "ts": (str,), "thread_ts": (str,),
    "event_ts": (str,), "text": (str,), "channel_type": (str,), "team": (str,), "user_team": (str,),
    "bot_id": (str,), "bot_profile": (dict,), "files": (list,), "blocks": (list,), "message": (dict,),
    "previous_message": (dict,), "assistant_thread": (dict,), "item": (dict,),
}


def header_problem(headers: Mapping[str, str]) -> str | None:
    """Why the signature headers cannot be checked at all, or None."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not TIMESTAMP.fullmatch(timestamp):
        return "malformed X-Slack-Request-Timestamp"
    if not SIGNATURE.fullmatch(signature):
        return "malformed X-Slack-Signature"
    return None


def decode_body(raw: bytes) -> str | None:
    """The body as text, or None if it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """What a signed body is: `problem` says why it is not a payload Slack sends (None when it is one);
    `envelope` is an Events API event_callback as parsed, its outline checked (step 3 above) and its fields
    not yet, so that nothing parses the body again; None for any other payload."""

    problem: str | None
    envelope: dict[str, Any] | None = None

    @property
    def event_callback(self) -> bool:
        """Whether the payload is an event_callback, to be acknowledged before its fields are checked."""
        return self.envelope is not None


def examine_payload(body: str, content_type: str) -> SignedPayload:
    """The body (parsed once) judged against the shapes Slack documents for its kind; an `event_callback`
    only by its outline (its fields: `event_callback_problem`, after the ack)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return SignedPayload(_form_problem(body))
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's stack
        return SignedPayload("body is not JSON")
    if problem := _outline_problem(payload):
        return SignedPayload(problem)
    if payload["type"] != "event_callback":
        return SignedPayload(_envelope_fields_problem(payload))
    if media == "application/json":
        return SignedPayload(None, payload)
    return SignedPayload(event_callback_problem(payload))  # Bolt's to answer: checked whole now


def event_callback_problem(envelope: dict[str, Any]) -> str | None:
    """Why an acknowledged event_callback (`SignedPayload.envelope`) is not one Slack sends: a field of the
    envelope or of its event with another JSON type than Slack documents; None when it is one."""
    event = envelope["event"]
    if problem := _envelope_fields_problem(envelope) or _fields_problem(event, _EVENT_FIELDS, "event"):
        return problem
    if any(not isinstance(f, dict) for f in event.get("files") or ()):
        return "event.files are not objects"
    return None


def needs_bolt(envelope: dict[str, Any]) -> bool:
    """Whether an event_callback needs Bolt's dispatch (its middleware: the Assistant's threads live in DMs)
    rather than going straight to the pure router: everything but an `app_mention` and a `message` outside
    a DM (channel_type "im"), which SlackHandlers.route decides alone once the workspace is known."""
    event = envelope["event"]
    kind = event.get("type")
    return not (kind == "app_mention" or (kind == "message" and event.get("channel_type") not in (None, "im")))


def _form_problem(body: str) -> str | None:
    form = parse_qs(body, keep_blank_values=True)
    if "payload" in form:  # interactivity: one JSON object
        try:
            payload = json.loads(form["payload"][0])
        except (ValueError, RecursionError):
            return "interactivity payload is not JSON"
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return "interactivity payload has no type"
        return None
    if not form.get("command"):
        return "form is neither a slash command nor an interactivity payload"
    return None


def _outline_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return f"payload is {type(payload).__name__}, not an object"
    if not isinstance(payload.get("type"), str):
        return "payload has no type"
    event = payload.get("event")
    if payload["type"] != "event_callback":
        return None if event is None or isinstance(event, dict) else "event is not an object"
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "event_callback without an event object"
    return None


def _envelope_fields_problem(payload: dict[str, Any]) -> str | None:
    if problem := _fields_problem(payload, _ENVELOPE_FIELDS, "payload"):
        return problem
    if any(not isinstance(a, dict) for a in payload.get("authorizations") or ()):
        return "authorizations are not objects"
    return None


def _fields_problem(obj: dict[str, Any], fields: dict[str, tuple[type, ...]], where: str) -> str | None:
    # Over the fields the object has (a dozen), not every field the table knows: this runs for every event.
    for name, value in obj.items():
        types = fields.get(name)
        if types is not None and value is not None and not isinstance(value, types):
            return f"{where}.{name} is {type(value).__name__}"
    return None
