"""The hub client's retry policy and error mapping, against httpx.MockTransport and real
sockets (a closed port, a server that never answers)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from worldland_cli.errors import ExitCode
from worldland_cli.hubclient import (
    HubClient,
    HubDenied,
    HubRejected,
    HubUnreachable,
)

URL = "http://hub.test:8080"


class Script:
    """Answers requests in order: an httpx.Response, or an exception to raise."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def client_for(script: Script, sleeps: list[float], **kwargs: object) -> HubClient:
    return HubClient(
        URL,
        transport=httpx.MockTransport(script),
        sleep=sleeps.append,
        **kwargs,  # type: ignore[arg-type]
    )


HEALTH = httpx.Response(200, json={"status": "ok", "version": "1"})


def test_connection_errors_are_retried_with_exponential_backoff() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    script = Script(refused, refused, HEALTH)
    sleeps: list[float] = []
    assert client_for(script, sleeps).health() == {"status": "ok", "version": "1"}
    assert sleeps == [0.25, 0.5]
    assert len(script.requests) == 3


def test_5xx_is_retried_then_succeeds() -> None:
    script = Script(httpx.Response(502, text="bad gateway"), httpx.Response(503), HEALTH)
    sleeps: list[float] = []
    assert client_for(script, sleeps).health()["status"] == "ok"
    assert sleeps == [0.25, 0.5]


def test_persistent_5xx_gives_up_with_the_hubs_words() -> None:
    script = Script(*[httpx.Response(500, json={"detail": "database is locked"})] * 4)
    sleeps: list[float] = []
    with pytest.raises(HubRejected) as info:
        client_for(script, sleeps).health()
    assert len(script.requests) == 4 and sleeps == [0.25, 0.5, 1.0]
    assert "HTTP 500: database is locked" in info.value.message
    assert info.value.exit_code == ExitCode.FAILED


CLAIM = httpx.Response(
    200,
    json={
        "code": "1234-a-b-c", "pod_id": "p", "path": "/w/f", "name": "f", "size": 1,
        "sha256": "0" * 64, "ssh": {"host": "h", "port": 22, "user": "u", "host_key": "k"},
    },
)  # fmt: skip


def test_a_refused_connection_is_retried_even_for_a_one_time_claim() -> None:
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"), CLAIM)
    assert client_for(script, []).claim_transfer("1234-a-b-c").pod_id == "p"
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(502, text="bad gateway"), httpx.ReadTimeout("timed out")],
    ids=["5xx", "lost-mid-request"],
)
def test_one_time_calls_are_not_retried_once_the_hub_may_have_acted(
    failure: httpx.Response | Exception,
) -> None:
    """A claim that reached the hub may have spent the code; a retry would answer 410."""
    script = Script(failure, CLAIM)
    with pytest.raises((HubRejected, HubUnreachable)):
        client_for(script, []).claim_transfer("1234-a-b-c")
    assert len(script.requests) == 1


def test_login_is_not_retried_after_a_5xx_since_its_nonce_is_spent() -> None:
    script = Script(httpx.Response(503), httpx.Response(200, json={}))
    with pytest.raises(HubRejected):
        client_for(script, []).login("message", "0xsig")
    assert len(script.requests) == 1


def test_usage_posts_are_retried_since_the_hub_dedups_event_ids() -> None:
    ack = httpx.Response(200, json={"accepted": 0, "duplicates": 0})
    script = Script(httpx.ReadTimeout("timed out"), ack)
    sleeps: list[float] = []
    assert client_for(script, sleeps).post_usage([]).accepted == 0
    assert len(script.requests) == 2 and sleeps == [0.25]


def test_path_parameters_typed_by_a_person_stay_one_segment() -> None:
    script = Script(httpx.Response(404, json={"detail": "no such pod"}))
    with pytest.raises(HubRejected):
        client_for(script, [], token="t").pod_ssh("../admin/pods?x=1")
    assert script.requests[0].url.raw_path == b"/v1/pods/..%2Fadmin%2Fpods%3Fx%3D1/ssh"


