"""Item 21: every message the EIP-4361 grammar accepts logs in, checked over its own bytes.

The hub used to verify the signature against the ``siwe`` package's re-rendering of the
message, so valid messages it renders differently (an empty ``Resources:`` list, a request
id, no statement) failed as "signature does not match address". The hub now recovers the
signer from the exact text received; its parser is checked here against the reference ABNF
parser on generated messages, valid and mutated.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from siwe.parsed import ABNFParsedMessage

from hub_stub import eip4361
from tests.hub.conftest import nonce, sign
from tests.support.hub import RunningHub


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_in(hub: RunningHub, client: httpx.Client, shape: str) -> httpx.Response:
    """Log in with a message of the given ``shape`` (a format string over the fields)."""
    wallet = Account.create()
    now = dt.datetime.now(dt.UTC)
    text = shape.format(
        domain=hub.siwe_domain,
        address=wallet.address,
        uri=hub.url,
        nonce=nonce(client),
        issued=_stamp(now),
        past=_stamp(now - dt.timedelta(minutes=1)),
        later=_stamp(now + dt.timedelta(minutes=10)),
    )
    answer = client.post("/v1/auth/login", json={"message": text, "signature": sign(wallet, text)})
    if answer.status_code == 200:
        assert answer.json()["address"] == wallet.address
    return answer


HEAD = "{domain} wants you to sign in with your Ethereum account:\n{address}\n\n"
BODY = "URI: {uri}\nVersion: 1\nChain ID: 1\nNonce: {nonce}\nIssued At: {issued}"
SHAPES = {
    "empty resources": HEAD + "Sign in\n\n" + BODY + "\nResources:",
    "request id": HEAD + "Sign in\n\n" + BODY + "\nRequest ID: req-42_~!$&'()*+,;=:@%41",
    "empty request id": HEAD + "Sign in\n\n" + BODY + "\nRequest ID: ",
    "no statement": HEAD + "\n" + BODY,
    "every field": HEAD
    + "I accept the ToS: https://x.example/tos#1\n\n"
    + BODY
    + "\nExpiration Time: {later}\nNot Before: {past}\nRequest ID: 7"
    + "\nResources:\n- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
    + "- https://x.example/my-web2-claim.json",
    "scheme prefix": "http://" + HEAD + "Sign in\n\n" + BODY,
    "lower-case address": (HEAD + "Sign in\n\n" + BODY).replace("{address}", "{address_lc}"),
    "fractional seconds": HEAD + "Sign in\n\n" + BODY.replace("{issued}", "{issued_ns}"),
}


@pytest.fixture(scope="module")
def client(real_hub: RunningHub) -> httpx.Client:
    return real_hub.client()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_valid_message_of_any_shape_logs_in(
    real_hub: RunningHub, client: httpx.Client, name: str
) -> None:
    shape = SHAPES[name]
    if "{address_lc}" in shape:
        wallet = Account.create()
        text = shape.format(
            domain=real_hub.siwe_domain,
            address_lc=wallet.address.lower(),
            uri=real_hub.url,
            nonce=nonce(client),
            issued=_stamp(dt.datetime.now(dt.UTC)),
        )
        answer = client.post(
            "/v1/auth/login", json={"message": text, "signature": sign(wallet, text)}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["address"] == wallet.address
        return
    if "{issued_ns}" in shape:
        shape = shape.replace(
            "{issued_ns}", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
        )
    answer = signed_in(real_hub, client, shape)
    assert answer.status_code == 200, answer.text


def test_a_mixed_case_address_with_a_wrong_checksum_is_refused(
    real_hub: RunningHub, client: httpx.Client
) -> None:
    wallet = Account.create()
    address = wallet.address
    flipped = address[:2] + "".join(c.swapcase() if c.isalpha() else c for c in address[2:])
    text = (HEAD + "\n" + BODY).format(
        domain=real_hub.siwe_domain,
        address=flipped,
        uri=real_hub.url,
        nonce=nonce(client),
        issued=_stamp(dt.datetime.now(dt.UTC)),
    )
    answer = client.post("/v1/auth/login", json={"message": text, "signature": sign(wallet, text)})
    assert answer.status_code == 401
    assert "EIP-55" in answer.json()["detail"]


# ---------------------------------------------------------------- against the reference ABNF

UNRESERVED = "abcxyzABZ019-._~"
SUB_DELIMS = "!$&'()*+,;="
DOMAINS = st.sampled_from(
    [
        "example.com",
        "example.com:8080",
        "127.0.0.1:3000",
        "[::1]:80",
        "[2001:db8::7]",
        "[v1.fe80::a+en1]",
        "user:pw@host.example",
        "xn--bcher-kva.example",
        "a%20b.example",
        "",
        "host:",
    ]
)
URIS = st.sampled_from(
    [
        "https://example.com/login?next=%2F#top",
        "http://[::1]:8080/",
        "urn:isbn:0451450523",
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "mailto:someone@example.com",
        "a:",
        "did:example:123456789abcdefghi",
        "https://user:pw@example.com:443/a/./b/../c;p=1?q=1&r=%20#f/?",
        "file:///etc/hosts",
    ]
)
STATEMENTS = st.one_of(
    st.none(), st.text(alphabet=UNRESERVED + SUB_DELIMS + ":/?#[]@ ", min_size=1, max_size=30)
)
STAMPS = st.sampled_from(
    ["2026-11-28T00:00:00Z", "2026-11-28t23:59:60.5z", "2026-01-31T12:00:00+09:00"]
)
MUTATION_ALPHABET = " \n:/@[]%x0Z-.#?"


@st.composite
def messages(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["", "https://", "http://", "git+ssh://"]))
    lines = [f"{scheme}{draw(DOMAINS)} wants you to sign in with your Ethereum account:"]
    lines.append(draw(st.sampled_from(["0x" + "aB" * 20, "0x" + "0" * 40, "0X" + "f" * 40])))
    lines.append("")
    statement = draw(STATEMENTS)
    if statement is not None:
        lines.append(statement)
    lines += ["", f"URI: {draw(URIS)}", "Version: 1"]
    lines.append(f"Chain ID: {draw(st.integers(min_value=0, max_value=10**30))}")
    lines.append(f"Nonce: {draw(st.text(alphabet='abcXYZ0189', min_size=8, max_size=20))}")
    lines.append(f"Issued At: {draw(STAMPS)}")
    if draw(st.booleans()):
        lines.append(f"Expiration Time: {draw(STAMPS)}")
    if draw(st.booleans()):
        lines.append(f"Not Before: {draw(STAMPS)}")
    if draw(st.booleans()):
        lines.append(f"Request ID: {draw(st.sampled_from(['', '42', 'a:b@c', '%41~']))}")
    if draw(st.booleans()):
        lines.append("Resources:")
        lines += [f"- {draw(URIS)}" for _ in range(draw(st.integers(0, 2)))]
    text = "\n".join(lines)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()) and at < len(text):
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + draw(st.sampled_from(MUTATION_ALPHABET)) + text[at:]
    return text


def reference_accepts(text: str) -> bool:
    try:
        ABNFParsedMessage(text)
    except ValueError:
        return False
    return True


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(text=messages())
def test_the_parser_accepts_exactly_what_the_grammar_accepts(text: str) -> None:
    try:
        eip4361.parse(text)
        ours = True
        reason = ""
    except eip4361.MalformedMessage as exc:
        ours = False
        reason = str(exc)
    theirs = reference_accepts(text)
    if theirs and not ours:
        # The grammar leaves value ranges (month 13, second 61) to RFC 3339's prose.
        assert "valid date and time" in reason, (text, reason)
    else:
        assert ours == theirs, (text, reason)
