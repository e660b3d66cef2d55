"""The one client for hub API v1 (docs/hub-api.md): every hub call the CLI and daemon make.

One place decides timeouts, retries and what a failure tells the person:

- connection errors and 5xx answers are retried with exponential backoff (a hub restarting
  or a flaky link); 4xx answers are not, since asking again gets the same answer;
- an unreachable hub names the URL and points at ``worldland diag network``;
- 401 carries the hub's reason plus "run worldland login", 403 the ownership problem;
  both exit with ``ExitCode.DENIED``, an unreachable hub with ``ExitCode.UNREACHABLE``;
- a TLS hub is verified against ``--hub-ca`` (or the system store), and a node can present
  its client certificate for the calls the hub accepts from nodes (heartbeat, renewal, usage);
- an answer that is not what a Worldland hub sends (a field missing, of the wrong type, a
  time that does not parse) is a HubRejected naming the call, never a traceback: whatever is
  at the URL is not trusted to be a hub until its answers check out.

httpx is imported when a client is built, never when this module is imported, so commands
that only need the types stay fast to start.

Why one module of about 950 lines: it is the client half of the API contract
(docs/hub-api.md), read side by side with hub_stub/routes/ when either changes; the typed
results come first, then one method per endpoint in the order of that document, and the
retry, TLS and error policy above them is shared by every call.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from worldland_cli import __version__
from worldland_cli.config import DEFAULT_HUB, ConfigError
from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.times import format_time, parse_time
from worldland_cli.urls import mask_url

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from worldland_cli.config import Config

log = logging.getLogger(__name__)
# Path parts that are credentials (a transfer code works once, for whoever holds it): not in
# the -v log, which people paste into tickets.
_SECRET_PATH = re.compile(r"^(/v1/transfers/)[^/?]+")

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.25
# A 429 asking to wait longer than this is reported instead of waited out.
MAX_RETRY_AFTER = 10.0
NETWORK_HINT = (
    "check the hub address (--hub, WORLDLAND_HUB or `worldland config set hub URL`), "
    "then run `worldland diag network`"
)
LOGIN_HINT = "run `worldland login`"


class HubError(ActionableError):
    """The hub answered with an error, or could not be asked at all."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        detail: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message, hint, exit_code=exit_code)
        self.status = status
        self.detail = detail


class HubUnreachable(HubError):
    """No HTTP answer: refused, timed out, DNS, or a TLS handshake that failed."""

    exit_code = ExitCode.UNREACHABLE


class HubDenied(HubError):
    """401 or 403: the credentials are missing, expired, or for someone else."""

    exit_code = ExitCode.DENIED


class HubRejected(HubError):
    """Any other 4xx, or a 5xx that persisted through the retries."""

    exit_code = ExitCode.FAILED


# ----------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class HubInfo:
    siwe_domain: str
    chain_ids: tuple[int, ...]
    ca_certificate: str
    api_version: str
    tls: bool
    vpn_server_public_key: str
    vpn_endpoint: str


@dataclass(frozen=True)
class Nonce:
    nonce: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class LoginResult:
    token: str = field(repr=False)
    address: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_mib: int
    uuid: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "memory_mib": self.memory_mib, "uuid": self.uuid}


@dataclass(frozen=True)
class NodeRegistered:
    node_id: str
    created: bool


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    host: str
    gpus: tuple[Gpu, ...]
    price_per_sec_wei: int
    registered_at: dt.datetime
    last_seen: dt.datetime | None
    online: bool


@dataclass(frozen=True)
class IssuedCert:
    certificate: str
    ca_certificate: str
    not_after: dt.datetime
    serial: str


@dataclass(frozen=True)
class JoinParams:
    api_server: str
    token: str = field(repr=False)
    ca_cert_hashes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VpnPeer:
    public_key: str
    node_id: str
    address: str
    server_public_key: str
    endpoint: str
    allowed_ips: str
    persistent_keepalive: int


@dataclass(frozen=True)
class PodSsh:
    pod_id: str
    host: str
    port: int
    user: str
    host_key: str


