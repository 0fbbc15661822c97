"""The secret rule set that bot.chat.redaction masks with: what each kind of secret looks like.

Detection comes from Yelp's detect-secrets (its vendor plugins' `denylist` regexes, its keyword list and
keyword regexes, its JWT validity check and its false-positive filters); `RULES` names the source of each
rule, and the few marked "seedbot" cover kinds the library lacks. Its high-entropy plugins are not used:
in chat they would mask every git SHA and lockfile hash. Private key blocks are matched whole (KEY_BLOCK),
since the library only flags their BEGIN line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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

# Some library regexes stop at a fixed length (Stripe's 24 characters) although real keys run on:
# a rule marked `extend` masks the rest of the token too.
TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]*")


MASK_PREFIX = "[redacted: "


def mask_for(kind: str) -> str:
    """The placeholder that replaces one secret: `[redacted: AWS secret key]`."""
    return f"{MASK_PREFIX}{kind}]"


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


def _plausible_value(value: str, line: str, *, quoted: bool = False) -> bool:
    """detect-secrets' default false-positive filters for keyword hits (templates like `${X}` and `<x>`,
    `$VAR`, `x = get_secret()`, no letters at all, `abcdef`-style runs, ids), plus type names and
    placeholders and attribute paths that code and docs put after `password:`. A `quoted` literal cannot be
    the indirect reference that filter looks for in its line (`Client(api_key="…")` reads as one)."""
    return not (
        len(value) < 6
        or value.startswith(MASK_PREFIX.rstrip())  # masked already: masking twice changes nothing
        or value.startswith(("/", "~/", "./", "../"))  # a path (`PWD=/home/me`), not a password
        or value.lower() in _PLACEHOLDER_VALUES
        or _ATTRIBUTE_PATH.fullmatch(value) is not None
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or (not quoted and heuristic.is_indirect_reference(line))
        or heuristic.is_not_alphanumeric_string(value)
        or heuristic.is_sequential_string(value)
        or heuristic.is_likely_id_string(value, line)
    )


def _plausible_quoted(value: str, line: str) -> bool:
    return _plausible_value(value, line, quoted=True)


def _plausible_literal(value: str, line: str) -> bool:
    """`_plausible_quoted` for a URL's query value, holding a letter and a digit (a secret is random) and no
    template (`?token={link_token(id)}`)."""
    return (_plausible_quoted(value, line) and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
            and not any(c in value for c in "%{}<>"))


# A value that names where a secret is (a file, a URL, a list of places), not the secret.
_NOT_A_SECRET_VALUE = re.compile(r"://|\.(?:json|pem|key|crt|cer|p12|pfx|txt|ya?ml|toml|ini|env|cfg|conf)$", re.I)


def _plausible_variable(value: str, line: str) -> bool:
    """`_plausible_value` for a shell variable's value, which must hold a letter (`MAX_TOKENS=100000` is a number),
    not be the placeholder of a README (`SEED_API_KEY=your-key`), nor name a file or a URL."""
    return (_plausible_value(value, line) and any(c.isalpha() for c in value) and not value.startswith("your")
            and _NOT_A_SECRET_VALUE.search(value) is None)


def _plausible_assignment(value: str, line: str) -> bool:
    """`_plausible_value` for a whole line's assignment, unless its name says the value is where a secret is
    (`GITHUB_TOKEN_URL=…`, `token_type: bearer`, `API_TOKEN_NAME=…`) or the value is a URL or a file."""
    name = _ASSIGNED_NAME.match(line)
    return (_plausible_value(value, line) and _NOT_A_SECRET_VALUE.search(value) is None
            and (name is None or _NOT_A_SECRET_SUFFIX.search(name.group(1)) is None))


def _not_a_port(value: str, _line: str) -> bool:
    """A URL "password" that is a port and a path (`https://host:8443/users/@me`) is not one."""
    return re.match(r"\d{1,5}(?:/|$)", value) is None


def _valid_jwt(value: str, _line: str) -> bool:
    return JwtTokenDetector.is_formally_valid(value)


# detect-secrets' keyword list (password, secret, api_key, private_key, ...) lacks these three.
_KEYWORDS = "|".join((*keyword.DENYLIST, "token", "credentials?", "access_?key"))
# A whole line that assigns a secret-named key a single value: .env (`export X=...`), YAML (`key: v`,
# `- key: v`), INI/TOML/properties (`key = v`) and JSON (`"key": "v",`), also as an added or removed line of
# a diff (`+KEY=v`). A value must be all the line holds (a comment aside), which keeps
# `password: str = Field()` and `token = get(...)` out.
_ASSIGNMENT = re.compile(
    r"^[+-]?\s*(?:export\s+|-\s+)?([\"']?)[\w.-]*(?:" + _KEYWORDS + r")[\w.-]*\1\s*[:=]\s*"
    r"(?:\"(?P<dq>[^\"\n]{1,256})\"|'(?P<sq>[^'\n]{1,256})'|(?P<bare>[^\s\"'#;,]{1,256}))"
    r"\s*,?\s*(?:#.*)?$",
    re.IGNORECASE,
)

# The keyword is a whole part of the name (`TOKENIZER` is not a token), and a last part that says the value is
# where the secret is (`_FILE`, `_URL`, `_NAME`, ...) is not one. The lookbehind starts a match only at a name's
# first letter, so the parts before the keyword cost no search at every letter of a line.
_NOT_A_SECRET_NAME = "FILE|PATH|DIR|URL|URI|NAME|ENDPOINT|LOCATION|BACKEND|ID|TYPE|ARN|HOST|PORT|USER|USERNAME"
_NOT_A_SECRET_SUFFIX = re.compile(r"[_.-](?:" + _NOT_A_SECRET_NAME + r")$", re.IGNORECASE)
_ASSIGNED_NAME = re.compile(r"^[+-]?\s*(?:export\s+|-\s+)?[\"']?([\w.-]+)")
_SHELL_VARIABLE = re.compile(
    r"(?<![A-Za-z0-9_])(?:[A-Z0-9]+_)*(?:" + _KEYWORDS.upper() + r")(?:_(?!(?:" + _NOT_A_SECRET_NAME + r")=)"
    r"[A-Z0-9]+)*=([^\s\"'`;&|$()\[][^\s\"'`;&|$()]{0,255})(?=\s|$)")  # `[`: a value masked already

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
    # detect-secrets wants a user name and RFC 3986-clean passwords; people paste `redis://:pw@`, `p!ss` and `p/ss`.
    Rule("URL password", re.compile(r"://(?!\[)[^\s:/?#@]{0,256}:([^\s?#@\[\]{}]{1,256})@"), "seedbot", ("://",),
         groups=(1,), keep=_not_a_port),
    Rule("connection string password", re.compile(
        r"(?i)(?<![\w.-])(?:Password|Pwd)=([^;\s\"'(),]{4,256})(?=;|[\"'\s]|$)"), "seedbot",
        ("password=", "pwd="), groups=(1,), keep=_plausible_value),
    *(Rule("password or secret", pattern, "detect-secrets KeywordDetector", _KEYWORD_TRIGGERS, groups=(group,),
           keep=_plausible_quoted)
      for pattern, group in keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP.items()
      if pattern is not keyword.PRECEDED_BY_EQUAL_COMPARISON_SIGNS_QUOTES_REQUIRED_REGEX),
    Rule("password or secret", _ASSIGNMENT, "seedbot (keyword list from detect-secrets)",
         _ASSIGNMENT_TRIGGERS, groups=("dq", "sq", "bare"), keep=_plausible_assignment),
    # Shell: an environment variable set for one command (`DB_PASSWORD=x npm start`, `docker run -e X=y`,
    # `env X=y cmd`), named in capitals as environment variables are, so code's `password=x` is left to the
    # rules above.
    Rule("password or secret", _SHELL_VARIABLE, "seedbot (keyword list from detect-secrets)",
         _ASSIGNMENT_TRIGGERS, groups=(1,), keep=_plausible_variable),
    Rule("password or secret", re.compile(
        r"\bmysql(?:dump|admin)?\b[^\n]*?\s(?:-p|--password=)([\"']?)([^\s\"']{4,})\1"), "seedbot", ("mysql",),
        groups=(2,), keep=_plausible_value),
    # HTTP: credentials in headers (RFC 9110 Authorization: Bearer/Basic/Token; X-Api-Key and its kin),
    # `curl -u user:password`, and in a query string (`?api_key=`, `&access_token=`).
    Rule("HTTP credentials", re.compile(
        r"(?i)\b(?:proxy-)?authorization\s*:\s*(?:bearer|basic|token|bot)\s+([A-Za-z0-9._~+/=-]{8,})"),
        "seedbot (RFC 9110)", ("authorization",), groups=(1,)),
    Rule("HTTP credentials", re.compile(
        r"(?i)\b(?:x-[\w-]*|api-|private-|auth-|access-)(?:key|token|secret)\s*:\s*([^\s\"',;]{8,})"),
        "seedbot", ("key", "token", "secret"), groups=(1,), keep=_plausible_value),
    Rule("HTTP credentials", re.compile(r"\bcurl\b.*?\s(?:-u|--user)[ =]?[\"']?[^\s:\"']*:([^\s\"']{4,})"), "seedbot",
         ("curl",), groups=(1,), keep=_plausible_value),
    Rule("HTTP credentials", re.compile(
        r"(?i)[?&](?:api_?key|apikey|access_?token|auth_?token|token|client_secret|secret|password|sig)="
        r"([^&\s#\"'<>]{16,})"), "seedbot", ("key=", "token=", "secret=", "password=", "sig="), groups=(1,),
        keep=_plausible_literal),
    # Kinds detect-secrets lacks.
    Rule("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "seedbot", ("hf_",)),
    Rule("Vault token", re.compile(r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}"), "seedbot", ("hvs.", "hvb.", "hvr.")),
    Rule("Stripe key", re.compile(r"\b[rs]k_test_[0-9a-zA-Z]{24,}"), "seedbot", ("k_test_",)),
    Rule("Kubernetes client key", re.compile(r"(?i)\bclient-key-data\s*:\s*([A-Za-z0-9+/=]{16,})"), "seedbot",
         ("client-key-data",), groups=(1,)),
)
SPANS_BLANKS = re.compile("|".join(map(re.escape, (*_ASSIGNMENT_TRIGGERS, "aws", "----", "//", "curl", "mysql",
                                                   "authorization"))))

# Which rules a line can match: each trigger in the casefolded line selects the rules that list it. One
# substring test per distinct trigger (about 50) is faster than one regex scan for all of them, which
# cannot skip ahead by a first character when it must look for overlapping triggers at every position.
RULES_BY_TRIGGER = tuple(
    (trigger, tuple(i for i, rule in enumerate(RULES) if trigger in rule.triggers))
    for trigger in sorted({t for rule in RULES for t in rule.triggers})
)

# PEM (PKCS#1, PKCS#8, SEC1, DSA, encrypted), OpenSSH, PGP and SSH2 private keys. detect-secrets'
# PrivateKeyDetector only flags the BEGIN line; masking needs the whole block, to its END.
_KEY_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"
# A BEGIN line opens a key only when nothing follows it on its line (or an escaped "\n" does, as in a
# service-account JSON file), so prose that names the header masks nothing.
KEY_BEGIN = re.compile(r"-{4,5} ?BEGIN " + _KEY_LABEL + r" ?-{4,5}(?=[ \t\r]*$|\\n)", re.MULTILINE)
KEY_END = re.compile(r"-{4,5} ?END " + _KEY_LABEL + r" ?-{4,5}")
# To its END; a block that never ends is masked over its body only: base64 lines and `Name: value` headers.
KEY_BLOCK = re.compile(
    KEY_BEGIN.pattern + r"(?:[\s\S]*?" + KEY_END.pattern
    + r"|(?:(?:\\n|\r?\n)(?:[A-Za-z0-9+/=]{1,100}|[\w-]+: [^\n]*))*)",
    re.MULTILINE,
)
PRIVATE_KEY = "private key"
