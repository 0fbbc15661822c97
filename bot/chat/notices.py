"""The sentences the bot says about itself (not the model's words), in one place."""

from __future__ import annotations

from datetime import UTC

from bot.budget.outcomes import Denial, Grant
from bot.budget.scopes import GLOBAL_SCOPE, split_person_scope
from bot.config import Settings
from bot.domain import Platform, format_usd


def admins_on(platform: Platform, settings: Settings) -> list[str]:
    prefix = f"{platform.value}:"
    return sorted(a.removeprefix(prefix) for a in settings.admin_ids if a.startswith(prefix))


def admin_mentions(platform: Platform, settings: Settings) -> str:
    ids = admins_on(platform, settings)
    if not ids:
        return "an admin"
    if platform in (Platform.SLACK, Platform.DISCORD):
        return "an admin (" + ", ".join(f"<@{i}>" for i in ids) + ")"
    return "an admin (" + ", ".join(ids) + ")"


def budget_name(scope_key: str) -> str:
    """Which limit a scope key is, in the words of the person it applies to."""
    if scope_key == GLOBAL_SCOPE:
        return "the bot's overall budget"
    if split_person_scope(scope_key) is not None:
        return "your personal budget in this channel"
    return "this channel's budget"


def degrade_notes(grant: Grant, *, web_search: bool, thinking: bool) -> list[str]:
    """Footer notes for what the budget turned off or cut, given what the call asked for."""
    scope = grant.degraded_by or ""
    if scope == GLOBAL_SCOPE:
        why = "the bot's overall budget nearly spent"
    elif split_person_scope(scope) is not None:
        why = "your budget nearly spent"
    else:
        why = "channel budget nearly spent"
    notes = []
    if web_search and not grant.web_search:
        notes.append(f"web search off: {why}")
    if thinking and not grant.thinking:
        notes.append(f"thinking off: {why}")
    if grant.shrunk:
        notes.append(f"answer limited to {grant.max_tokens:,} tokens by the budget")
    return notes


def denial_text(denial: Denial, platform: Platform, settings: Settings) -> str:
    whose = _sentence_case(budget_name(denial.scope_key))
    personal = split_person_scope(denial.scope_key) is not None
    how, how_cli = (" user", " --user") if personal else ("", "")
    resets = denial.resets_at.replace(tzinfo=UTC).astimezone(settings.tz)
    return (
        f"{whose} has too little left for this answer: {format_usd(denial.spent_nanos)} of "
        f"{format_usd(denial.limit_nanos)} spent "
        f"this period, and this answer could cost up to {format_usd(denial.needed_nanos)}. "
        f"It resets {resets:%Y-%m-%d %H:%M} {settings.tz.key}. "
        f"{_sentence_case(admin_mentions(platform, settings))} can raise it with `/seed budget{how}` or "
        f"`seedbot budget set{how_cli}{'' if personal else ' ' + denial.scope_key}`."
    )


def too_long_text(tokens: int, limit: int) -> str:
    return (f"That message is too long for me: about {tokens:,} tokens, and a prompt may hold {limit:,}. "
            "Attach the most relevant part, or split it over a few messages.")


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]
