"""A small fake Kubernetes API server for tests that drive the real ``kubernetes`` client.

No kube-apiserver can be installed here, so this serves the few API paths the CLI uses, with
the real paths, kinds and shapes (``kind``/``apiVersion``/``metadata``/``status``, list
kinds with ``metadata.resourceVersion``, ``Status`` objects with ``reason`` and ``code`` for
errors), over HTTP or HTTPS on a free loopback port. State is a plain in-memory
:class:`Cluster` that tests seed (``add_node``, ``add_pod``, ``add_secret``,
``add_configmap``) and inspect afterwards (``requests``, ``deleted_pods``).

Served:
  GET  /version
  GET  /api/v1/nodes, /api/v1/nodes/{name}
  GET  /api/v1/events
  GET  /api/v1/namespaces/{ns}/secrets, POST the same, GET .../secrets/{name}
  GET  /api/v1/namespaces/{ns}/configmaps/{name}
  GET  /api/v1/pods, /api/v1/namespaces/{ns}/pods  (labelSelector, fieldSelector)
  GET  the same with watch=1 (resourceVersion, allowWatchBookmarks, timeoutSeconds)
  GET  /api/v1/namespaces/{ns}/pods/{name}, .../log
  DELETE /api/v1/namespaces/{ns}/pods/{name}

Pods have the API server's change semantics (docs: "Efficient detection of changes"): every
change bumps one cluster-wide resourceVersion and is kept in a history; a watch streams, as
chunked JSON lines, ``{"type": ADDED|MODIFIED|DELETED, "object": pod}`` for each change after
its ``resourceVersion`` (an object entering or leaving a field selector's set is ADDED or
DELETED for that watcher), ``BOOKMARK`` events carrying only a newer resourceVersion every
``bookmark_interval`` seconds when asked for, and ends after ``timeoutSeconds``. A
resourceVersion older than the history (after :meth:`Cluster.compact`) is answered, as
etcd-backed servers do, by a 200 whose one event is ``ERROR`` with a ``Status`` of code 410
(reason ``Expired``). :meth:`Cluster.drop_watches` cuts every open stream mid-chunk, like a
connection lost on the way.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

CREATED = "2024-05-01T12:00:00Z"
VERSION_INFO = {
    "major": "1",
    "minor": "29",
    "gitVersion": "v1.29.3",
    "gitCommit": "6813625b7cd706db5bc7388921be03071e1a492d",
    "gitTreeState": "clean",
    "buildDate": "2024-03-14T23:52:25Z",
    "goVersion": "go1.21.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": str(uuid.uuid4()),
        "resourceVersion": "1",
        "creationTimestamp": CREATED,
    }
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def status_object(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """The ``Status`` body the API server returns for an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


def _field(obj: Mapping[str, Any], path: str) -> str:
    """A field selector's value: ``spec.nodeName`` of the object, "" when unset."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def _fields_match(selector: str, obj: Mapping[str, Any]) -> bool:
    """Field selectors: ``a.b=v``, ``a.b==v``, ``a.b!=v``, comma-separated (all must hold)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            path, value = term.split("!=", 1)
            if _field(obj, path.strip()) == value.strip():
                return False
        else:
            path, value = term.replace("==", "=").split("=", 1)
            if _field(obj, path.strip()) != value.strip():
                return False
    return True


def gpu_container(name: str = "main", gpus: int = 1) -> dict[str, Any]:
    """A container asking for ``gpus`` of the device plugin's ``nvidia.com/gpu``."""
    count = str(gpus)
    return {
        "name": name,
        "image": "nvidia/cuda:12.2.0-base-ubuntu22.04",
        "resources": {"limits": {"nvidia.com/gpu": count}, "requests": {"nvidia.com/gpu": count}},
    }


def _container_status(name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "image": "docker.io/nvidia/cuda:12.2.0-base-ubuntu22.04",
        "imageID": "docker.io/nvidia/cuda@sha256:" + "3" * 64,
        "containerID": "containerd://" + uuid.uuid4().hex * 2,
        "ready": "running" in state,
        "started": "running" in state,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    }


def running_status(started_at: str, containers: tuple[str, ...] = ("main",)) -> dict[str, Any]:
    """The status the kubelet writes once the containers run (times RFC 3339, to the second)."""
    return {
        "phase": "Running",
        "startTime": started_at,
        "containerStatuses": [
            _container_status(name, {"running": {"startedAt": started_at}}) for name in containers
        ],
    }


