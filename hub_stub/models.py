"""Request and response bodies of hub API v1 (docs/hub-api.md), validated by pydantic.

Every field carries bounds so a hostile or broken client gets a 422 with a readable message
instead of reaching the database with a value it cannot hold (huge ints, NUL bytes, megabyte
strings). ``extra="forbid"`` turns a misspelt field into an error rather than silent loss.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import unicodedata
import uuid
from typing import Annotated, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_WEI = 2**256 - 1
_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _wei(value: object) -> str:
    """Accept a decimal string or an integer (not a float, not a bool) in 0 .. 2**256-1."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("wei amount must be a decimal string or an integer")
    text = str(value).strip()
    if not text.isdigit() or not text.isascii() or len(text) > 78:
        raise ValueError("wei amount must be a non-negative decimal integer")
    number = int(text)
    if number > MAX_WEI:
        raise ValueError("wei amount does not fit in 256 bits")
    return str(number)


def _address(value: object) -> str:
    if not isinstance(value, str) or not _HEX_ADDRESS.match(value):
        raise ValueError("address must be 0x followed by 40 hex digits")
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(value))


def _node_id(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("node_id must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("node_id must be a UUID string") from None


# Format characters that reorder or hide text (Trojan Source, CVE-2021-42574). All are in
# category Cf, which is refused as a whole; naming them gives a more useful message.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def _printable(value: str) -> str:
    """Refuse characters that make stored text display as something other than it is.

    Names, labels and paths are stored and shown back to providers, operators and renters,
    in terminals and web pages. A control character (C0, DEL, C1) can move the cursor or
    start an escape sequence; a bidi control reverses what follows; other format characters
    (zero-width space, BOM, soft hyphen...) and line/paragraph separators are invisible or
    break lines. Ordinary letters in any script are kept.
    """
    for char in value:
        category = unicodedata.category(char)
        if char in _BIDI:
            kind = "a bidirectional control character"
        elif category == "Cc":
            kind = "a control character"
        elif category == "Cf":
            kind = "an invisible format character"
        elif category in ("Zl", "Zp"):
            kind = "a line or paragraph separator"
        else:
            continue
        name = unicodedata.name(char, "")
        shown = f"U+{ord(char):04X}" + (f" {name}" if name else "")
        raise PydanticCustomError(
            "unprintable_character",
            "contains {char} ({kind}): remove it",
            {"char": shown, "kind": kind},
        )
    return value


Printable = AfterValidator(_printable)
Wei = Annotated[str, BeforeValidator(_wei), Field(examples=["1000000000"])]
Address = Annotated[str, BeforeValidator(_address)]
NodeId = Annotated[str, BeforeValidator(_node_id)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=255), Printable]
Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
Hostname = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:\[\]-]+$")
]
NodeIdPath = Annotated[NodeId, Path(description="node id (UUID)")]
IdentPath = Annotated[Ident, Path()]
CodePath = Annotated[str, Path(max_length=64, description="a transfer code")]
# RFC 3339 with an explicit offset; naive times are ambiguous across hub and node.
Timestamp = dt.datetime


class Strict(BaseModel):
    """Base for request bodies: unknown fields are an error, strings are not trimmed."""

    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    status: str
    version: str


class Info(BaseModel):
    public_url: str
    siwe_domain: str
    chain_ids: list[int]
    ca_certificate: str
    api_version: str
    tls: bool
    vpn_server_public_key: str
    vpn_endpoint: str


class NonceOut(BaseModel):
    nonce: str
    expires_at: str


class LoginIn(Strict):
    message: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    signature: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]


class LoginOut(BaseModel):
    token: str
    address: str
    expires_at: str


class Gpu(Strict):
    name: Text
    memory_mib: Annotated[int, Field(ge=0, le=2**40)]
    uuid: Ident


class NodeIn(Strict):
    host: Hostname
    gpus: Annotated[list[Gpu], Field(max_length=64)]
    price_per_sec_wei: Wei
    labels: Annotated[dict[Ident, Text], Field(max_length=64)] = {}

    @field_validator("gpus")
    @classmethod
    def distinct_uuids(cls, gpus: list[Gpu]) -> list[Gpu]:
        uuids = [gpu.uuid for gpu in gpus]
        if len(set(uuids)) != len(uuids):
            raise ValueError("gpu uuids must be distinct")
        return gpus


class NodeRegistered(BaseModel):
    node_id: str
    created: bool


class GpuOut(BaseModel):
    """A stored GPU as served: not re-validated, so rows an older hub accepted still list."""

    name: str
    memory_mib: int
    uuid: str


class NodeOut(BaseModel):
    node_id: str
    host: str
    gpus: list[GpuOut]
    price_per_sec_wei: str
    labels: dict[str, str]
    registered_at: str
    last_seen: str | None
    online: bool


class NodeList(BaseModel):
    nodes: list[NodeOut]


class HeartbeatOut(BaseModel):
    node_id: str
    last_seen: str


class CertIn(Strict):
    node_id: NodeId
    csr: Annotated[str, StringConstraints(min_length=1, max_length=16384)]


class CertOut(BaseModel):
    certificate: str
    ca_certificate: str
    not_after: str
    serial: str


class JoinOut(BaseModel):
    api_server: str
    token: str
    ca_cert_hashes: list[str]