@dataclass(frozen=True)
class PodInfo:
    """One of the renter's pods (``GET /v1/pods``): where it runs and how to reach it."""

    pod_id: str
    node_id: str | None
    gpu_model: str | None
    gpu_count: int
    state: str
    last_billed_at: dt.datetime | None
    ssh_host: str
    ssh_port: int
    ssh_user: str

    @property
    def ssh(self) -> str:
        """``USER@HOST:PORT``, as a person types it."""
        host = f"[{self.ssh_host}]" if ":" in self.ssh_host else self.ssh_host
        return f"{self.ssh_user}@{host}:{self.ssh_port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "pod_id": self.pod_id,
            "node_id": self.node_id,
            "gpu_model": self.gpu_model,
            "gpu_count": self.gpu_count,
            "state": self.state,
            "last_billed_at": format_time(self.last_billed_at) if self.last_billed_at else None,
            "ssh": {"host": self.ssh_host, "port": self.ssh_port, "user": self.ssh_user},
        }


@dataclass(frozen=True)
class TransferCode:
    code: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class TransferClaim:
    code: str
    pod_id: str
    path: str
    name: str
    size: int
    sha256: str
    ssh: PodSsh


@dataclass(frozen=True)
class UsageEvent:
    """One metered interval; ``event_id`` makes resending it harmless."""

    event_id: str
    node_id: str
    pod_id: str
    gpu_count: int
    start: dt.datetime
    end: dt.datetime
    price_per_sec_wei: int

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "node_id": self.node_id,
            "pod_id": self.pod_id,
            "gpu_count": self.gpu_count,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "price_per_sec_wei": str(self.price_per_sec_wei),
        }


@dataclass(frozen=True)
class UsageAck:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class UsageSummary:
    node_id: str
    seconds: int
    wei: int
    events: int


@dataclass(frozen=True)
class Token:
    """The ERC-20 settlement pays in, as the hub read it from the contract."""

    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class SettlementInfo:
    """Whether the hub settles on chain, and where; chain figures None when unknown."""

    enabled: bool
    contract: str | None
    chain_id: int | None
    confirmations: int | None
    token: Token | None

    def to_json(self) -> dict[str, Any]:
        token = self.token
        return {
            "enabled": self.enabled,
            "contract": self.contract,
            "chain_id": self.chain_id,
            "confirmations": self.confirmations,
            "token": None
            if token is None
            else {"address": token.address, "symbol": token.symbol, "decimals": token.decimals},
        }


@dataclass(frozen=True)
class UsageTotals:
    """Usage rows summed: billed by the ledger, and how much is paid, pending, failed."""

    intervals: int
    seconds: int
    gpu_seconds: int
    billed_wei: int
    paid_wei: int
    pending_wei: int
    failed_wei: int
    failed_reasons: Mapping[str, int]
    last_paid_block: int | None
    last_paid_tx: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "intervals": self.intervals,
            "seconds": self.seconds,
            "gpu_seconds": self.gpu_seconds,
            "billed_wei": str(self.billed_wei),
            "paid_wei": str(self.paid_wei),
            "pending_wei": str(self.pending_wei),
            "failed_wei": str(self.failed_wei),
            "failed_reasons": dict(self.failed_reasons),
            "last_paid_block": self.last_paid_block,
            "last_paid_tx": self.last_paid_tx,
        }


@dataclass(frozen=True)
class EarningsGroup:
    node_id: str
    gpu_type: str
    totals: UsageTotals


@dataclass(frozen=True)
class Earnings:
    """A provider's side: per node and GPU type, and what the contract lets them withdraw."""

    address: str
    settlement: SettlementInfo
    groups: tuple[EarningsGroup, ...]
    total: UsageTotals
    withdrawable_wei: int | None
    chain_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "settlement": self.settlement.to_json(),
            "groups": [
                {"node_id": g.node_id, "gpu_type": g.gpu_type, **g.totals.to_json()}
                for g in self.groups
            ],
            "total": self.total.to_json(),
            "withdrawable_wei": _text(self.withdrawable_wei),
            "chain_error": self.chain_error,
        }