def terminated_status(
    started_at: str,
    finished_at: str,
    phase: str = "Succeeded",
    containers: tuple[str, ...] = ("main",),
) -> dict[str, Any]:
    """The status after every container exited (Succeeded: exit 0, Failed: exit 1)."""
    code = 0 if phase == "Succeeded" else 1
    state = {
        "terminated": {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started_at,
            "finishedAt": finished_at,
        }
    }
    return {
        "phase": phase,
        "startTime": started_at,
        "containerStatuses": [_container_status(name, copy.deepcopy(state)) for name in containers],
    }


def _selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a`` (exists)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class Cluster:
    """The fake API server's state; tests seed it and read it back."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    deleted_pods: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _rv: Iterator[int] = field(default_factory=lambda: itertools.count(2))
    # Pod changes: (resourceVersion, type, object after, object before); oldest first.
    history: list[tuple[int, str, dict[str, Any], dict[str, Any] | None]] = field(
        default_factory=list
    )
    # Versions at or below this are gone from the history (a watch from them gets 410).
    compacted: int = 0
    resource_version: int = 1
    bookmark_interval: float = 1.0
    # The resourceVersion each watch asked for, in order ("" for none).
    watches: list[str] = field(default_factory=list)
    _open_watches: set[socket.socket] = field(default_factory=set)
    _changed: threading.Condition | None = None

    @property
    def changed(self) -> threading.Condition:
        """Signalled (under ``lock``) whenever a pod changes."""
        if self._changed is None:
            self._changed = threading.Condition(self.lock)
        return self._changed

    def _bump(self) -> int:
        """The next resourceVersion (call with ``lock`` held)."""
        self.resource_version = max(self.resource_version, next(self._rv))
        return self.resource_version

    def _record(self, kind: str, pod: dict[str, Any], before: dict[str, Any] | None) -> None:
        """Give ``pod`` a new resourceVersion and keep the change (``lock`` held)."""
        version = self._bump()
        pod["metadata"]["resourceVersion"] = str(version)
        self.history.append((version, kind, copy.deepcopy(pod), before))
        self.changed.notify_all()

    def update_pod(
        self, namespace: str, name: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Apply ``change`` to the stored pod (as the kubelet or scheduler would): MODIFIED."""
        with self.lock:
            pod = self.pods[(namespace, name)]
            before = copy.deepcopy(pod)
            change(pod)
            self._record("MODIFIED", pod, before)
            return copy.deepcopy(pod)

    def set_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """What the kubelet's status manager does: replace ``status``."""

        def write(pod: dict[str, Any]) -> None:
            pod["status"] = copy.deepcopy(status)

        return self.update_pod(namespace, name, write)

    def remove_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """The pod object is removed (deletion finished): DELETED with its last state."""
        with self.lock:
            pod = self.pods.pop((namespace, name))
            self.logs.pop((namespace, name), None)
            self.deleted_pods.append((namespace, name))
            self._record("DELETED", pod, copy.deepcopy(pod))
            return copy.deepcopy(pod)

    def compact(self) -> int:
        """Forget the pod history (etcd compaction): older watches must list again."""
        with self.lock:
            self.compacted = self.resource_version
            self.history.clear()
            return self.compacted

    def open_watches(self) -> int:
        """How many watch streams are open now."""
        with self.lock:
            return len(self._open_watches)

    def drop_watches(self) -> int:
        """Cut every open watch stream without ending it properly; how many were open."""
        with self.lock:
            open_now = list(self._open_watches)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(open_now)

    def add_node(
        self,
        name: str,
        allocatable: Mapping[str, str] | None = None,
        conditions: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Node as kubelet registers it; ``conditions`` maps type -> "True"/"False"."""
        alloc = {"cpu": "4", "memory": "15358528Ki", "pods": "110", **(allocatable or {})}
        conds = conditions if conditions is not None else {"Ready": "True"}
        node = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": _meta(name, labels={"kubernetes.io/hostname": name, **(labels or {})}),
            "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {
                "capacity": dict(alloc),
                "allocatable": dict(alloc),
                "conditions": [
                    {
                        "type": ctype,
                        "status": value,
                        "reason": "KubeletReady" if ctype == "Ready" else f"Kubelet{ctype}",
                        "message": f"condition {ctype} is {value}",
                        "lastHeartbeatTime": CREATED,
                        "lastTransitionTime": CREATED,
                    }
                    for ctype, value in conds.items()
                ],
                "addresses": [
                    {"type": "InternalIP", "address": "10.100.1.2"},
                    {"type": "Hostname", "address": name},
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": str(uuid.uuid4()),
                    "containerRuntimeVersion": "containerd://1.7.12",
                    "kernelVersion": "6.5.0-1020-gcp",
                    "kubeProxyVersion": "v1.29.3",
                    "kubeletVersion": "v1.29.3",
                    "machineID": uuid.uuid4().hex,
                    "operatingSystem": "linux",
                    "osImage": "Ubuntu 22.04.4 LTS",
                    "systemUUID": str(uuid.uuid4()),
                },
            },
        }
        with self.lock:
            self.nodes[name] = node
        return node

    def add_pod(
        self,
        name: str,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        phase: str = "Running",
        node_name: str | None = None,
        log: str = "",
        *,
        gpus: int = 0,
        status: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A pod (ADDED); ``gpus`` > 0 makes its container ask for that many GPUs."""
        container = (
            gpu_container(gpus=gpus)
            if gpus
            else {"name": "main", "image": "nvidia/cuda:12.2.0-base-ubuntu22.04"}
        )
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": _meta(name, namespace, labels=dict(labels or {})),
            "spec": {"containers": [container], "nodeName": node_name},
            "status": dict(status) if status is not None else {"phase": phase},
        }
        with self.lock:
            self.pods[(namespace, name)] = pod
            self.logs[(namespace, name)] = log
            self._record("ADDED", pod, None)
        return copy.deepcopy(pod)

    def add_event(self, namespace: str, involved: str, reason: str, message: str) -> None:
        """A core/v1 Event about ``involved`` ("Pod/name"), as kubelet or the scheduler posts."""
        kind, name = involved.split("/", 1)
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": _meta(f"{name}.{uuid.uuid4().hex[:16]}", namespace),
            "involvedObject": {"kind": kind, "namespace": namespace, "name": name},
            "reason": reason,
            "message": message,
            "type": "Warning",
            "count": 1,
        }
        with self.lock:
            self.events.append(event)

    def add_secret(
        self, name: str, namespace: str, data: Mapping[str, str], type_: str = "Opaque"
    ) -> dict[str, Any]:
        """``data`` values must already be base64, as in the API."""
        secret = {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": _meta(name, namespace),
            "type": type_,
            "data": dict(data),
        }
        with self.lock:
            self.secrets[(namespace, name)] = secret
        return secret

    def add_configmap(self, name: str, namespace: str, data: Mapping[str, str]) -> dict[str, Any]:
        cm = {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": _meta(name, namespace),
            "data": dict(data),
        }
        with self.lock:
            self.configmaps[(namespace, name)] = cm
        return cm

    def _list(self, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "kind": kind,
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self._bump())},
            "items": items,
        }

    def _pod_events(
        self, after: int, selected: Callable[[Mapping[str, Any]], bool]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Watch events after ``after`` as one watcher sees them (``lock`` held).

        A change that moves an object into the watcher's selection is ADDED for it, one that
        moves it out is DELETED, as the API server's watch cache translates them.
        """
        out = []
        for version, kind, pod, before in self.history:
            if version <= after:
                continue
            now_in = selected(pod)
            was_in = before is not None and selected(before)
            if kind == "DELETED":
                seen = "DELETED" if was_in else None
            elif kind == "ADDED" or not was_in:
                seen = "ADDED" if now_in else None
            else:
                seen = "MODIFIED" if now_in else "DELETED"
            if seen is not None:
                out.append((version, {"type": seen, "object": copy.deepcopy(pod)}))
        return out


def _not_found(resource: str, name: str) -> tuple[int, dict[str, Any]]:
    return 404, status_object(
        404, "NotFound", f'{resource} "{name}" not found', name=name, kind=resource
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is the assertions, not an access log."""

    def _send(self, code: int, body: dict[str, Any] | str) -> None:
        if isinstance(body, str):
            payload, ctype = body.encode(), "text/plain"
        else:
            payload, ctype = json.dumps(body).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str) -> tuple[int, dict[str, Any] | str]:
        cluster = self.server.cluster
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        with cluster.lock:
            cluster.requests.append((method, self.path))
        if method == "GET" and parts == ["version"]:
            return 200, VERSION_INFO
        if parts[:2] != ["api", "v1"]:
            return _not_found("path", url.path)
        rest = parts[2:]
        with cluster.lock:
            if rest == ["pods"] and method == "GET":
                return self._pods(cluster, method, None, [], query)
            if rest == ["events"] and method == "GET":
                return 200, cluster._list("EventList", list(cluster.events))
            if rest == ["nodes"] and method == "GET":
                return 200, cluster._list("NodeList", list(cluster.nodes.values()))
            if len(rest) == 2 and rest[0] == "nodes" and method == "GET":
                node = cluster.nodes.get(rest[1])
                return (200, node) if node else _not_found("nodes", rest[1])
            if len(rest) < 3 or rest[0] != "namespaces":
                return _not_found("path", url.path)
            ns, resource, tail = rest[1], rest[2], rest[3:]
            if resource == "secrets":
                return self._secrets(cluster, method, ns, tail)
            if resource == "configmaps" and method == "GET" and len(tail) == 1:
                cm = cluster.configmaps.get((ns, tail[0]))
                return (200, cm) if cm else _not_found("configmaps", tail[0])
            if resource == "pods":
                return self._pods(cluster, method, ns, tail, query)
        return _not_found(resource, "/".join(tail))

    def _secrets(
        self, cluster: Cluster, method: str, ns: str, tail: list[str]
    ) -> tuple[int, dict[str, Any] | str]:
        if method == "GET" and not tail:
            items = [s for (sns, _), s in cluster.secrets.items() if sns == ns]
            return 200, cluster._list("SecretList", items)
        if method == "GET" and len(tail) == 1:
            secret = cluster.secrets.get((ns, tail[0]))
            return (200, secret) if secret else _not_found("secrets", tail[0])
        if method == "POST" and not tail:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            name = body.get("metadata", {}).get("name", "")
            if not name:
                return 422, status_object(422, "Invalid", "Secret: metadata.name: Required")
            if (ns, name) in cluster.secrets:
                return 409, status_object(
                    409, "AlreadyExists", f'secrets "{name}" already exists', name=name
                )
            meta = {**_meta(name, ns), **body.get("metadata", {}), "namespace": ns}
            secret = {**body, "kind": "Secret", "apiVersion": "v1", "metadata": meta}
            secret.setdefault("type", "Opaque")
            cluster.secrets[(ns, name)] = secret
            return 201, secret
        return _not_found("secrets", "/".join(tail))

    def _pods(
        self,
        cluster: Cluster,
        method: str,
        ns: str | None,
        tail: list[str],
        query: dict[str, list[str]],
    ) -> tuple[int, dict[str, Any] | str]:
        if method == "GET" and not tail:
            selected = _pod_selection(ns, query)
            items = [copy.deepcopy(p) for p in cluster.pods.values() if selected(p)]
            return 200, cluster._list("PodList", items)
        assert ns is not None
        pod = cluster.pods.get((ns, tail[0])) if tail else None
        if pod is None:
            return _not_found("pods", tail[0] if tail else "")
        if method == "GET" and tail[1:] == ["log"]:
            return 200, cluster.logs.get((ns, tail[0]), "")
        if method == "GET" and len(tail) == 1:
            return 200, pod
        if method == "DELETE" and len(tail) == 1:
            del cluster.pods[(ns, tail[0])]
            cluster.deleted_pods.append((ns, tail[0]))
            cluster._record("DELETED", pod, copy.deepcopy(pod))
            return 200, pod
        return _not_found("pods", "/".join(tail))

    def _is_watch(self) -> tuple[str | None, dict[str, list[str]]] | None:
        """(namespace or None, query) when this GET is a watch of pods."""
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if query.get("watch", [""])[0] not in ("1", "true"):
            return None
        parts = [p for p in url.path.split("/") if p]
        if parts == ["api", "v1", "pods"]:
            return None, query
        if len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            return parts[3], query
        return None

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, ns: str | None, query: dict[str, list[str]]) -> None:
        cluster = self.server.cluster
        selected = _pod_selection(ns, query)
        since_text = query.get("resourceVersion", [""])[0]
        bookmarks = query.get("allowWatchBookmarks", [""])[0] in ("1", "true")
        limit = float(query.get("timeoutSeconds", ["1800"])[0])
        with cluster.lock:
            cluster.requests.append(("GET", self.path))
            cluster.watches.append(since_text)
            cluster._open_watches.add(self.connection)
            current = cluster.resource_version
            if since_text in ("", "0"):  # start at the current state: every object ADDED
                pending = [
                    (current, {"type": "ADDED", "object": copy.deepcopy(p)})
                    for p in cluster.pods.values()
                    if selected(p)
                ]
                since = current
            else:
                since = int(since_text)
                pending = []
            gone = since < cluster.compacted
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if gone:
                message = f"too old resource version: {since} ({cluster.compacted + 1})"
                self._chunk(
                    json.dumps(
                        {"type": "ERROR", "object": status_object(410, "Expired", message)}
                    ).encode()
                    + b"\n"
                )
            else:
                self._stream(cluster, selected, since, pending, bookmarks, limit)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        finally:
            with cluster.lock:
                cluster._open_watches.discard(self.connection)

    def _stream(
        self,
        cluster: Cluster,
        selected: Callable[[Mapping[str, Any]], bool],
        since: int,
        pending: list[tuple[int, dict[str, Any]]],
        bookmarks: bool,
        limit: float,
    ) -> None:
        """Events after ``since`` as they happen, bookmarks between them, until ``limit``."""
        end = time.monotonic() + limit
        next_bookmark = time.monotonic() + cluster.bookmark_interval
        while time.monotonic() < end:
            for version, event in pending:
                self._chunk(json.dumps(event).encode() + b"\n")
                since = max(since, version)
            if bookmarks and time.monotonic() >= next_bookmark:
                with cluster.lock:  # nothing pending for this watcher: all up to now is sent
                    if not cluster._pod_events(since, selected):
                        since = max(since, cluster.resource_version)
                bookmark = {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": "Pod",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(since)},
                    },
                }
                self._chunk(json.dumps(bookmark).encode() + b"\n")
                next_bookmark = time.monotonic() + cluster.bookmark_interval
            with cluster.lock:
                pending = cluster._pod_events(since, selected)
                if not pending:
                    cluster.changed.wait(0.1)
                    pending = cluster._pod_events(since, selected)

    def do_GET(self) -> None:
        watch = self._is_watch()
        if watch is not None:
            self._watch(*watch)
            return
        self._send(*self._route("GET"))

    def do_POST(self) -> None:
        self._send(*self._route("POST"))

    def do_DELETE(self) -> None:
        self._send(*self._route("DELETE"))


