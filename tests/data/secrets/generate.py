"""Writes secrets.jsonl: fake secrets of the real shapes, each in the context people paste it in.

Every value is random (seeded, so the file is reproducible); none is a real credential.
Run from the repository root: `python tests/data/secrets/generate.py`.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(12)
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


def pick(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pem(label: str, lines: int = 8) -> tuple[str, str]:
    body = "\n".join(pick(B64, 64) for _ in range(lines)) + "\n" + pick(B64, 20) + "=="
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----", body.split("\n")[1]


def jwt() -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": str(rng.randrange(10**9)), "name": "Ada", "iat": 1700000000}).encode())
    return f"{header}.{payload}.{pick(URLSAFE, 43)}"


samples: list[dict[str, str]] = []


def add(kind: str, text: str, secret: str) -> None:
    assert secret in text
    samples.append({"kind": kind, "text": text, "secret": secret})


for prefix in ("AKIA", "ASIA", "AKIA"):
    key_id = prefix + pick(UPPER_DIGITS, 16)
    add("AWS access key id", f"aws_access_key_id = {key_id}", key_id)
secret = pick(ALNUM + "/+", 40)
add("AWS secret key", f"export AWS_SECRET_ACCESS_KEY={secret}", secret)
secret = pick(ALNUM + "/+", 40)
add("AWS secret key", f"[default]\naws_secret_access_key = {secret}\nregion = eu-west-1", secret)
secret = pick(ALNUM + "/+", 40)
add("AWS secret key", f'client = boto3.client("s3", aws_secret_access_key="{secret}")', secret)

for _ in range(2):
    key, line = pem("PRIVATE KEY", 6)
    escaped = key.replace("\n", "\\n")
    key_id = pick(HEX, 40)
    add("GCP service-account JSON", "{\n" + '  "type": "service_account",\n  "project_id": "demo-123",\n'
        f'  "private_key_id": "{key_id}",\n  "private_key": "{escaped}\\n",\n'
        '  "client_email": "bot@demo-123.iam.gserviceaccount.com"\n}', line)
account_key = pick(B64, 86) + "=="
add("Azure storage connection string", "DefaultEndpointsProtocol=https;AccountName=demostore;"
    f"AccountKey={account_key};EndpointSuffix=core.windows.net", account_key)
shared = pick(B64, 43) + "="
add("Azure Service Bus connection string", "Endpoint=sb://demo.servicebus.windows.net/;"
    f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={shared}", shared)

for prefix in ("ghp", "gho", "ghs"):
    token = f"{prefix}_{pick(ALNUM, 36)}"
    add("GitHub token", f"git clone https://{token}@github.com/acme/app.git" if prefix == "gho"
        else f"GITHUB_TOKEN: {token}", token)
token = f"github_pat_{pick(ALNUM, 22)}_{pick(ALNUM, 59)}"
add("GitHub fine-grained token", f"gh auth login --with-token <<< {token}", token)
for _ in range(2):
    token = f"glpat-{pick(URLSAFE, 20)}"
    add("GitLab token", f'curl --header "PRIVATE-TOKEN: {token}" https://gitlab.example.com/api/v4/projects', token)
token = f"npm_{pick(ALNUM, 36)}"
add("npm token", f"//registry.npmjs.org/:_authToken={token}", token)
token = f"npm_{pick(ALNUM, 36)}"
add("npm token", f"NPM_TOKEN={token} npm publish", token)
for _ in range(2):
    token = "pypi-AgEIcHlwaS5vcmc" + pick(URLSAFE, 150)
    add("PyPI token", f"[pypi]\n  username = __token__\n  password = {token}", token)

token = f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-{pick(ALNUM, 24)}"
add("Slack bot token", f"SLACK_BOT_TOKEN={token}", token)
token = f"xoxp-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-" \
        + pick(HEX, 32)
add("Slack user token", f'client = WebClient(token="{token}")', token)
hook = f"https://hooks.slack.com/services/T{pick(UPPER_DIGITS, 8)}/B{pick(UPPER_DIGITS, 10)}/{pick(ALNUM, 24)}"
add("Slack webhook URL", f"curl -X POST -d '{{\"text\":\"deploy done\"}}' {hook}", hook.rsplit("/", 1)[1])
token = f"xapp-1-A{pick(UPPER_DIGITS, 10)}-{rng.randrange(10**12, 10**13)}-{pick(HEX, 64)}"
add("Slack app token", f"SLACK_APP_TOKEN={token}", token)

token = "sk_live_" + pick(ALNUM, 99)
add("Stripe live key", f'stripe.api_key = "{token}"', token[30:])
token = "rk_live_" + pick(ALNUM, 24)
add("Stripe restricted key", f"STRIPE_KEY={token}", token)

token = "sk-proj-" + pick(URLSAFE, 74) + "T3BlbkFJ" + pick(URLSAFE, 74)
add("OpenAI key", f'OpenAI(api_key="{token}")', token)
token = "sk-" + pick(ALNUM, 20) + "T3BlbkFJ" + pick(ALNUM, 20)
add("OpenAI key", f"OPENAI_API_KEY={token}", token)
token = "sk-ant-api03-" + pick(URLSAFE, 93) + "AA"
add("Anthropic key", f"anthropic.Anthropic(api_key='{token}')", token)
token = "AIza" + pick(URLSAFE, 35)
add("Google API key", f"https://maps.googleapis.com/maps/api/geocode/json?address=x&key={token}", token)

for _ in range(2):
    token = jwt()
    add("JSON Web Token", f"Authorization: Bearer {token}", token.split(".")[2])

for label in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY",
              "OPENSSH PRIVATE KEY", "PGP PRIVATE KEY BLOCK"):
    key, line = pem(label)
    add(f"private key ({label})", f"here is the key file:\n{key}\nthanks", line)

for scheme, port in (("postgresql", 5432), ("mysql", 3306), ("mongodb+srv", None), ("amqp", 5672)):
    password = pick(ALNUM, 16)
    host = "db.internal" + (f":{port}" if port else "")
    add(f"{scheme} URL", f"DATABASE_URL={scheme}://app_user:{password}@{host}/prod", password)
password = pick(ALNUM, 20)
add("redis URL", f"REDIS_URL=redis://:{password}@cache.internal:6379/0", password)

password = pick(ALNUM + "!@%", 14)
add("env password", f"DB_PASSWORD={password}", password)
password = pick(ALNUM, 18)
add("YAML password", f"database:\n  host: db.internal\n  password: {password}\n  pool: 5", password)
password = pick(ALNUM, 18)
add("JSON password", f'{{\n  "user": "svc",\n  "password": "{password}",\n  "port": 5432\n}}', password)
secret = pick(ALNUM, 32)
add("INI secret", f"[auth]\nclient_secret = {secret}\n", secret)
token = pick(HEX, 40)
add("env token", f"export API_TOKEN={token}", token)
token = pick(ALNUM, 30)
add("YAML token", f"registry:\n  token: '{token}'", token)
token = f"{pick(string.ascii_letters, 1).upper()}{pick(URLSAFE, 25)}.{pick(URLSAFE, 6)}.{pick(URLSAFE, 38)}"
token = "M" + token[1:]
add("Discord bot token", f"DISCORD_TOKEN={token}", token)
token = f"SG.{pick(URLSAFE, 22)}.{pick(URLSAFE, 43)}"
add("SendGrid key", f"sg = SendGridAPIClient('{token}')", token)

with open(HERE / "secrets.jsonl", "w", encoding="utf-8") as out:
    for sample in samples:
        out.write(json.dumps(sample) + "\n")
print(f"{len(samples)} samples")


def ordinary_lines() -> list[str]:
    """Generated lines that look random but are no secrets: SHAs, UUIDs, lockfile hashes, images."""
    lines = []
    for _ in range(40):
        lines.append(f"{pick(HEX, 7)} {rng.choice(['Fix', 'Add', 'Bump', 'Refactor'])} the login flow")
        lines.append(f"commit {pick(HEX, 40)}")
    for _ in range(30):
        u = pick(HEX, 32)
        lines.append(f'    "id": "{u[:8]}-{u[8:12]}-4{u[13:16]}-a{u[17:20]}-{u[20:]}",')
    for _ in range(30):
        digest = base64.b64encode(rng.randbytes(64)).decode()
        lines.append(f'      "integrity": "sha512-{digest}",')
        lines.append(f'    {{file = "pkg-1.0.{rng.randrange(99)}.tar.gz", hash = "sha256:{pick(HEX, 64)}"}},')
        lines.append(f'checksum = "{pick(HEX, 64)}"')
        lines.append(f"pkg@^1.{rng.randrange(20)}.0:\n  resolved \"https://registry.yarnpkg.com/pkg/-/pkg-1.2.3.tgz#"
                     f"{pick(HEX, 40)}\"")
    for _ in range(10):
        image = base64.b64encode(b"\x89PNG\r\n\x1a\n" + rng.randbytes(300)).decode()
        lines.append(f'<img src="data:image/png;base64,{image}">')
    for _ in range(10):
        lines.append(f"sha256:{pick(HEX, 64)}  app-linux-amd64.tar.gz")
        lines.append(f"docker pull ghcr.io/acme/app@sha256:{pick(HEX, 64)}")
    return lines


with open(HERE / "ordinary.txt", "w", encoding="utf-8") as out:
    out.write((HERE / "ordinary_code.txt").read_text(encoding="utf-8"))
    out.write("\n".join(ordinary_lines()) + "\n")