@dataclass(frozen=True)
class Balance:
    """A renter's side: what their GPU time cost, what is paid and owed, their escrow."""

    address: str
    settlement: SettlementInfo
    total: UsageTotals
    owed_wei: int
    deposit_wei: int | None
    withdrawal_requested_wei: int | None
    withdrawal_available_at: dt.datetime | None
    chain_error: str | None

    def to_json(self) -> dict[str, Any]:
        available = self.withdrawal_available_at
        return {
            "address": self.address,
            "settlement": self.settlement.to_json(),
            "total": self.total.to_json(),
            "owed_wei": str(self.owed_wei),
            "deposit_wei": _text(self.deposit_wei),
            "withdrawal_requested_wei": _text(self.withdrawal_requested_wei),
            "withdrawal_available_at": None if available is None else format_time(available),
            "chain_error": self.chain_error,
        }


def _text(wei: int | None) -> str | None:
    return None if wei is None else str(wei)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _settlement(doc: Mapping[str, Any]) -> SettlementInfo:
    token = doc.get("token")
    return SettlementInfo(
        enabled=bool(doc["enabled"]),
        contract=None if doc.get("contract") is None else str(doc["contract"]),
        chain_id=_int_or_none(doc.get("chain_id")),
        confirmations=_int_or_none(doc.get("confirmations")),
        token=None
        if token is None
        else Token(str(token["address"]), str(token["symbol"]), int(token["decimals"])),
    )


def _totals(doc: Mapping[str, Any]) -> UsageTotals:
    return UsageTotals(
        intervals=int(doc["intervals"]),
        seconds=int(doc["seconds"]),
        gpu_seconds=int(doc["gpu_seconds"]),
        billed_wei=int(doc["billed_wei"]),
        paid_wei=int(doc["paid_wei"]),
        pending_wei=int(doc["pending_wei"]),
        failed_wei=int(doc["failed_wei"]),
        failed_reasons={str(k): int(v) for k, v in doc["failed_reasons"].items()},
        last_paid_block=_int_or_none(doc.get("last_paid_block")),
        last_paid_tx=None if doc.get("last_paid_tx") is None else str(doc["last_paid_tx"]),
    )


def _pod_ssh(doc: Mapping[str, Any], pod_id: str) -> PodSsh:
    return PodSsh(
        pod_id=str(doc.get("pod_id", pod_id)),
        host=str(doc["host"]),
        port=int(doc["port"]),
        user=str(doc["user"]),
        host_key=str(doc["host_key"]),
    )


def _gpu(doc: Mapping[str, Any]) -> Gpu:
    return Gpu(name=str(doc["name"]), memory_mib=int(doc["memory_mib"]), uuid=str(doc["uuid"]))