def _pod_selection(
    ns: str | None, query: dict[str, list[str]]
) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a pod is in a request's set: its namespace, label and field selectors."""
    labels = query.get("labelSelector", [""])[0]
    fields = query.get("fieldSelector", [""])[0]

    def selected(pod: Mapping[str, Any]) -> bool:
        meta = pod.get("metadata", {})
        return (
            (ns is None or meta.get("namespace") == ns)
            and _selector_matches(labels, meta.get("labels", {}))
            and _fields_match(fields, pod)
        )

    return selected


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cluster: Cluster


@dataclass
class FakeKube:
    """A running fake API server: its URL and the cluster state behind it."""

    url: str
    cluster: Cluster
    ca_pem: str | None = None

    def write_kubeconfig(
        self,
        path: Path,
        *,
        user: Mapping[str, str] | None = None,
        context: str = "kubernetes-admin@kubernetes",
    ) -> Path:
        """A kubeconfig (the kubeadm layout) pointing at this server; ``user`` is the
        users[0].user mapping (token, client-certificate paths, ...)."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_pem is not None:
            import base64

            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem.encode()).decode()
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubernetes", "cluster": cluster}],
            "contexts": [
                {"name": context, "context": {"cluster": "kubernetes", "user": "default-auth"}}
            ],
            "current-context": context,
            "preferences": {},
            "users": [{"name": "default-auth", "user": dict(user or {"token": "fake-token"})}],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


@contextlib.contextmanager
def start_fake_kube(
    cluster: Cluster | None = None, tls: tuple[Path, Path, str] | None = None
) -> Iterator[FakeKube]:
    """Serve ``cluster`` on 127.0.0.1:<free port>; ``tls`` = (cert file, key file, CA PEM)."""
    state = cluster or Cluster()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.cluster = state
    scheme = "http"
    ca_pem = None
    if tls is not None:
        cert, key, ca_pem = tls
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube", daemon=True
    )
    thread.start()
    try:
        yield FakeKube(f"{scheme}://127.0.0.1:{server.server_address[1]}", state, ca_pem)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
