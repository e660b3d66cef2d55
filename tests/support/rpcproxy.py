"""A JSON-RPC proxy in front of anvil that can hold one chosen call: a kill switch with aim.

The crash tests point the hub at this proxy and ask it to hold, say, the second
``eth_sendRawTransaction``: either before forwarding it (the hub has signed and recorded
the transaction, the chain never saw it) or after (the chain has it, the hub never hears
back). The test waits until the call is held, SIGKILLs the hub, and so crashes the worker
exactly between two of its steps, with no hook in the hub's code.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOLD_LIMIT = 60.0  # seconds a held call waits for release at most


@dataclass
class Hold:
    """Hold the ``occurrence``-th call of ``method``; ``forward`` it to the chain first or not."""

    method: str
    occurrence: int
    forward: bool
    hit: threading.Event = field(default_factory=threading.Event)


class RpcProxy:
    """Forwards JSON-RPC POSTs to ``upstream``; see the module docstring."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.calls: Counter[str] = Counter()
        self._hold: Hold | None = None
        self._release = threading.Event()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy._serve(self, body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def hold(self, method: str, *, occurrence: int = 1, forward: bool = False) -> Hold:
        """Hold the ``occurrence``-th ``method`` call from now on; wait on ``.hit``."""
        with self._lock:
            self.calls.clear()
            self._release.clear()
            self._hold = Hold(method, occurrence, forward)
            return self._hold

    def release(self) -> None:
        """Stop holding: a held call is answered 502 (its caller is usually dead by then)."""
        with self._lock:
            self._hold = None
        self._release.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        method = str(json.loads(body).get("method", ""))
        with self._lock:
            self.calls[method] += 1
            hold = self._hold
            held = (
                hold is not None and hold.method == method and self.calls[method] == hold.occurrence
            )
        if held and hold is not None:
            if hold.forward:
                httpx.post(
                    self.upstream,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                )
            hold.hit.set()
            self._release.wait(HOLD_LIMIT)
            self._answer(handler, 502, b"held by the test proxy")
            return
        try:
            reply = httpx.post(
                self.upstream,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
        except httpx.HTTPError:
            self._answer(handler, 502, b"upstream unreachable")
            return
        self._answer(handler, reply.status_code, reply.content)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the caller was killed while its call was held
