"""Secrets in chat text are masked: in what users send before it is stored or sent to the model, and in
what the model writes before it is shown.

Detection comes from Yelp's detect-secrets (its vendor plugins' `denylist` regexes, its keyword list and
keyword regexes, its JWT validity check and its false-positive filters); `RULES` names the source of each
rule, and the few marked "seedbot" cover kinds the library lacks. Its high-entropy plugins are not used:
in chat they would mask every git SHA and lockfile hash.

Masking works on segments the text alone determines, so masking a stream gives the same text whatever
its chunk boundaries (see `StreamRedactor`):
- a line (through its line break) is one segment, or several: see SOFT_CHARS;
- a private key block is one segment, from the line holding its BEGIN to the line break after its END
  (or to the end of the text when it never ends);
- a line longer than `WINDOW` characters is cut near `SEGMENT_CHARS`, and the cut moves past any match
  that would straddle it, so a forced cut never splits a secret up to `LONGEST_MATCH` characters.
Single-line rules see one line at a time, as detect-secrets scans files line by line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from detect_secrets.filters import heuristic
from detect_secrets.plugins import keyword
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector

from bot.domain import AttachmentKind, Incoming

# A line longer than WINDOW is cut after about SEGMENT_CHARS, moved past the end of a match that straddles
# the cut: a secret up to LONGEST_MATCH characters long is never split (the longest fixed-length shapes
# are under 200). A stream holds back at most WINDOW characters of an unfinished line (a private key block
# is held whole until the line break after its END).
SEGMENT_CHARS = 512
LONGEST_MATCH = 512
WINDOW = SEGMENT_CHARS + LONGEST_MATCH
# So prose streams by words, not by lines: a line may also end a segment at its first blank SOFT_CHARS or
# more characters in, unless the segment so far holds one of _SPANS_BLANKS. Only the rules those start
# (keyword assignments, AWS secret keys, key blocks, .npmrc lines) can match across a blank; every other
# rule matches a run without blanks, which a cut after a blank never splits.
SOFT_CHARS = 64
_BLANK = re.compile(r"[ \t]")

# Some library regexes stop at a fixed length (Stripe's 24 characters) although real keys run on:
# a rule marked `extend` masks the rest of the token too.
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]*")


_MASK_PREFIX = "[redacted: "


def mask_for(kind: str) -> str:
    """The placeholder that replaces one secret: `[redacted: AWS secret key]`."""
    return f"{_MASK_PREFIX}{kind}]"


@dataclass(frozen=True, slots=True)
class Rule:
    """One secret shape. `triggers`: casefolded strings of which every match holds one, so lines
    without any are skipped cheaply. `groups` name the capture groups that hold the secret (the first
    that took part in the match is masked; () masks the whole match). `keep(value, line)` returning False
    drops a match. `source` says where the regex comes from."""

    kind: str
    pattern: re.Pattern[str]
    source: str
    triggers: tuple[str, ...]
    groups: tuple[int | str, ...] = ()
    extend: bool = False
    keep: Callable[[str, str], bool] | None = None


def _library(kind: str, plugin: type, index: int, triggers: tuple[str, ...], **options: object) -> Rule:
    pattern = plugin.denylist[index]  # type: ignore[attr-defined]
    return Rule(kind, pattern, f"detect-secrets {plugin.__name__}", triggers, **options)  # type: ignore[arg-type]


_PLACEHOLDER_VALUES = frozenset({"none", "null", "nil", "true", "false", "str", "string", "bytes", "int",
                                 "optional", "secretstr", "required", "undefined", "changeme", "example"})


# `settings.api_key`, `config.password`: a reference in code, not a value.
_ATTRIBUTE_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def _plausible_value(value: str, line: str) -> bool:
    """detect-secrets' default false-positive filters for keyword hits (templates like `${X}` and `<x>`,
    `$VAR`, `x = get_secret()`, no letters at all, `abcdef`-style runs, ids), plus type names and
    placeholders and attribute paths that code and docs put after `password:`."""
    return not (
        len(value) < 6
        or value.startswith(_MASK_PREFIX)  # masked already: masking twice changes nothing
        or value.lower() in _PLACEHOLDER_VALUES
        or _ATTRIBUTE_PATH.fullmatch(value) is not None
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or heuristic.is_indirect_reference(line)
        or heuristic.is_not_alphanumeric_string(value)
        or heuristic.is_sequential_string(value)
        or heuristic.is_likely_id_string(value, line)
    )


def _valid_jwt(value: str, _line: str) -> bool:
    return JwtTokenDetector.is_formally_valid(value)


# detect-secrets' keyword list (password, secret, api_key, private_key, ...) lacks these three.
_KEYWORDS = "|".join((*keyword.DENYLIST, "token", "credentials?", "access_?key"))
# A whole line that assigns a secret-named key a single value: .env (`export X=...`), YAML (`key: v`,
# `- key: v`), INI/TOML/properties (`key = v`) and JSON (`"key": "v",`). A value must be all the line
# holds (a comment aside), which keeps `password: str = Field()` and `token = get(...)` out.
_ASSIGNMENT = re.compile(
    r"^\s*(?:export\s+|-\s+)?([\"']?)[\w.-]*(?:" + _KEYWORDS + r")[\w.-]*\1\s*[:=]\s*"
    r"(?:\"(?P<dq>[^\"\n]{1,256})\"|'(?P<sq>[^'\n]{1,256})'|(?P<bare>[^\s\"'#;,]{1,256}))"
    r"\s*,?\s*(?:#.*)?$",
    re.IGNORECASE,
)

# Every keyword in detect-secrets' list holds one of these; ours add two.
_KEYWORD_TRIGGERS = ("key", "pass", "pwd", "secret", "contras")
_ASSIGNMENT_TRIGGERS = (*_KEYWORD_TRIGGERS, "token", "credential")

RULES: tuple[Rule, ...] = (
    # Cloud
    _library("AWS access key id", AWSKeyDetector, 0, ("a3t", "abia", "acca", "akia", "asia")),
    _library("AWS secret key", AWSKeyDetector, 1, ("aws",), groups=(1,)),
    Rule("AWS secret key", re.compile(
        r"(?i)aws.{0,20}?(?:secret|key).{0,20}?[=:]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
        "seedbot", ("aws",), groups=(1,)),
    _library("Azure storage key", AzureStorageKeyDetector, 0, ("accountkey=",)),
    Rule("Azure shared access key", re.compile(r"(?i)\bSharedAccessKey=([A-Za-z0-9+/=]{20,100})"), "seedbot",
         ("sharedaccesskey=",), groups=(1,)),
    Rule("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), "seedbot", ("aiza",), extend=True),
    # Version control and package registries
    _library("GitHub token", GitHubTokenDetector, 0, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), extend=True),
    Rule("GitHub token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{50,255}"), "seedbot", ("github_pat_",)),
    *(_library("GitLab token", GitLabTokenDetector, i, ("gl", "gr1348941"))
      for i in range(len(GitLabTokenDetector.denylist))),
    _library("npm token", NpmDetector, 0, ("/:_authtoken=",), groups=(1,)),
    Rule("npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), "seedbot", ("npm_",)),
    _library("PyPI token", PypiTokenDetector, 0, ("pypi-ag",)),
    _library("PyPI token", PypiTokenDetector, 1, ("pypi-ag",)),
    # Chat and SaaS
    _library("Slack token", SlackDetector, 0, ("xox",), extend=True),
    _library("Slack webhook URL", SlackDetector, 1, ("hooks.slack.com",)),
    Rule("Slack token", re.compile(r"\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]{20,}"), "seedbot", ("xapp-",)),
    _library("Discord bot token", DiscordBotTokenDetector, 0, (".",), extend=True),
    _library("Stripe key", StripeDetector, 0, ("k_live_",), extend=True),
    _library("OpenAI key", OpenAIDetector, 0, ("t3blbkfj",), extend=True),
    Rule("OpenAI or Anthropic key", re.compile(r"\bsk-(?:ant-[a-z]+\d*-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"),
         "seedbot", ("sk-",)),
    _library("SendGrid key", SendGridDetector, 0, ("sg.",)),
    _library("Mailchimp key", MailchimpDetector, 0, ("-us",)),
    _library("Square OAuth secret", SquareOAuthDetector, 0, ("sq0csp-",)),
    _library("Telegram bot token", TelegramBotTokenDetector, 0, tuple(f"{d}:" for d in range(10))),
    _library("JSON Web Token", JwtTokenDetector, 0, ("eyj",), extend=True, keep=_valid_jwt),
    # Passwords in URLs and assignments
    _library("URL password", BasicAuthDetector, 0, ("://",), groups=(1,)),
    # detect-secrets wants a user name and RFC 3986-clean passwords; people paste `redis://:pw@` and `p!ss`.
    Rule("URL password", re.compile(r"://[^\s:/?#@]{0,256}:([^\s/?#@]{1,256})@"), "seedbot", ("://",),
         groups=(1,)),
    Rule("connection string password", re.compile(
        r"(?i)(?<![\w.-])(?:Password|Pwd)=([^;\s\"'(),]{4,256})(?=;|[\"'\s]|$)"), "seedbot",
        ("password=", "pwd="), groups=(1,), keep=_plausible_value),
    *(Rule("password or secret", pattern, "detect-secrets KeywordDetector", _KEYWORD_TRIGGERS, groups=(group,),
           keep=_plausible_value)
      for pattern, group in keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP.items()
      if pattern is not keyword.PRECEDED_BY_EQUAL_COMPARISON_SIGNS_QUOTES_REQUIRED_REGEX),
    Rule("password or secret", _ASSIGNMENT, "seedbot (keyword list from detect-secrets)",
         _ASSIGNMENT_TRIGGERS, groups=("dq", "sq", "bare"), keep=_plausible_value),
)
_SPANS_BLANKS = re.compile("|".join(map(re.escape, (*_ASSIGNMENT_TRIGGERS, "aws", "----", "//"))))

# Which rules a line can match: every trigger found in the casefolded line (the longest at each position)
# selects the rules that have a trigger inside it, so one scan replaces a substring test per rule.
_TRIGGERS = sorted({t for rule in RULES for t in rule.triggers}, key=len, reverse=True)
_TRIGGER_SCAN = re.compile("(?=(" + "|".join(map(re.escape, _TRIGGERS)) + "))")
_RULES_FOR_TRIGGER = MappingProxyType({
    found: tuple(i for i, rule in enumerate(RULES) if any(t in found for t in rule.triggers)) for found in _TRIGGERS
})

# PEM (PKCS#1, PKCS#8, SEC1, DSA, encrypted), OpenSSH, PGP and SSH2 private keys. detect-secrets'
# PrivateKeyDetector only flags the BEGIN line; masking needs the whole block, to its END.
_KEY_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"
# A BEGIN line opens a key only when nothing follows it on its line (or an escaped "\n" does, as in a
# service-account JSON file), so prose that names the header masks nothing.
_KEY_BEGIN = re.compile(r"-{4,5} ?BEGIN " + _KEY_LABEL + r" ?-{4,5}(?=[ \t\r]*$|\\n)", re.MULTILINE)
_KEY_END = re.compile(r"-{4,5} ?END " + _KEY_LABEL + r" ?-{4,5}")
# To its END; a block that never ends is masked over its body only: base64 lines and `Name: value` headers.
_KEY_BLOCK = re.compile(
    _KEY_BEGIN.pattern + r"(?:[\s\S]*?" + _KEY_END.pattern
    + r"|(?:(?:\\n|\r?\n)(?:[A-Za-z0-9+/=]{1,100}|[\w-]+: [^\n]*))*)",
    re.MULTILINE,
)
PRIVATE_KEY = "private key"


@dataclass(frozen=True, slots=True)
class Masked:
    """Text with its secrets replaced by placeholders; `count` is how many were replaced."""

    text: str
    count: int


def mask_secrets(text: str) -> Masked:
    """Replace every secret in `text` with `mask_for(kind)`. Deterministic: the same text always gives
    the same result, so stored history stays byte-stable. Linear in the length of the text."""
    masked, count, _rest = _mask_segments(text, final=True)
    return Masked(masked, count)


def redact(text: str) -> str:
    """`mask_secrets(text).text`."""
    return mask_secrets(text).text


def mask_incoming(incoming: Incoming) -> tuple[Incoming, int]:
    """The message with secrets masked in its text and in its text attachments (UTF-8), and how many
    were masked. Attachments that held none keep their original bytes."""
    text = mask_secrets(incoming.text)
    count = text.count
    attachments = []
    for attachment in incoming.attachments:
        if attachment.kind is AttachmentKind.TEXT:
            body = mask_secrets(attachment.text())
            if body.count:
                count += body.count
                data = body.text.encode("utf-8")
                attachment = dataclasses.replace(attachment, data=data, size=len(data))
        attachments.append(attachment)
    if not count:
        return incoming, 0
    return dataclasses.replace(incoming, text=text.text, attachments=tuple(attachments)), count


# Masking runs at about 2 M characters/s (bench/redact_bench.py): above this many characters a message is
# masked in a worker thread so a pasted log file never stalls the event loop.
OFF_LOOP_CHARS = 100_000


async def mask_incoming_async(incoming: Incoming) -> tuple[Incoming, int]:
    """`mask_incoming`, in a worker thread for a message whose text and files exceed OFF_LOOP_CHARS."""
    size = len(incoming.text) + sum(a.size for a in incoming.attachments if a.kind is AttachmentKind.TEXT)
    if size > OFF_LOOP_CHARS:
        return await asyncio.to_thread(mask_incoming, incoming)
    return mask_incoming(incoming)


class StreamRedactor:
    """Masks a stream of deltas. Joining everything `feed` and `flush` return equals
    `mask_secrets(whole text)` whatever the deltas were: text is released a whole segment at a time
    (a line; a private key block through the line break after its END; a piece of a line over
    `WINDOW` characters)."""

    def __init__(self) -> None:
        self._pending = ""
        # Held text that is a line break or a window long can only be an unfinished key block.
        self._key_open = False

    def feed(self, delta: str) -> str:
        """Add a delta; returns the text that is now safe to show (often "")."""
        self._pending += delta
        # A segment ends only at a line break, at a blank past SOFT_CHARS or once the window is full; a key
        # block only at a line break.
        if "\n" not in delta and (self._key_open or (
                len(self._pending) < WINDOW
                and (len(self._pending) <= SOFT_CHARS or (" " not in delta and "\t" not in delta)))):
            return ""
        return self._release(final=False)

    @property
    def held(self) -> int:
        """Characters received but not yet released."""
        return len(self._pending)

    def flush(self) -> str:
        """The stream ended: everything still held, masked."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        shown, _count, self._pending = _mask_segments(self._pending, final=final)
        self._key_open = "\n" in self._pending or len(self._pending) >= WINDOW
        return shown