def _wg_key(value: object) -> str:
    if not isinstance(value, str) or len(value) != 44:
        raise ValueError("public_key must be 44 characters of base64 (a 32-byte WireGuard key)")
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError("public_key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError("public_key must decode to 32 bytes")
    if base64.b64encode(raw).decode() != value:
        # The last digit has 2 spare bits, so four strings name one key; only the canonical
        # one (what `wg pubkey` prints) is accepted, or the same key could be registered
        # twice, by different owners, with different addresses.
        raise ValueError("public_key is not canonical base64 (use what `wg pubkey` prints)")
    return value


WgKey = Annotated[str, BeforeValidator(_wg_key), Field(examples=["x" * 43 + "="])]


class PeerIn(Strict):
    public_key: WgKey
    # Optional only for a node calling with its own certificate, which names the node.
    node_id: NodeId | None = None


class PeerOut(BaseModel):
    public_key: str
    node_id: str
    address: str
    server_public_key: str
    endpoint: str
    allowed_ips: str
    persistent_keepalive: int


class PodIn(Strict):
    pod_id: Ident
    renter_address: Address
    # The node the pod runs on; without one, no usage can be billed for the pod.
    node_id: NodeId | None = None
    ssh_host: Hostname
    ssh_port: Annotated[int, Field(ge=1, le=65535)]
    ssh_user: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
    host_key: Annotated[
        str,
        StringConstraints(
            max_length=8192,
            pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*$",
        ),
    ]


class PodCreated(BaseModel):
    pod_id: str


class SshOut(BaseModel):
    pod_id: str
    host: str
    port: int
    user: str
    host_key: str


PodState = Literal["running", "placed", "node-offline", "unplaced"]


class PodOut(BaseModel):
    """One of the caller's pods, as ``GET /v1/pods`` lists it (docs/hub-api.md)."""

    pod_id: str
    node_id: str | None
    gpu_model: str | None  # the node's (the most common model when it has several)
    gpu_count: int  # the node's GPUs; 0 on no node
    state: PodState
    last_billed_at: str | None  # the end of the newest usage the node reported for it
    ssh_host: str
    ssh_port: int
    ssh_user: str


class PodList(BaseModel):
    pods: list[PodOut]


class TransferIn(Strict):
    pod_id: Ident
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^/"), Printable]
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/]+$"), Printable
    ]
    size: Annotated[int, Field(ge=0, le=2**62)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

    @model_validator(mode="before")
    @classmethod
    def no_chosen_code(cls, data: object) -> object:
        """A ``code`` field gets its own message: clients that chose codes must learn why."""
        if isinstance(data, dict) and "code" in data:
            raise PydanticCustomError(
                "chosen_code",
                "the hub makes transfer codes: leave out 'code' and use the one in the answer",
            )
        return data

    @field_validator("name")
    @classmethod
    def not_dots(cls, name: str) -> str:
        if name in (".", ".."):
            raise ValueError("name must be a file name, not . or ..")
        return name


class TransferCreated(BaseModel):
    code: str
    expires_at: str


class TransferOut(BaseModel):
    code: str
    pod_id: str
    path: str
    name: str
    size: int
    sha256: str
    ssh: SshOut


class UsageEvent(Strict):
    event_id: Ident
    node_id: NodeId
    pod_id: Ident
    gpu_count: Annotated[int, Field(ge=1, le=1024)]
    start: Timestamp
    end: Timestamp
    price_per_sec_wei: Wei

    @field_validator("start", "end")
    @classmethod
    def aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a UTC offset (RFC 3339, e.g. 2026-01-01T00:00:00Z)")
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            # 0001-01-01T00:00+01:00 parses, but its UTC form is before year 1; pydantic
            # only turns ValueError into a 422, so an OverflowError would be a 500.
            raise ValueError("time is outside the years 1-9999 in UTC") from None

    @model_validator(mode="after")
    def ordered(self) -> UsageEvent:
        if self.end < self.start:
            raise ValueError("end is before start")
        if (self.end - self.start) > dt.timedelta(days=366):
            raise ValueError("an interval longer than a year is not a usage record")
        return self


class UsageAccepted(BaseModel):
    accepted: int
    duplicates: int


class UsageSummary(BaseModel):
    node_id: str
    seconds: int
    wei: str
    events: int


class TokenOut(BaseModel):
    address: str
    symbol: str
    decimals: int


class SettlementOut(BaseModel):
    """Whether and where the hub settles; chain figures are None when it could not ask."""

    enabled: bool
    contract: str | None = None
    chain_id: int | None = None
    confirmations: int | None = None
    token: TokenOut | None = None


class TotalsOut(BaseModel):
    intervals: int
    seconds: int
    gpu_seconds: int
    billed_wei: str
    paid_wei: str
    pending_wei: str
    failed_wei: str
    failed_reasons: dict[str, int]
    last_paid_block: int | None
    last_paid_tx: str | None


class EarningsGroupOut(TotalsOut):
    node_id: str
    gpu_type: str


class EarningsOut(BaseModel):
    address: str
    settlement: SettlementOut
    groups: list[EarningsGroupOut]
    total: TotalsOut
    withdrawable_wei: str | None
    chain_error: str | None


class BalanceOut(BaseModel):
    address: str
    settlement: SettlementOut
    total: TotalsOut
    owed_wei: str
    deposit_wei: str | None
    withdrawal_requested_wei: str | None
    withdrawal_available_at: str | None
    chain_error: str | None
