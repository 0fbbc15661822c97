"""Acknowledging Events API deliveries before Bolt dispatches them.

Slack wants every event acknowledged within 3 s, and an `event_callback` is acknowledged with an empty
200 whatever the app does with it (Slack's Events API documentation: "respond with an HTTP 200 OK").
Bolt checks the signature, parses the body, runs its middleware and matches listeners before it
acknowledges; with a hundred events arriving at once, each waits for all the others' dispatch. Here a
signed event_callback is acknowledged after the signature check alone (slack_sdk's SignatureVerifier:
Slack's v0 HMAC-SHA256 over `v0:{timestamp}:{body}`, five-minute window), and Bolt dispatches it in a
task afterwards. Everything else (url_verification, slash commands, interactivity, bad signatures) still
gets Bolt's own response.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from slack_sdk.signature import SignatureVerifier

EVENT_CALLBACK = "event_callback"


class EarlyAck:
    """Decides whether a delivery may be acknowledged before dispatch."""

    def __init__(self, signing_secret: str) -> None:
        self._verifier = SignatureVerifier(signing_secret)

    def acknowledges(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """True for a JSON `event_callback` whose X-Slack-Signature is valid for `body` (raw bytes)."""
        if not headers.get("Content-Type", "").startswith("application/json"):
            return False
        if not self._verifier.is_valid(body=body, timestamp=headers.get("X-Slack-Request-Timestamp", ""),
                                       signature=headers.get("X-Slack-Signature", "")):
            return False
        try:
            payload = json.loads(body)
        except ValueError:
            return False
        return isinstance(payload, dict) and payload.get("type") == EVENT_CALLBACK
