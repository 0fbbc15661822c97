"""Secrets in the shapes people paste when they ask why a command fails (headers, shell variables, query strings,
diffs of .env files, a zero-width space inside a token) are masked before the model or the database sees them,
and ordinary lines of code and shell that look a little like them are left alone.

Not covered, on purpose: a password in prose ("the password is X"): no rule tells it from ordinary words."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.chat.redaction import StreamRedactor, mask_secrets
from bot.config import Settings
from bot.storage.tables import Message
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import running_bot, wait_for_answer

# (name, pasted line, the secret in it)
PASTES = [
    ("curl bearer header", 'curl -H "Authorization: Bearer 8f3a9c2b7d1e4f6a0b5c9d8e7f6a5b4c" https://api.acme.io/v1/me',
     "8f3a9c2b7d1e4f6a0b5c9d8e7f6a5b4c"),
    ("basic auth header", "Authorization: Basic YWRtaW46czNjcjN0UDRzc3cwcmQ=", "YWRtaW46czNjcjN0UDRzc3cwcmQ="),
    ("api key header", 'curl -H "X-Api-Key: 5b4c8f3a9c2b7d1e4f6a0b5c9d8e7f6a" https://api.acme.io',
     "5b4c8f3a9c2b7d1e4f6a0b5c9d8e7f6a"),
    ("curl -u", "curl -u admin:Vq7pLm2xRt9sKw4z https://api.acme.io", "Vq7pLm2xRt9sKw4z"),
    ("api_key in a URL", "GET https://api.acme.io/v1/items?api_key=9d8e7f6a5b4c8f3a9c2b7d1e",
     "9d8e7f6a5b4c8f3a9c2b7d1e"),
    ("access_token in a URL", "https://graph.acme.io/me?access_token=EAAB7d1e4f6a0b5c9d8e7f6a",
     "EAAB7d1e4f6a0b5c9d8e7f6a"),
    ("inline env before a command", "DB_PASSWORD=Jk3mW8qZp2Vx7Ld npm start", "Jk3mW8qZp2Vx7Ld"),
    ("docker run -e", "docker run -e POSTGRES_PASSWORD=Rt5nB8vC2xZq9Lm postgres:16", "Rt5nB8vC2xZq9Lm"),
    ("mysql -p", "mysql -u root -pHq4wE7rT1yU9iO3 shop", "Hq4wE7rT1yU9iO3"),
    ("kwarg api_key", 'client = Client(api_key="e7f6a5b4c8f3a9c2b7d1e4f6")', "e7f6a5b4c8f3a9c2b7d1e4f6"),
    ("Hugging Face token", "HF_TOKEN hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"),
    ("Stripe test key", "sk_test_51H8abcdefghijklmnopqrstuvwx", "sk_test_51H8abcdefghijklmnopqrstuvwx"),
    ("kubeconfig client key", "    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVB",
     "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVB"),
    ("URL password with a slash", "postgresql://app:pa/ss9Kw4zRt7@db.internal/prod", "pa/ss9Kw4zRt7"),
    ("zero-width space inside a GitHub token", "ghp_\u200bQ7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4",
     "Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4"),
    ("added line of a diff of .env", "+DB_PASSWORD=Zq8vR2mT5wK9pL3x", "Zq8vR2mT5wK9pL3x"),
    ("added line of a diff of YAML", "+  password: Zq8vR2mT5wK9pL3x", "Zq8vR2mT5wK9pL3x"),
    ("added unquoted INI line of a diff", "+SECRET_KEY = Zq8vR2mT5wK9pL3x", "Zq8vR2mT5wK9pL3x"),
    ("mysql --password=", "mysql -u root --password=Hq4wE7rT1yU9iO3 shop", "Hq4wE7rT1yU9iO3"),
    ("mysql -p quoted", "mysql -u root -p'Hq4wE7rT1yU9iO3' shop", "Hq4wE7rT1yU9iO3"),
    ("GitLab Private-Token header",
     'curl -H "PRIVATE-TOKEN: 5b4c8f3a9c2b7d1e4f6a0b5c9d8e7f6a" https://gitlab.example.com/api/v4/user',
     "5b4c8f3a9c2b7d1e4f6a0b5c9d8e7f6a"),
    ("Api-Key header", 'curl -H "Api-Key: 5b4c8f3a9c2b7d1e4f6a0b5c9d8e7f6a" https://api.acme.io',
     "5b4c8f3a9c2b7d1e4f6a0b5c9d8e7f6a"),
    ("Vault token header",
     'curl -H "X-Vault-Token: hvs.CAESIJ2f8d7e6c5b4a39281716151413121110aBcD" https://vault:8200/v1/kv',
     "CAESIJ2f8d7e6c5b4a39281716151413121110aBcD"),
    ("Vault token variable", "VAULT_TOKEN=hvs.CAESIJ2f8d7e6c5b4a39281716151413121110aBcD vault kv get secret/app",
     "CAESIJ2f8d7e6c5b4a39281716151413121110aBcD"),
    ("a password holding a comma", "PASSWORD=hunter2abc,def", "hunter2abc,def"),
    ("a password holding a comma, inline", "run DB_PASSWORD=Xk9,pQ2mZ7 ./migrate", "Xk9,pQ2mZ7"),
]

# Lines that look a little like the shapes above and hold no secret: each must come back unchanged.
ORDINARY = [
    "MAX_TOKENS=100000 python run.py",
    "TOKENIZERS_PARALLELISM=false pytest",
    "OLDPWD=~/src/app",
    "PWD=/home/me/src",
    "export GITHUB_TOKEN=$GITHUB_TOKEN",
    "SEED_API_KEY=your-key .venv/bin/seedbot ask hi",
    "authorization: Bearer $TOKEN",
    "X-Api-Key: ${API_KEY}",
    "x-request-id: 12345678-aaaa",
    "see https://example.com:8443/users/@me",
    "mysql -u root -p shop",
    "GET /search?token=abc&page=2",
    'return f"{base}/login?token={auth.link_token(admin_id)}"',
    'os.environ["TOKEN"] = "_sa_default"',
    'upgrade_token="%s_upgrades" % name',
    "+    max_tokens = settings.max_tokens",
    # Names whose keyword is part of another word, or whose value says where a secret is, not what it is.
    "TOKENIZER=bert-base-uncased python train.py",
    "GOOGLE_APPLICATION_CREDENTIALS=service-account.json gcloud auth list",
    "SECRET_KEY_FILE=secrets/django.key ./manage.py runserver",
    "docker run -e POSTGRES_PASSWORD_FILE=run/secrets/pg -d postgres",
    "ENV SECRETS_DIR=config/secrets",
    "ARG TOKEN_ENDPOINT=https://auth.example.com/oauth/token",
    "SECRET_NAME=my-app-db-credentials kubectl get secret $SECRET_NAME",
    "JWT_TOKEN_LOCATION=headers,cookies flask run",
    "SECRETS_BACKEND=vault-kv2 ./deploy.sh",
    # URLs whose "user:password@" is an IPv6 literal, a templated port, or a short pagination cursor.
    "open http://[::1]:5173/@vite/client",
    "http://localhost:${PORT}/@vite/client",
    "https://example.com/search?q=python&page=2&token=next_page_2",
    "GET /api/v1/stream?access_token=page2cursor HTTP/1.1",
    'secret_id = "arn:aws:secretsmanager:us-east-1:123456789012:secret:MySecret"',
    # Keys and headers named like secrets that hold none (a table's key, a cache key, a nonce, an idempotency id).
    "partition-key: customer_id",
    "sort-key: createdAt2024",
    "cache-key: sha256-deadbeefcafe1234",
    "Idempotency-Key: 6f1c2d3e-aaaa-bbbb-cccc-1234567890ab",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    # An .env's names that say where a secret is, on a line of their own.
    "GITHUB_TOKEN_URL=https://example.com/login/oauth/access_token",
    "TOKEN_TYPE=Bearer",
    "API_TOKEN_NAME=prod-deployer-token1",
]


@pytest.mark.parametrize(("line", "secret"), [(p[1], p[2]) for p in PASTES], ids=[p[0] for p in PASTES])
def test_a_pasted_secret_is_masked(line: str, secret: str) -> None:
    masked = mask_secrets(line)
    assert secret not in masked.text and masked.count == 1, masked.text
    assert mask_secrets(masked.text).count == 0  # masking is idempotent: history stays byte-stable


@pytest.mark.parametrize("line", ORDINARY)
def test_an_ordinary_line_is_left_alone(line: str) -> None:
    assert mask_secrets(line).text == line


def test_a_long_command_line_is_masked_the_same_streamed_a_character_at_a_time() -> None:
    # Prose streams in pieces cut at blanks; a rule whose match spans blanks (curl ... -u user:pw) must not be cut.
    line = ("curl --retry 3 --silent --show-error --location --compressed --max-time 30 -X GET api.acme.io/v1/items "
            "-u admin:Vq7pLm2xRt9sKw4z\nthe request that fails sends these headers, in this order: Accept: text/csv "
            "Authorization: Bearer 8f3a9c2b7d1e4f6a0b5c9d8e\n")
    redactor = StreamRedactor()
    streamed = "".join(redactor.feed(ch) for ch in line) + redactor.flush()
    assert streamed == mask_secrets(line).text
    assert "Vq7pLm2xRt9sKw4z" not in streamed and "8f3a9c2b7d1e4f6a0b5c9d8e" not in streamed


# A zero-width space after a rule's minimum length: the head matches with it or without it, and the tail must
# not show.
TAILS = [
    ("OpenAI project key",
     "key: sk-proj-NqVwYS81VP7Hb1DX8pPd5khxE3pyIgKpaUnArl63\u200bXykWZeiNNCiia3anXn9k3ksu9mI4ROnl89Sm9",
     "XykWZeiNNCiia3anXn9k3ksu9mI4ROnl89Sm9"),
    ("Stripe live key", "sk_live_7F3vlfFrGYJ3GxeYYXwSLQcWtxJTQr\u200b1FqXSTs98vPlL2aEJXquQrDs0GPRZwwrPwV81Aw71l33SC",
     "1FqXSTs98vPlL2aEJXquQrDs0GPRZwwrPwV81Aw71l33SC"),
    ("GitHub fine-grained token",
     "github_pat_lZfOjUStEkUdfMI7zcpVMw0qDPAjd6OcZFv1niUK8iO5YAgkBxjd2AsjD7N2\u200bkHD9FSUuErsEz5jhy0I9lO",
     "kHD9FSUuErsEz5jhy0I9lO"),
    ("Hugging Face token", "hf_ihu9lEmJcADwyQNeLnpT5xawz8r2A3hS1J\u200bx9cJNtgsIG", "x9cJNtgsIG"),
]


@pytest.mark.parametrize(("line", "tail"), [(t[1], t[2]) for t in TAILS], ids=[t[0] for t in TAILS])
def test_a_zero_width_space_late_in_a_token_hides_no_part_of_it(line: str, tail: str) -> None:
    whole = mask_secrets(line).text
    redactor = StreamRedactor()
    assert "".join(redactor.feed(ch) for ch in line) + redactor.flush() == whole
    assert tail not in whole, whole


def test_a_zero_width_space_is_dropped_only_with_the_secret_it_hid() -> None:
    # The segment that hid a token loses its invisible characters; a line without a secret keeps them.
    assert mask_secrets("a\u200bb ghp_\u200bQ7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4").text == "ab [redacted: GitHub token]"
    assert mask_secrets("zero\u200bwidth").text == "zero\u200bwidth"


async def test_pasted_secrets_reach_neither_the_model_nor_the_database(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.script(Reply(content="Looks like an expired credential.", chunk_chars=7))
    question = "Why do these fail?\n```\n" + "\n".join(p[1] for p in PASTES) + "\n```"
    async with running_bot(slack, settings_for, tmp_path) as bot:
        mention = slack.events.app_mention(question)
        async with slack.sender(bot.events_url) as sender:
            await sender.post_event(mention)
        await wait_for_answer(slack, "C1", mention["event"]["ts"], timeout=30)
        assert bot.process.core is not None
        async with bot.process.core.db.session() as session:
            stored = "\n".join((await session.execute(select(Message.content))).scalars())
    prompt = json.dumps(fake_seed.completions[-1].body["messages"], ensure_ascii=False)
    assert "Why do these fail?" in prompt
    leaked = {"model": [p[0] for p in PASTES if p[2] in prompt], "database": [p[0] for p in PASTES if p[2] in stored]}
    assert leaked == {"model": [], "database": []}, json.dumps(leaked)
