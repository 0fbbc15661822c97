"""Acknowledging Events API deliveries before Bolt dispatches them.

Slack wants every event acknowledged within 3 s, and an `event_callback` is acknowledged with an empty
200 whatever the app does with it (Slack's Events API documentation: "respond with an HTTP 200 OK").
Bolt parses the body, runs its middleware and matches listeners before it acknowledges; with a hundred
events arriving at once, each waits for all the others' dispatch. So a signed event_callback (checked by
adapters.slack.http_edge and slack_sdk's SignatureVerifier first) is acknowledged at once and Bolt
dispatches it in a task afterwards. Everything else (url_verification, slash commands, interactivity)
still gets Bolt's own response.
"""

from __future__ import annotations

import json

EVENT_CALLBACK = "event_callback"


def acknowledges_early(body: str, content_type: str) -> bool:
    """True for a JSON `event_callback` body (already signature-checked): it may be acknowledged before
    dispatch."""
    if not content_type.split(";", 1)[0].strip().lower() == "application/json":
        return False
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("type") == EVENT_CALLBACK
