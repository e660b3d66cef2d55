"""Whatever answers at the hub URL is not trusted to be a hub until its answers check out.

A server that is not a Worldland hub (or a hostile one) used to crash the CLI with a Python
traceback (`KeyError: 'siwe_domain'`) as soon as an answer lacked a field or held a value of
another type. Every call now fails with one line naming the call and what was wrong.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.security.conftest import cli, flat
from worldland_cli.hubclient import HubClient, HubRejected


@contextmanager
def answering(doc: Any) -> Iterator[str]:
    """A server that answers every request with ``doc`` as JSON (200)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("doc", "what"),
    [
        ({"nope": 1}, "missing 'siwe_domain'"),
        (["a", "list"], "list indices must be integers"),
        ({"siwe_domain": "x", "chain_ids": "one"}, "invalid literal for int()"),
    ],
)
def test_login_against_a_server_that_is_no_hub_is_one_clear_line(doc: Any, what: str) -> None:
    assert cli("wallet", "new").exit_code == 0
    with answering(doc) as url:
        result = cli("login", "--hub", url)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    message = flat(result.stderr)
    assert f"the server at {url} answered info with something a Worldland hub does not send" in (
        message
    )
    assert what in message


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.nonce(),
        lambda c: c.login("m", "s"),
        lambda c: c.list_nodes(),
        lambda c: c.pod_ssh("pod-1"),
        lambda c: c.claim_transfer("0000-a-b-c-d-e"),
        lambda c: c.issue_cert("n", "csr"),
    ],
)
def test_every_call_checks_its_answer(call: Any) -> None:
    lies = {"expires_at": "not a time", "nodes": [{}], "size": "big"}
    with (
        answering(lies) as url,
        HubClient(url) as client,
        pytest.raises(HubRejected, match="does not send"),
    ):
        call(client)