# ----------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class HubEndpoint:
    """A hub URL plus the CA bundle that vouches for it: what config resolves to."""

    url: str
    ca_file: str | None = None

    @classmethod
    def from_config(
        cls, cfg: Config, hub: str | None = None, hub_ca: str | Path | None = None
    ) -> HubEndpoint:
        """Where the hub is and which CA to trust for it, after flags, env and file."""
        return cls(url=cfg.get("hub", hub) or DEFAULT_HUB, ca_file=cfg.get("hub_ca", hub_ca))

    def client(
        self,
        *,
        token: str | None = None,
        client_cert: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> HubClient:
        return HubClient(
            self.url, token=token, ca_file=self.ca_file, client_cert=client_cert, **kwargs
        )


def hub_ca_context(ca_file: str | None) -> ssl.SSLContext:
    """A TLS context that trusts ``ca_file`` (else the system's CAs).

    A configured CA bundle that is gone or is not PEM is a configuration error (exit 2)
    naming the file and where to set it, not a failure to reach the hub.
    """
    try:
        return ssl.create_default_context(cafile=ca_file)
    except OSError as e:  # ssl.SSLError included
        raise ConfigError(
            f"cannot load the hub's CA bundle {ca_file}: {e.strerror or e}",
            "fix the path where it is set (`worldland config show` says where: --hub-ca, "
            "WORLDLAND_HUB_CA or `worldland config set hub_ca FILE`)",
        ) from None


def _seg(value: str) -> str:
    """One URL path segment: a pod id or code typed by a person must not add path parts."""
    return quote(value, safe="")


def _ssl_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an httpx transport error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a 429 asks to wait, when given in seconds and short enough to wait out."""
    text = response.headers.get("retry-after", "").strip()
    if not text.isdigit() or int(text) > MAX_RETRY_AFTER:
        return None
    return float(text)


def _logged(path: str) -> str:
    """``path`` as the -v log shows it: a transfer code replaced by ****."""
    return _SECRET_PATH.sub(lambda m: f"{m.group(1)}****", path)


def _describe(exc: BaseException, timeout: float) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    text = str(exc).strip()
    return text or type(exc).__name__


def _checked(call: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a malformed answer into a HubRejected that names the call.

    Applied by :func:`_answers_checked` when the class is made, so the methods keep their
    own signatures for type checkers.
    """

    @functools.wraps(call)
    def checked(self: HubClient, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(self, *args, **kwargs)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            what = f"missing {e}" if isinstance(e, KeyError) else str(e) or type(e).__name__
            raise HubRejected(
                f"the server at {self.shown_url} answered {call.__name__} with something a "
                f"Worldland hub does not send ({what[:200]})",
                "is --hub pointing at a Worldland hub that speaks API v1?",
            ) from None

    return checked


def _answers_checked(cls: type[HubClient]) -> type[HubClient]:
    """Apply :func:`_checked` to every public call that reads an answer."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_") and name not in ("request", "close"):
            setattr(cls, name, _checked(member))
    return cls


@_answers_checked
class HubClient:
    """Typed calls to one hub; use as a context manager (it holds a connection pool).

    ``token`` is a person's bearer token (``worldland login``); ``client_cert`` is a node's
    (certificate file, key file) pair presented during the TLS handshake.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        client_cert: tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        # What messages name: a password in the URL (a proxy's basic auth) stays out of
        # errors, which people paste into tickets.
        self.shown_url = mask_url(self.url)
        self._token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._client_cert = client_cert is not None
        verify: ssl.SSLContext | bool = True
        if self.url.startswith("https://"):
            verify = hub_ca_context(ca_file)
            if client_cert is not None:
                try:
                    verify.load_cert_chain(client_cert[0], client_cert[1])
                except (OSError, ssl.SSLError) as e:
                    raise HubError(
                        f"cannot load the node certificate {client_cert[0]} with its key "
                        f"{client_cert[1]}: {e.strerror or e}",
                        "run `worldland certs status`, then `worldland certs bootstrap`",
                    ) from None
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            verify=verify,
            transport=transport,
            headers={"User-Agent": f"worldland/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"HubClient({self.shown_url!r}, token={'set' if self._token else 'none'})"

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------------- plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        auth: str | None = "token",
        admin_token: str | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One call with retries; the decoded JSON body (None for 204), or a HubError.

        ``auth="token"`` sends the bearer token when there is one; ``"admin"`` sends
        ``admin_token``; None sends no Authorization header (nonce, login, info).

        A connection that could not be opened is always retried: the hub never saw the
        request. A 5xx or a connection lost mid-request is retried only for idempotent calls
        (GET and DELETE unless told otherwise): retrying a login would replay a spent nonce,
        and retrying a transfer-code claim could spend the code without delivering it.
        """
        import httpx

        headers: dict[str, str] = {}
        if auth == "token" and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        elif auth == "admin" and admin_token:
            headers["Authorization"] = f"Bearer {admin_token}"
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        shown = f"{method} {self.shown_url}{_logged(path)}"
        attempt = 0
        while True:
            start = time.monotonic()
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError as e:
                log.info("%s: %s", shown, _describe(e, self.timeout))
                tls_error = _ssl_failure(e)
                if tls_error is not None:
                    raise self._tls_error(tls_error) from None
                never_sent = isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt < self.retries and (never_sent or idempotent):
                    self._wait(self.backoff * 2**attempt)
                    attempt += 1
                    continue
                raise HubUnreachable(
                    f"cannot reach the hub at {self.shown_url}: {_describe(e, self.timeout)}",
                    NETWORK_HINT,
                ) from None
            elapsed = (time.monotonic() - start) * 1000
            log.info("%s -> %d in %.0f ms", shown, response.status_code, elapsed)
            if response.status_code >= 500 and idempotent and attempt < self.retries:
                self._wait(self.backoff * 2**attempt)
                attempt += 1
                continue
            wait = _retry_after(response)
            if response.status_code == 429 and wait is not None and attempt < self.retries:
                # Refused before any work was done, so any call may be sent again.
                self._wait(wait)
                attempt += 1
                continue
            return self._decode(method, path, response)

    def _wait(self, seconds: float) -> None:
        log.info("trying again in %g s", seconds)
        self._sleep(seconds)

    def _tls_error(self, error: ssl.SSLError) -> HubError:
        reason = getattr(error, "reason", None) or str(error)
        if isinstance(error, ssl.SSLCertVerificationError):
            return HubUnreachable(
                f"cannot verify the TLS certificate of the hub at {self.shown_url}: "
                f"{error.verify_message or reason}",
                "give the CA that signed the hub's certificate: --hub-ca FILE, "
                "WORLDLAND_HUB_CA or `worldland config set hub_ca FILE`",
            )
        if self._client_cert:
            return HubDenied(
                f"the hub at {self.shown_url} refused this node's client certificate ({reason})",
                "issue a fresh one with `worldland certs bootstrap`",
            )
        return HubUnreachable(
            f"TLS handshake with the hub at {self.shown_url} failed: {reason}", NETWORK_HINT
        )

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise HubRejected(
                    f"the hub at {self.shown_url} sent a body that is not JSON for {method} {path}",
                    "is --hub pointing at a Worldland hub?",
                    status=status,
                ) from None
        detail = self._detail(response)
        where = f"{method} {path}"
        if status == 401:
            raise HubDenied(
                f"the hub refused the request ({where}): {detail}",
                LOGIN_HINT,
                status=status,
                detail=detail,
            )
        if status == 403:
            raise HubDenied(
                f"the hub refused the request ({where}): {detail}",
                "log in with the wallet that owns it: `worldland login --private-key-file FILE`",
                status=status,
                detail=detail,
            )
        if status == 429:
            raise HubRejected(
                f"the hub at {self.shown_url} is limiting requests from this address ({where}): "
                f"{detail}",
                "wait a little and run the command again",
                status=status,
                detail=detail,
            )
        if status >= 500:
            raise HubRejected(
                f"the hub at {self.shown_url} failed ({where}): HTTP {status}: {detail}",
                "try again later; if it persists, run `worldland diag network` "
                "and send the hub operator this message",
                status=status,
                detail=detail,
            )
        if status == 404 and detail.startswith("HTTP "):
            raise HubRejected(
                f"the hub at {self.shown_url} does not know {where}",
                "is --hub pointing at a Worldland hub that speaks API v1?",
                status=status,
                detail=detail,
            )
        raise HubRejected(f"{detail} ({where}: HTTP {status})", status=status, detail=detail)

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return str(body["detail"])
        text = response.text.strip().splitlines()
        return text[0][:200] if text else f"HTTP {response.status_code}"

    # ---------------------------------------------------------------------- public, auth

    def health(self) -> dict[str, Any]:
        return dict(self.request("GET", "/health", auth=None))

    def info(self) -> HubInfo:
        doc = self.request("GET", "/v1/info", auth=None)
        return HubInfo(
            siwe_domain=str(doc["siwe_domain"]),
            chain_ids=tuple(int(c) for c in doc["chain_ids"]),
            ca_certificate=str(doc["ca_certificate"]),
            api_version=str(doc["api_version"]),
            tls=bool(doc["tls"]),
            vpn_server_public_key=str(doc["vpn_server_public_key"]),
            vpn_endpoint=str(doc["vpn_endpoint"]),
        )

    def nonce(self) -> Nonce:
        doc = self.request("POST", "/v1/auth/nonce", auth=None, idempotent=True)
        return Nonce(nonce=str(doc["nonce"]), expires_at=parse_time(doc["expires_at"]))

    def login(self, message: str, signature: str) -> LoginResult:
        doc = self.request(
            "POST", "/v1/auth/login", json={"message": message, "signature": signature}, auth=None
        )
        return LoginResult(
            token=str(doc["token"]),
            address=str(doc["address"]),
            expires_at=parse_time(doc["expires_at"]),
        )

    def logout(self) -> None:
        """Revoke this client's bearer token at the hub (it stops working at once)."""
        self.request("DELETE", "/v1/auth/session")

    # ----------------------------------------------------------------------------- nodes

    def register_node(
        self,
        host: str,
        gpus: Sequence[Gpu],
        price_per_sec_wei: int,
        labels: Mapping[str, str] | None = None,
    ) -> NodeRegistered:
        doc = self.request(
            "POST",
            "/v1/nodes",
            json={
                "host": host,
                "gpus": [g.to_json() for g in gpus],
                "price_per_sec_wei": str(price_per_sec_wei),
                "labels": dict(labels or {}),
            },
            idempotent=True,  # the hub updates the same wallet + host + GPUs in place
        )
        return NodeRegistered(node_id=str(doc["node_id"]), created=bool(doc["created"]))

    def list_nodes(self) -> list[NodeInfo]:
        doc = self.request("GET", "/v1/nodes")
        return [
            NodeInfo(
                node_id=str(n["node_id"]),
                host=str(n["host"]),
                gpus=tuple(_gpu(g) for g in n["gpus"]),
                price_per_sec_wei=int(n["price_per_sec_wei"]),
                registered_at=parse_time(n["registered_at"]),
                last_seen=parse_time(n["last_seen"]) if n.get("last_seen") else None,
                online=bool(n["online"]),
            )
            for n in doc["nodes"]
        ]

    def heartbeat(self, node_id: str) -> dt.datetime:
        doc = self.request("POST", f"/v1/nodes/{_seg(node_id)}/heartbeat", json={}, idempotent=True)
        return parse_time(doc["last_seen"])

    def issue_cert(self, node_id: str, csr_pem: str) -> IssuedCert:
        """Bootstrap (bearer) or renewal (over mTLS with the current certificate)."""
        doc = self.request("POST", "/v1/certs", json={"node_id": node_id, "csr": csr_pem})
        return IssuedCert(
            certificate=str(doc["certificate"]),
            ca_certificate=str(doc["ca_certificate"]),
            not_after=parse_time(doc["not_after"]),
            serial=str(doc["serial"]),
        )

    def delete_node(self, node_id: str) -> None:
        """Deregister a node (owner's token): the hub releases its VPN address, revokes its
        certificates and frees its GPUs. Safe to retry: a deregistered node stays so."""
        self.request("DELETE", f"/v1/nodes/{_seg(node_id)}")

    def join(self, node_id: str) -> JoinParams:
        doc = self.request("POST", f"/v1/nodes/{_seg(node_id)}/join")
        return JoinParams(
            api_server=str(doc["api_server"]),
            token=str(doc["token"]),
            ca_cert_hashes=tuple(str(h) for h in doc["ca_cert_hashes"]),
        )

    # ------------------------------------------------------------------------------- vpn

    def add_vpn_peer(self, public_key: str, node_id: str | None = None) -> VpnPeer:
        """The node's VPN address, now for ``public_key`` (a node has one address).

        ``node_id`` names the node; it may be left out only over mTLS with the node's own
        certificate, which names it.
        """
        body = {"public_key": public_key}
        if node_id is not None:
            body["node_id"] = node_id
        doc = self.request(  # the same node and key always get the same address
            "POST", "/v1/vpn/peers", json=body, idempotent=True
        )
        return VpnPeer(
            public_key=str(doc["public_key"]),
            node_id=str(doc["node_id"]),
            address=str(doc["address"]),
            server_public_key=str(doc["server_public_key"]),
            endpoint=str(doc["endpoint"]),
            allowed_ips=str(doc["allowed_ips"]),
            persistent_keepalive=int(doc["persistent_keepalive"]),
        )

    def delete_vpn_peer(self, public_key: str) -> None:
        self.request("DELETE", "/v1/vpn/peers", params={"public_key": public_key})

    # ------------------------------------------------------------------ pods, transfers

    def admin_register_pod(
        self, admin_token: str, pod: PodSsh, renter_address: str, node_id: str | None = None
    ) -> str:
        """Operator call: record (or update) a pod's SSH endpoint for its renter.

        ``node_id`` places the pod on the node it runs on: only then can that node bill
        usage for it.
        """
        body: dict[str, Any] = {
            "pod_id": pod.pod_id,
            "renter_address": renter_address,
            "ssh_host": pod.host,
            "ssh_port": pod.port,
            "ssh_user": pod.user,
            "host_key": pod.host_key,
        }
        if node_id is not None:
            body["node_id"] = node_id
        doc = self.request(
            "POST",
            "/v1/admin/pods",
            json=body,
            auth="admin",
            admin_token=admin_token,
        )
        return str(doc["pod_id"])

    def list_pods(self) -> list[PodInfo]:
        """The caller's pods, as their renter."""
        doc = self.request("GET", "/v1/pods")
        return [
            PodInfo(
                pod_id=str(p["pod_id"]),
                node_id=None if p.get("node_id") is None else str(p["node_id"]),
                gpu_model=None if p.get("gpu_model") is None else str(p["gpu_model"]),
                gpu_count=int(p.get("gpu_count") or 0),
                state=str(p.get("state") or "unknown"),
                last_billed_at=parse_time(p["last_billed_at"]) if p.get("last_billed_at") else None,
                ssh_host=str(p["ssh_host"]),
                ssh_port=int(p["ssh_port"]),
                ssh_user=str(p["ssh_user"]),
            )
            for p in doc["pods"]
        ]

    def pod_ssh(self, pod_id: str) -> PodSsh:
        return _pod_ssh(self.request("GET", f"/v1/pods/{_seg(pod_id)}/ssh"), pod_id)

    def create_transfer(
        self, pod_id: str, path: str, name: str, size: int, sha256: str
    ) -> TransferCode:
        """Register a file in a pod; the hub makes the code (a client cannot choose one)."""
        body = {"pod_id": pod_id, "path": path, "name": name, "size": size, "sha256": sha256}
        doc = self.request("POST", "/v1/transfers", json=body)
        return TransferCode(code=str(doc["code"]), expires_at=parse_time(doc["expires_at"]))

    def claim_transfer(self, code: str) -> TransferClaim:
        doc = self.request("GET", f"/v1/transfers/{_seg(code)}", idempotent=False)
        return TransferClaim(
            code=str(doc["code"]),
            pod_id=str(doc["pod_id"]),
            path=str(doc["path"]),
            name=str(doc["name"]),
            size=int(doc["size"]),
            sha256=str(doc["sha256"]),
            ssh=_pod_ssh(doc["ssh"], str(doc["pod_id"])),
        )

    # ----------------------------------------------------------------------------- usage

    def post_usage(self, events: Sequence[UsageEvent]) -> UsageAck:
        doc = self.request(  # the hub counts each event_id once
            "POST", "/v1/usage", json=[e.to_json() for e in events], idempotent=True
        )
        return UsageAck(accepted=int(doc["accepted"]), duplicates=int(doc["duplicates"]))

    def usage(self, node_id: str) -> UsageSummary:
        doc = self.request("GET", "/v1/usage", params={"node_id": node_id})
        return UsageSummary(
            node_id=str(doc["node_id"]),
            seconds=int(doc["seconds"]),
            wei=int(doc["wei"]),
            events=int(doc["events"]),
        )

    # ------------------------------------------------------------------------ settlement

    def earnings(self) -> Earnings:
        """The logged-in wallet's earnings as a provider (GET /v1/earnings)."""
        doc = self.request("GET", "/v1/earnings")
        return Earnings(
            address=str(doc["address"]),
            settlement=_settlement(doc["settlement"]),
            groups=tuple(
                EarningsGroup(str(g["node_id"]), str(g["gpu_type"]), _totals(g))
                for g in doc["groups"]
            ),
            total=_totals(doc["total"]),
            withdrawable_wei=_int_or_none(doc.get("withdrawable_wei")),
            chain_error=doc.get("chain_error"),
        )

    def balance(self) -> Balance:
        """The logged-in wallet's balance as a renter (GET /v1/balance)."""
        doc = self.request("GET", "/v1/balance")
        available = doc.get("withdrawal_available_at")
        return Balance(
            address=str(doc["address"]),
            settlement=_settlement(doc["settlement"]),
            total=_totals(doc["total"]),
            owed_wei=int(doc["owed_wei"]),
            deposit_wei=_int_or_none(doc.get("deposit_wei")),
            withdrawal_requested_wei=_int_or_none(doc.get("withdrawal_requested_wei")),
            withdrawal_available_at=None if available is None else parse_time(available),
            chain_error=doc.get("chain_error"),
        )
