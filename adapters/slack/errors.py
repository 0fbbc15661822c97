"""Slack's Web API errors as seedbot reads them: the `error` code of a failed call (`error_code`), and the
sets of codes that decide what an answer does next (streaming unavailable, a stream already ended, a refusal
for good)."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError

# Errors that say streaming is not available to this app at all (not just for one message).
STREAMING_UNAVAILABLE = frozenset({"unknown_method", "method_deprecated", "not_allowed_token_type",
                                   "missing_scope", "feature_not_enabled", "not_supported"})
# Errors that say a stream is over already (Slack's stream timeout): the message needs no stop, and may
# still be edited. (message_not_found is not one: that message was deleted, see REFUSED_FOR_GOOD.)
STREAM_ENDED = frozenset({"message_not_in_streaming_state"})
# Slack's error codes ({"ok": false, "error": code}, HTTP 200) that refuse a post, a stream call or an edit
# for good, as the methods' pages list them: https://docs.slack.dev/reference/methods/chat.postMessage,
# chat.startStream, chat.appendStream and chat.stopStream (the channel and thread codes; message_not_found
# for the stream calls), chat.update (message_not_found, cant_update_message, is_inactive); the token codes
# (account_inactive, invalid_auth, token_revoked, token_expired, missing_scope, team_access_not_granted) from
# the same pages' lists of the errors every method can return, as chat.update's page gave them in 2025
# (mirrored as JSON in github.com/slack-ruby/slack-api-ref, methods/chat/). Retrying or posting elsewhere in
# the thread cannot help. Not in it: what a retry or a fallback may fix (ratelimited, internal_error,
# fatal_error, service_unavailable, request_timeout, message_not_in_streaming_state), and msg_too_long, which
# the splitter prevents.
REFUSED_FOR_GOOD = frozenset({
    # The channel or thread: gone, archived or frozen, the bot not a member, posting restricted there.
    "channel_not_found", "not_in_channel", "is_archived", "is_inactive", "no_permission", "ekm_access_denied",
    "restricted_action", "restricted_action_read_only_channel", "restricted_action_thread_locked",
    "restricted_action_non_threadable_channel",
    # The message streamed into or edited: deleted, or not the bot's to change.
    "message_not_found", "cant_update_message",
    # The bot's token: uninstalled, revoked, expired, or without the scope or workspace access to post.
    "account_inactive", "invalid_auth", "token_revoked", "token_expired", "missing_scope",
    "team_access_not_granted",
})


def error_code(exc: Exception) -> str:
    """Slack's `error` code of a failed Web API call (SlackApiError), or what else went wrong."""
    if isinstance(exc, SlackApiError):
        response: Any = exc.response
        try:
            return str(response.get("error") or f"http_{response.status_code}")
        except AttributeError:
            return "slack_api_error"
    return type(exc).__name__
