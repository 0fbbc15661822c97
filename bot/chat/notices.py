"""The sentences the bot says about itself (not the model's words), in one place."""

from __future__ import annotations

from datetime import UTC

from bot.budget.reservations import GLOBAL_SCOPE, Denial
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


def denial_text(denial: Denial, platform: Platform, settings: Settings) -> str:
    whose = "The bot's overall budget" if denial.scope_key == GLOBAL_SCOPE else "This channel's budget"
    resets = denial.resets_at.replace(tzinfo=UTC).astimezone(settings.tz)
    return (
        f"{whose} is used up: {format_usd(denial.spent_nanos)} of {format_usd(denial.limit_nanos)} spent "
        f"this period, and this answer could cost up to {format_usd(denial.needed_nanos)}. "
        f"It resets {resets:%Y-%m-%d %H:%M} {settings.tz.key}. "
        f"{_sentence_case(admin_mentions(platform, settings))} can raise it with `/seed budget` or "
        f"`seedbot budget set`."
    )


def too_long_text(tokens: int, limit: int) -> str:
    return (f"That message is too long for me: about {tokens:,} tokens, and a prompt may hold {limit:,}. "
            "Attach the most relevant part, or split it over a few messages.")


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]
