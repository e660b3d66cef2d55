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
  GET  /api/v1/namespaces/{ns}/pods?labelSelector=a=b,c!=d
  GET  /api/v1/namespaces/{ns}/pods/{name}/log
  DELETE /api/v1/namespaces/{ns}/pods/{name}
"""

from __future__ import annotations

import contextlib
import itertools
import json
import ssl
import threading
import uuid
from collections.abc import Iterator, Mapping
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
    ) -> dict[str, Any]:
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": _meta(name, namespace, labels=dict(labels or {})),
            "spec": {
                "containers": [{"name": "main", "image": "nvidia/cuda:12.2.0-base-ubuntu22.04"}],
                "nodeName": node_name,
            },
            "status": {"phase": phase},
        }
        with self.lock:
            self.pods[(namespace, name)] = pod
            self.logs[(namespace, name)] = log
        return pod

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
            "metadata": {"resourceVersion": str(next(self._rv))},
            "items": items,
        }


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
        ns: str,
        tail: list[str],
        query: dict[str, list[str]],
    ) -> tuple[int, dict[str, Any] | str]:
        if method == "GET" and not tail:
            selector = query.get("labelSelector", [""])[0]
            items = [
                p
                for (pns, _), p in cluster.pods.items()
                if pns == ns and _selector_matches(selector, p["metadata"].get("labels", {}))
            ]
            return 200, cluster._list("PodList", items)
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
            return 200, pod
        return _not_found("pods", "/".join(tail))

    def do_GET(self) -> None:
        self._send(*self._route("GET"))

    def do_POST(self) -> None:
        self._send(*self._route("POST"))

    def do_DELETE(self) -> None:
        self._send(*self._route("DELETE"))


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