def _mask_segments(text: str, *, final: bool) -> tuple[str, int, str]:
    """Mask the complete segments of `text`: (masked text, secrets masked, the unfinished rest)."""
    out: list[str] = []
    count = 0
    start = 0
    while start < len(text):
        end = _segment_end(text, start, final=final)
        if end is None:
            break
        masked, found = _mask_segment(text[start:end])
        out.append(masked)
        count += found
        start = end
    return "".join(out), count, text[start:]


def _segment_end(text: str, start: int, *, final: bool) -> int | None:
    """Where the segment starting at `start` ends, or None if that depends on text not yet seen.
    Looks only at text[start:], so it gives the same answer for a prefix as for the whole text."""
    window_end = start + WINDOW
    newline = text.find("\n", start, window_end)
    blank = _BLANK.search(text, start + SOFT_CHARS, newline if newline != -1 else min(len(text), window_end))
    if blank is not None and not _SPANS_BLANKS.search(text[start:blank.start()].casefold()):
        return blank.end()
    if newline != -1:
        end = limit = newline + 1
    elif len(text) >= window_end:
        end = limit = _forced_cut(text, start)
    elif final:
        end = limit = len(text)
    else:
        return None
    begin = _KEY_BEGIN.search(text, start, limit if newline != -1 else min(len(text), window_end))
    if begin is None or begin.start() >= limit:
        return end
    key_end = _KEY_END.search(text, begin.end())
    line_break = text.find("\n", key_end.end()) if key_end else -1
    if line_break == -1:
        return len(text) if final else None
    return line_break + 1


