"""List + watch of the pods bound to this node, as the kubelet and client-go's reflector do.

``GET /api/v1/pods?fieldSelector=spec.nodeName=NODE`` gives the node's pods and the list's
``resourceVersion``; ``?watch=1&resourceVersion=RV&allowWatchBookmarks=true`` then streams
every change after it as JSON lines (ADDED, MODIFIED, DELETED; BOOKMARK carrying only a newer
resourceVersion; ERROR carrying a Status). The stream is resumed from the last version seen
when it ends or drops, so nothing is missed; an ERROR with code 410 (the version is older than
the API server's history) means the changes in between are gone, and only a fresh list tells
the truth again: the meter then reconciles with it.

Raw JSON, not the client's models: see :mod:`worldland_cli.daemon.pods`. For the same reason
the requests go through the kubernetes client's ``ApiClient`` (its kubeconfig handling, TLS,
authentication and connection pool) but not the generated ``CoreV1Api``, whose one module
costs about 20 MB of memory for the single call made here (bench/daemon_footprint.py). The
client is made again for every list from the kubeconfig (the kubelet rotates its client
certificate in kubelet.conf), with the files it names read through the host.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.meter import Meter
from worldland_cli.daemon.pods import view
from worldland_cli.host import Host, HostError

# The server ends a watch after this long (client-go picks 5-10 minutes); the read timeout
# is longer, so that only a silent, half-open connection trips it.
WATCH_SECONDS = 300
READ_GRACE = 30
CONNECT_TIMEOUT = 10
RETRY_CAP = 30.0
HTTP_GONE = 410
PODS = "/api/v1/pods"


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class WatchError(Exception):
    """The API server sent an ERROR event other than 410."""


def _lines(response: Any) -> Iterator[bytes]:
    """Complete lines of a chunked stream, as each chunk arrives."""
    buffer = b""
    for chunk in response.stream(None, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


class PodWatch:
    """Keeps the meter told about the node's pods; run :meth:`run` in a thread."""

    def __init__(
        self,
        host: Host,
        kubeconfig: str,
        node_name: str,
        meter: Meter,
        log: EventLog,
        *,
        settle: int,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.host = host
        self.kubeconfig = kubeconfig
        self.node_name = node_name
        self.meter = meter
        self.log = log
        self.settle = settle
        self.watch_seconds = watch_seconds
        self.relists = 0
        self.resource_version: str | None = None
        self._stopping = threading.Event()
        self._live_since: float | None = None
        self._response: Any = None
        self._opened = False  # whether this round's stream opened (a drop, not a refusal)

    @property
    def selector(self) -> str:
        return f"spec.nodeName={self.node_name}"

    def current(self, now: float) -> bool:
        """Whether the meter's picture is current: a stream has been open ``settle`` seconds
        (long enough for what it replays after a gap to have arrived)."""
        since = self._live_since
        return since is not None and now - since >= self.settle

    def state(self) -> str:
        return "watching" if self._live_since is not None else "disconnected"

    def stop(self) -> None:
        """Stop watching; an open stream is shut so that the thread's read returns."""
        self._stopping.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception as e:  # a stream ending under us is what we asked for
                self.log.debug("watch.shutdown", error=str(e))

    def run(self) -> None:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        failures = 0
        api: Any = None
        while not self._stopping.is_set():
            self._opened = False
            try:
                if self.resource_version is None:
                    if api is not None:
                        api.close()
                    api = self._api()
                    self._list(api)
                self._watch(api)
                failures = 0
            except Gone as e:
                self.log.info("watch.gone", detail=str(e), detail_next="listing again")
                self.resource_version = None
            except (
                ApiException,
                WatchError,
                urllib3.exceptions.HTTPError,
                OSError,
                ValueError,
                HostError,
            ) as e:
                if self._stopping.is_set():
                    break
                self._live_since = None
                failures = 1 if self._opened else failures + 1  # a dropped stream: resume now
                delay = min(RETRY_CAP, 0.5 * 2 ** (failures - 1))
                if isinstance(e, WatchError):
                    self.resource_version = None
                self.log.warn(
                    "watch.error",
                    error=_describe(e),
                    resume_from=self.resource_version,
                    retry_in_s=delay,
                )
                self._stopping.wait(delay)
        self._live_since = None
        if api is not None:
            api.close()

    def _api(self) -> Any:
        """An ApiClient authenticated by the kubeconfig, its files read through the host."""
        import yaml
        from kubernetes import config

        from worldland_cli.requirements.kube import inline_files

        text = self.host.read_text(self.kubeconfig)
        if text is None:
            raise HostError(f"{self.kubeconfig} does not exist (is this node joined?)")
        raw = yaml.safe_load(text)
        if not isinstance(raw, dict):
            raise ValueError(f"{self.kubeconfig} is not a kubeconfig mapping")
        try:
            inlined = inline_files(self.host, raw)
        except FileNotFoundError as e:
            raise HostError(f"cannot read {e}") from None
        load: Any = config.new_client_from_config_dict
        return load(config_dict=inlined)

    @staticmethod
    def _get(api: Any, query: list[tuple[str, Any]], timeout: tuple[float, float]) -> Any:
        """GET /api/v1/pods with ``query``, as CoreV1Api would send it; the raw response
        (a stream for a watch), or ApiException for an answer that is not 2xx."""
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _, _ = api.param_serialize(
            method="GET",
            resource_path=PODS,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = api.call_api(method, url, header_params=headers, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def _list(self, api: Any) -> None:
        now = time.time()
        response = self._get(
            api, [("fieldSelector", self.selector)], (CONNECT_TIMEOUT, CONNECT_TIMEOUT * 3)
        )
        doc = json.loads(response.data)
        version = str(doc["metadata"]["resourceVersion"])
        views = [v for item in doc.get("items") or [] if (v := view(item)) is not None]
        self.meter.reconcile(views, int(now))
        self.resource_version = version
        self.relists += 1
        if self._live_since is None:
            self._live_since = now
        self.log.info("watch.listed", pods=len(views), resource_version=version)

    def _watch(self, api: Any) -> None:
        """One watch stream from ``resource_version``, until the server ends it."""
        query = [
            ("allowWatchBookmarks", True),
            ("fieldSelector", self.selector),
            ("resourceVersion", self.resource_version),
            ("timeoutSeconds", self.watch_seconds),
            ("watch", True),
        ]
        response = self._get(api, query, (CONNECT_TIMEOUT, self.watch_seconds + READ_GRACE))
        self._response = response
        self._opened = True
        if self._live_since is None:
            self._live_since = time.time()
        self.log.debug("watch.open", resource_version=self.resource_version)
        try:
            for line in _lines(response):
                if self._stopping.is_set():
                    return
                self._handle(json.loads(line))
        finally:
            self._response = None
            response.release_conn()

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == HTTP_GONE:
                raise Gone(str(obj.get("message", "resource version too old")))
            raise WatchError(f"{obj.get('reason', 'Error')} ({code}): {obj.get('message', '')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            pod = view(obj)
            if pod is not None:
                self.log.debug("watch.event", type=kind, pod=pod.pod_id, uid=pod.uid)
                if kind == "DELETED":
                    self.meter.deleted(pod, int(time.time()))
                else:
                    self.meter.observe(pod)
        if version:
            self.resource_version = str(version)


def _describe(error: Exception) -> str:
    status = getattr(error, "status", None)
    if status is not None and getattr(error, "reason", None):
        return f"HTTP {status}: {error.reason}"  # type: ignore[attr-defined]
    return str(error).splitlines()[0] if str(error) else type(error).__name__
