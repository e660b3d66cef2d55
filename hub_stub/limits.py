"""Bounds on what a stranger can make the hub do: request body sizes and request rates.

The hub's open endpoints (health, info, nonce, login) answer anyone, and a login costs a
signature recovery (about 5 ms of CPU here). Two cheap guards run before any of that work:

* :class:`BodyLimit`, an ASGI middleware, refuses a body over its path's limit with 413
  before reading it (from ``Content-Length``), or as soon as a streamed body passes it.
* :class:`RateLimiter` keeps a token bucket per key (a client address, or a wallet), in
  bounded memory, and says how long to wait when the bucket is empty; the app answers 429
  with ``Retry-After``. IPv6 clients are keyed by their /64, which one host usually owns.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# JSON bodies of the API are small; a usage batch (1000 events) is the one large body.
DEFAULT_BODY_LIMIT = 64 << 10
BODY_LIMITS: Mapping[str, int] = {"/v1/usage": 1 << 20}
# How many distinct keys one limiter remembers; the least recently seen is forgotten first.
MAX_KEYS = 65_536


class _TooLarge(Exception):
    """Raised into the app when a streamed body passes its limit."""


class BodyLimit:
    """Refuse request bodies over a per-path limit (413) before or while reading them."""

    def __init__(
        self,
        app: ASGIApp,
        default: int = DEFAULT_BODY_LIMIT,
        per_path: Mapping[str, int] = BODY_LIMITS,
    ) -> None:
        self.app = app
        self.default = default
        self.per_path = per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        seen = 0
        over = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _TooLarge
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            # The framework turns a failed body read into its own 400; say 413 instead.
            nonlocal started
            if over:
                if not started and message["type"] == "http.response.start":
                    started = True
                    await _refuse(send, limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except _TooLarge:
            if not started:
                await _refuse(send, limit)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body too large (at most {limit} bytes)"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class Rate:
    """``per_second`` sustained, ``burst`` at once; parsed from ``5/s:60`` style flags."""

    per_second: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``N/s``, ``N/m`` or ``N/h``, optionally ``:BURST`` (default: one second's worth)."""
        spec, _, burst = text.strip().partition(":")
        count, _, unit = spec.partition("/")
        seconds = {"s": 1, "m": 60, "h": 3600}.get(unit)
        try:
            per_second = float(count) / seconds if seconds else -1.0
            size = int(burst) if burst else max(1, math.ceil(per_second))
        except ValueError:
            per_second, size = -1.0, 0
        if per_second <= 0 or size < 1:
            raise ValueError(f"{text!r}: use N/s, N/m or N/h with an optional :BURST, e.g. 5/s:60")
        return cls(per_second, size)


# Defaults per client address (docs/hub-api.md): generous for people and nodes behind one
# NAT, tight enough that one address cannot spend more than a few percent of a core.
OPEN_RATE = Rate(50, 200)
AUTH_RATE = Rate(5, 60)
CLAIM_RATE = Rate(1, 20)


class RateLimiter:
    """A token bucket per key; thread-safe (sync endpoints run in a threadpool)."""

    def __init__(self, rate: Rate, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token for ``key``: 0.0 when allowed, else the seconds until one is due."""
        at = time.monotonic() if now is None else now
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (float(self.rate.burst), at))
            tokens = min(float(self.rate.burst), tokens + (at - stamp) * self.rate.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate.per_second
            self._buckets[key] = (tokens, at)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


def client_key(host: str | None) -> str:
    """The key a client address is limited under: the address, or its /64 for IPv6."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)