def _forced_cut(text: str, start: int) -> int:
    """Where a line longer than WINDOW is cut: after the last blank before SEGMENT_CHARS (or at
    SEGMENT_CHARS), then past the end of any match that straddles the cut."""
    cut = start + SEGMENT_CHARS
    blank = text.rfind(" ", start + SEGMENT_CHARS // 2, cut)
    if blank != -1:
        cut = blank + 1
    piece = text[start:start + WINDOW]
    for span_start, span_end, _kind in sorted(_line_spans(piece, 0)):
        if span_start < cut - start < span_end:
            cut = start + span_end
    return cut


def _mask_segment(segment: str) -> tuple[str, int]:
    spans = [(m.start(), m.end(), PRIVATE_KEY) for m in _KEY_BLOCK.finditer(segment)]
    offset = 0
    for line in segment.split("\n"):
        if line:
            spans.extend(_line_spans(line, offset))
        offset += len(line) + 1
    if not spans:
        return segment, 0
    # Leftmost first; at one start the longest; then the earlier rule (the order of RULES).
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[str] = []
    position = count = 0
    for span_start, span_end, kind in spans:
        if span_start < position:
            continue
        out.append(segment[position:span_start])
        out.append(mask_for(kind))
        position = span_end
        count += 1
    out.append(segment[position:])
    return "".join(out), count


def _line_spans(line: str, offset: int) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every single-line rule match in `line`, shifted by `offset`."""
    spans: list[tuple[int, int, str]] = []
    selected = {i for found in set(_TRIGGER_SCAN.findall(line.casefold())) for i in _RULES_FOR_TRIGGER[found]}
    for index in sorted(selected):
        rule = RULES[index]
        for match in rule.pattern.finditer(line):
            start, end = _secret_span(match, rule.groups)
            if start >= end:
                continue
            if rule.extend:
                end = _TOKEN_TAIL.match(line, end).end()  # type: ignore[union-attr]
            value = line[start:end]
            # Vendors' documented sample keys (AKIAIOSFODNN7EXAMPLE) are not secrets.
            if "EXAMPLE" in value or (rule.keep is not None and not rule.keep(value, line)):
                continue
            spans.append((offset + start, offset + end, rule.kind))
    return spans


def _secret_span(match: re.Match[str], groups: tuple[int | str, ...]) -> tuple[int, int]:
    for group in groups:
        if match.start(group) != -1:
            return match.span(group)
    return match.span() if not groups else (0, 0)
