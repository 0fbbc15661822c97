from __future__ import annotations

import random

import pytest

from bot.chat.redaction import MASK, StreamRedactor, redact

SECRETS = [
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "xoxb-1234567890-abcdefghijkl",
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_known_secret_shapes_are_masked(secret: str) -> None:
    text = f"Your config has key = {secret} in it."
    assert redact(text) == f"Your config has key = {MASK} in it."


def test_ordinary_code_is_untouched() -> None:
    code = "password = os.environ['DB_PASSWORD']\nsk = compute_sk(x)\nkey = 'AKIA'"
    assert redact(code) == code


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_split_across_deltas_never_leaks(secret: str) -> None:
    text = f"Here:\n{secret}\nand more words after it."
    rng = random.Random(secret)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(text)), 6))
        deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        redactor = StreamRedactor()
        shown = "".join(redactor.feed(d) for d in deltas) + redactor.flush()
        assert shown == redact(text)
        assert secret not in shown and "EXAMPLE" not in shown
