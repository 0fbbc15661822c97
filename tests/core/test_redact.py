"""Secret masking: the rules (library and ours), the corpora, and stream safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.slack import SlackDetector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.chat.redaction import (
    OFF_LOOP_CHARS,
    WINDOW,
    Masked,
    StreamRedactor,
    mask_incoming,
    mask_incoming_async,
    mask_secrets,
    redact,
)
from bot.chat.secret_rules import RULES, mask_for
from bot.domain import Attachment, AttachmentKind, Footer, Incoming, Platform, ThreadKey, Usage

DATA = Path(__file__).parent.parent / "data" / "secrets"
SAMPLES = [json.loads(line) for line in (DATA / "secrets.jsonl").read_text(encoding="utf-8").splitlines()]
ORDINARY = (DATA / "ordinary.txt").read_text(encoding="utf-8")


def stream(text: str, deltas: list[str] | None = None, size: int = 4) -> str:
    redactor = StreamRedactor()
    if deltas is None:
        deltas = [text[i:i + size] for i in range(0, len(text), size)]
    return "".join(redactor.feed(d) for d in deltas) + redactor.flush()


# the rule set ---------------------------------------------------------------------------------------


def test_vendor_rules_are_the_library_regexes_themselves() -> None:
    patterns = {id(rule.pattern) for rule in RULES}
    for pattern in (*AWSKeyDetector.denylist, *SlackDetector.denylist):
        assert id(pattern) in patterns
    # Most rules are the library's; ours cover the shapes people paste that it lacks (shell variables, HTTP
    # headers and query strings, a few vendors), each named "seedbot" in its source.
    ours = [rule for rule in RULES if rule.source.startswith("seedbot")]
    assert 0 < len(ours) < len(RULES) / 2


@pytest.mark.parametrize(("text", "kind"), [
    ("key=AIza" + "SyD4-x9Qk2LmN8pR3tV6wY1zB5cE7fG0hJk", "Google API key"),
    ("token github_pat_11ABCDEFG0abcdefghijklm_" + "a1" * 30, "GitHub token"),
    ("NPM_TOKEN=npm_" + "aB3" * 12, "npm token"),
    ("xapp-1-A0123456789-1234567890123-" + "ab12" * 16, "Slack token"),
    ("ANTHROPIC_API_KEY sk-ant-api03-" + "Zx9_" * 20, "OpenAI or Anthropic key"),
    ("aws_secret = wJalrXUtnFEMI/K7MDENG+bPxRfiCYabcdefghij", "AWS secret key"),
    ("Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=" + "Ab1+" * 11, "Azure shared access key"),
    ("Server=tcp:db,1433;User ID=app;Password=Tr0ub4dor&3x;Encrypt=True", "connection string password"),
    ("redis://:Sup3rS3cretPw@cache:6379/0", "URL password"),
    ("mysql://root:p!ss$w0rd&x@db.internal/app", "URL password"),
    ("export MY_SERVICE_TOKEN=Qm9vbGVhbkFsZ2VicmE", "password or secret"),
    ("  password: hunter2butlonger", "password or secret"),
    ('  "client_secret": "Qm9vbGVhbkFsZ2VicmE",', "password or secret"),
    ("db.password = Qm9vbGVhbkFsZ2VicmE  # prod", "password or secret"),
])
def test_each_rule_of_ours_masks_its_kind(text: str, kind: str) -> None:
    masked = mask_secrets(text)
    assert masked.count == 1 and mask_for(kind) in masked.text


def test_stripe_keys_longer_than_the_library_pattern_are_masked_whole() -> None:
    key = "sk_live_" + "Ab3dE6gH9j" * 10
    assert redact(f"stripe.api_key = '{key}'") == "stripe.api_key = '[redacted: Stripe key]'"


def test_masking_masked_text_changes_nothing() -> None:
    masked = mask_secrets("\n\n".join(s["text"] for s in SAMPLES))
    assert mask_secrets(masked.text) == Masked(masked.text, 0)


def test_documented_sample_keys_stay_readable() -> None:
    docs = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert redact(docs) == docs


@pytest.mark.parametrize("header", [p.pattern for p in PrivateKeyDetector.denylist if "BEGIN" in p.pattern])
def test_every_key_header_the_library_knows_opens_a_masked_block(header: str) -> None:
    dashes = "----" if "SSH2" in header else "-----"
    label = header.removeprefix("BEGIN ")
    block = f"{dashes} BEGIN {label} {dashes}" if "SSH2" in header else f"-----BEGIN {label}-----"
    end = block.replace("BEGIN", "END")
    text = f"key:\n{block}\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n{end}\nafter"
    assert redact(text) == "key:\n[redacted: private key]\nafter"


def test_a_key_block_that_never_ends_is_masked_over_its_body_only() -> None:
    text = "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n\nThat is all."
    assert redact(text) == "key:\n[redacted: private key]\n\nThat is all."


def test_naming_a_key_header_in_prose_masks_nothing() -> None:
    prose = "An RSA key starts with `-----BEGIN RSA PRIVATE KEY-----` and ends with its END line.\nMore."
    assert redact(prose) == prose


def test_code_that_only_names_secrets_is_left_alone() -> None:
    code = ("password = os.environ['DB_PASSWORD']\ndef check(password: str) -> bool:\n"
            "api_key = settings.api_key\ntoken: ${{ secrets.TOKEN }}\npassword: changeme\n")
    assert redact(code) == code


def test_footer_says_how_many_secrets_were_masked_once() -> None:
    assert Footer(Usage(), 0, secrets_masked=2).text().endswith("2 secrets were masked before sending")
    assert Footer(Usage(), 0, secrets_masked=1).text().endswith("1 secret was masked before sending")
    assert "masked" not in Footer(Usage(), 0).text()


def test_a_message_and_its_text_files_are_masked_and_clean_files_keep_their_bytes() -> None:
    clean = Attachment("notes.md", AttachmentKind.TEXT, 5, b"hello")
    leaky = Attachment(".env", AttachmentKind.TEXT, 24, b"DB_PASSWORD=Tr0ub4dor3xyz\n")
    image = Attachment("x.png", AttachmentKind.IMAGE, 4, b"\x89PNG")
    incoming = Incoming(ThreadKey(Platform.CLI, "w", "c", "t"), "1", "u",
                        "why does xoxb-123456789012-1234567890123-abcdefABCDEF fail?",
                        attachments=(clean, leaky, image))
    masked, count = mask_incoming(incoming)
    assert count == 2
    assert masked.text == "why does [redacted: Slack token] fail?"
    assert masked.attachments[0] is clean and masked.attachments[2] is image
    assert masked.attachments[1].data == b"DB_PASSWORD=[redacted: password or secret]\n"
    assert mask_incoming(masked) == (masked, 0)  # masking is idempotent: history stays byte-stable


async def test_a_large_paste_is_masked_the_same_off_the_event_loop() -> None:
    body = (ORDINARY * (OFF_LOOP_CHARS // len(ORDINARY) + 1) + SAMPLES[0]["text"]).encode()
    log = Attachment("build.log", AttachmentKind.TEXT, len(body), body)
    incoming = Incoming(ThreadKey(Platform.CLI, "w", "c", "t"), "1", "u", "why?", attachments=(log,))
    masked, count = await mask_incoming_async(incoming)
    assert count == 1 and (masked, count) == mask_incoming(incoming)
    assert SAMPLES[0]["secret"].encode() not in masked.attachments[0].data


# the corpora ----------------------------------------------------------------------------------------


def test_the_corpus_covers_the_kinds_and_every_sample_is_masked() -> None:
    assert len(SAMPLES) >= 40
    missed = [s["kind"] for s in SAMPLES if s["secret"] in redact(s["text"])]
    assert not missed
    caught = len(SAMPLES) - len(missed)
    assert caught / len(SAMPLES) >= 0.95


def test_ordinary_code_and_ids_change_at_most_two_percent_of_lines() -> None:
    lines = ORDINARY.split("\n")
    assert len(lines) >= 300
    changed = [a for a, b in zip(lines, redact(ORDINARY).split("\n"), strict=True) if a != b]
    assert len(changed) / len(lines) <= 0.02, changed


# streams --------------------------------------------------------------------------------------------


def test_a_long_url_whose_key_straddles_the_old_release_point_is_masked() -> None:
    key = "AIza" + "SyD4-x9Qk2LmN8pR3tV6wY1zB5cE7fG0hJk"
    head = "https://maps.googleapis.com/maps/api/staticmap?center=Berlin&zoom=13&size=600x300&maptype=roadmap"
    head += "&markers=color:blue%7Clabel:S%7C52.5200,13.4050" * 3
    url = (head + "&style=feature:poi"[: 238 - len(head) - 5] if len(head) < 233 else head[:233]) + "&key=" + key
    url += "&scale=2&format=png&language=en&x=1"[: 288 - len(url)]
    assert len(url) == 288 and url.index("key=") in range(230, 245)
    text = f"Try this:\n{url}\nIt should render."
    shown = stream(text, size=4)
    assert key not in shown and shown == redact(text)
    assert "[redacted: Google API key]" in shown


KEY = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4fJm0ZrYkGqz3r1\nbW9yZSBzZWNyZXQgYnl0ZXMgaGVyZQ==\n"
       "-----END RSA PRIVATE KEY-----")


def test_a_key_whose_end_line_and_line_break_arrive_apart_is_never_shown() -> None:
    text = f"Here is the key:\n{KEY}\nUse it wisely.\n"
    end = text.index("-----END")
    close = text.index("\n", end)
    body = ("MIIEowIBAAKCAQEA", "bW9yZSBzZWNyZXQ")
    expected = redact(text)
    assert expected == "Here is the key:\n[redacted: private key]\nUse it wisely.\n"
    alignments = 0
    for start in range(close - 40, close):
        # The END line in one delta, the line break in the next, the rest after.
        for deltas in ([text[:start], text[start:close], text[close:close + 1], text[close + 1:]],
                       [text[:end], text[end:close], text[close:]]):
            redactor = StreamRedactor()
            shown = [redactor.feed(d) for d in deltas] + [redactor.flush()]
            assert not any(b in part for part in shown for b in body)
            assert "".join(shown) == expected
            alignments += 1
    for size in range(1, 25):
        for offset in range(size):
            deltas = [text[:offset]] + [text[i:i + size] for i in range(offset, len(text), size)]
            assert stream(text, deltas) == expected
            alignments += 1
    assert alignments > 300


def test_a_line_with_no_break_is_held_back_at_most_a_window() -> None:
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    words = " ".join(f"word{i}" for i in range(2000))
    text = words[:505] + secret + words[505:] + " " + secret
    redactor = StreamRedactor()
    shown = []
    for i in range(0, len(text), 3):
        shown.append(redactor.feed(text[i:i + 3]))
        assert redactor.held <= WINDOW
    shown.append(redactor.flush())
    assert "".join(shown) == redact(text) and secret not in "".join(shown)
    assert redact(text).count("[redacted: GitHub token]") == 2


def test_prose_is_released_word_by_word_and_a_line_with_a_keyword_whole() -> None:
    prose = " ".join(["the retry loop gives up too early because the timeout counts from the first try"] * 8)
    redactor = StreamRedactor()
    shown = "".join(redactor.feed(prose[i:i + 4]) for i in range(0, 400, 4))
    assert 300 <= len(shown) <= 400 and redactor.held < 100
    # A keyword before the first blank past 64 characters keeps the line whole, so the value is seen with it.
    line = "export STAGING_DEPLOY_PASSWORD_FOR_THE_SHARED_CLUSTER_IN_EU_WEST_ONE= Tr0ub4dorXyzzy42\n"
    redactor = StreamRedactor()
    body = line.removesuffix("\n")
    assert "".join(redactor.feed(body[i:i + 4]) for i in range(0, len(body), 4)) == ""
    assert redactor.feed("\n") == line.replace("Tr0ub4dorXyzzy42", "[redacted: password or secret]")


def test_a_long_unbroken_run_is_cut_outside_a_secret() -> None:
    secret = "glpat-" + "Zx9Qk2LmN8pR3tV6wY1z"
    for at in range(490, 530, 3):
        text = "A" * at + "/" + secret + "/" + "B" * 3000
        assert secret not in redact(text)
        assert stream(text, size=7) == redact(text)


# A real-size service-account key: one JSON line of about 1,800 characters, longer than WINDOW.
GCP_LINE = ('  "private_key": "-----BEGIN PRIVATE KEY-----\\n'
            + "\\n".join(("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + f"{i:02d}" * 16) for i in range(26))
            + '\\n-----END PRIVATE KEY-----\\n",\n')


def test_a_service_account_key_on_one_long_line_is_masked_whole_in_any_chunking() -> None:
    text = '{\n  "type": "service_account",\n' + GCP_LINE + '  "client_id": "1234"\n}\n'
    assert len(GCP_LINE) > WINDOW
    expected = ('{\n  "type": "service_account",\n  "private_key": "[redacted: private key]\\n",\n'
                '  "client_id": "1234"\n}\n')
    assert redact(text) == expected
    for size in (1, 5, 64, 1000):
        assert stream(text, size=size) == expected


PIECES = [s["text"] for s in SAMPLES] + [KEY, GCP_LINE, "\n", " ", "\n\n```python\n", "```\n", "x" * 700]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=60)), min_size=1, max_size=12))
def test_streaming_in_any_delta_size_equals_masking_at_once(parts: list[str]) -> None:
    answer = "".join(parts)
    expected = redact(answer)
    for size in range(1, 65):
        assert stream(answer, size=size) == expected


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.sampled_from(PIECES), min_size=1, max_size=8), data=st.data())
def test_streaming_at_any_cut_points_equals_masking_at_once(parts: list[str], data: st.DataObject) -> None:
    answer = "\n".join(parts)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(answer) - 1)), max_size=40)))
    deltas = [answer[a:b] for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
    assert stream(answer, deltas) == redact(answer)


def test_a_private_key_in_a_diff_keeps_the_hunks_line_count_and_one_in_prose_becomes_one_line() -> None:
    key = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMx\nVTLw7onLRnrq0/IzW7yWR7Qk\n"
           "-----END RSA PRIVATE KEY-----")
    diff = "@@ -1,2 +1,6 @@\n a\n" + "\n".join("+" + line for line in key.split("\n")) + "\n+x = 1\n b\n"
    masked = mask_secrets(diff)
    assert masked.count == 1 and masked.text.count("\n") == diff.count("\n")
    assert masked.text.splitlines()[2:7] == ["+[redacted: private key]", "+", "+", "+", "+x = 1"]
    assert mask_secrets(f"key:\n{key}\nafter").text == "key:\n[redacted: private key]\nafter"
