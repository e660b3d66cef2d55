"""A fake hub that relays every request to a real one: the man in the middle of a login.

It listens on its own loopback port and forwards method, path, headers and body to the real
hub with httpx, handing back the real answer, so to a client it looks like a working hub at
another address (the one in a `worldland receive CODE --hub http://FAKE` line an attacker
sends). ``announce`` rewrites ``/v1/info``'s ``siwe_domain`` (``"self"``: the relay's own
host:port), as an attacker who wants a login signed for some domain would. Every login
answer the real hub gave is kept in ``logins``: a 200 there is a session the attacker now
holds on the real hub.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Relay:
    url: str
    logins: list[tuple[int, dict[str, object]]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def stolen_tokens(self) -> list[str]:
        return [str(body["token"]) for status, body in self.logins if status == 200]


@contextmanager
def relay_to(target: httpx.Client, announce: str | None = None) -> Iterator[Relay]:
    """Serve a relay to ``target`` (an httpx client of the real hub) while in the block."""
    lock = threading.Lock()
    relay = Relay(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            with lock:
                relay.paths.append(f"{self.command} {self.path}")
                answer = target.request(self.command, self.path, content=body, headers=headers)
            content = answer.content
            if self.path == "/v1/info" and announce is not None:
                doc = answer.json()
                doc["siwe_domain"] = relay.url[len("http://") :] if announce == "self" else announce
                content = json.dumps(doc).encode()
            if self.path == "/v1/auth/login":
                with lock:
                    relay.logins.append((answer.status_code, answer.json()))
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    relay.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        server.shutdown()
        server.server_close()