@pytest.mark.parametrize("status", [400, 404, 409, 410, 422])
def test_4xx_is_not_retried(status: int) -> None:
    script = Script(httpx.Response(status, json={"detail": "code already used"}))
    sleeps: list[float] = []
    with pytest.raises(HubRejected) as info:
        client_for(script, sleeps).claim_transfer("1234-a-b-c")
    assert len(script.requests) == 1 and sleeps == []
    assert info.value.status == status and info.value.detail == "code already used"
    assert info.value.message.startswith("code already used")


def test_401_names_the_reason_and_says_run_login() -> None:
    script = Script(httpx.Response(401, json={"detail": "token unknown or expired: log in again"}))
    with pytest.raises(HubDenied) as info:
        client_for(script, [], token="tok").list_nodes()
    assert "token unknown or expired" in info.value.message
    assert info.value.hint == "run `worldland login`"
    assert info.value.exit_code == ExitCode.DENIED == 4


def test_403_is_denied_with_the_ownership_remedy() -> None:
    script = Script(httpx.Response(403, json={"detail": "node x belongs to another wallet"}))
    with pytest.raises(HubDenied) as info:
        client_for(script, [], token="tok").heartbeat("x")
    assert "belongs to another wallet" in info.value.message
    assert "--private-key-file" in (info.value.hint or "")


def test_bearer_token_goes_only_where_it_belongs() -> None:
    script = Script(
        httpx.Response(200, json={"nonce": "abcdefgh1234", "expires_at": "2026-11-23T04:48:39Z"}),
        httpx.Response(200, json={"nodes": []}),
    )
    client = client_for(script, [], token="s3cret-token")
    client.nonce()
    assert client.list_nodes() == []
    assert "authorization" not in script.requests[0].headers
    assert script.requests[1].headers["authorization"] == "Bearer s3cret-token"
    assert "s3cret-token" not in repr(client)


def test_wei_and_times_are_typed() -> None:
    script = Script(
        httpx.Response(200, json={"node_id": "n", "seconds": 7, "wei": str(2**70), "events": 1})
    )
    summary = client_for(script, []).usage("n")
    assert summary.wei == 2**70 and summary.seconds == 7
    assert script.requests[0].url.params["node_id"] == "n"


def test_non_json_success_says_the_url_is_not_a_hub() -> None:
    script = Script(httpx.Response(200, text="<html>nginx</html>"))
    with pytest.raises(HubRejected, match="not JSON") as info:
        client_for(script, []).info()
    assert "Worldland hub" in (info.value.hint or "")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_refused_connection_names_the_url_and_diag_network(closed_port: int) -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(HubUnreachable) as info:
        HubClient(url, sleep=sleeps.append).health()
    assert f"cannot reach the hub at {url}" in info.value.message
    assert "worldland diag network" in (info.value.hint or "")
    assert info.value.exit_code == ExitCode.UNREACHABLE == 3
    assert sleeps == [0.25, 0.5, 1.0]


@pytest.fixture
def silent_server() -> Iterator[Callable[[], str]]:
    """Accepts connections and never answers (a wedged hub behind a load balancer)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield lambda: f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_hub_that_never_answers_times_out(silent_server: Callable[[], str]) -> None:
    client = HubClient(silent_server(), timeout=0.3, retries=1, sleep=lambda _: None)
    with pytest.raises(HubUnreachable, match=r"no answer within 0.3 s"):
        client.health()


def test_a_password_in_the_hub_url_never_appears_in_an_error(closed_port: int) -> None:
    # config accepts https://user:password@hub (config show masks it); the client's error
    # messages, which people paste into tickets, named the URL with the password.
    url = f"http://ops:hunter2@127.0.0.1:{closed_port}"
    with pytest.raises(HubUnreachable) as unreachable:
        HubClient(url, retries=0).health()
    assert f"http://ops:****@127.0.0.1:{closed_port}" in unreachable.value.message
    answers = Script(httpx.Response(500, json={"detail": "boom"}), httpx.Response(200, text="x"))
    client = HubClient(
        "http://ops:hunter2@hub.test:8080",
        transport=httpx.MockTransport(answers),
        retries=0,
    )
    with pytest.raises(HubRejected) as failed:
        client.health()
    with pytest.raises(HubRejected) as not_json:
        client.health()
    for error in (unreachable.value, failed.value, not_json.value):
        assert "hunter2" not in f"{error.message} {error.hint}"
    assert "hunter2" not in repr(client)
