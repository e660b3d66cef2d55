"""kubeadm join parameters: from configuration (stub) or minted in a real cluster.

In stub mode the hub hands out the API endpoint, token and CA pin it was started with. With
``--kubeconfig`` it does what ``kubeadm token create`` does: it creates a bootstrap token
Secret (``bootstrap-token-<id>``, type ``bootstrap.kubernetes.io/token``, in ``kube-system``)
with an expiration, the authentication and signing usages and kubeadm's node group, and pins
the cluster CA as ``sha256:`` of its SubjectPublicKeyInfo, so ``kubeadm join`` can verify the
control plane it talks to.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509

from hub_stub.ca import spki_sha256

TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CA_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
NODE_GROUP = "system:bootstrappers:kubeadm:default-node-token"
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


class JoinUnavailable(Exception):
    """The hub cannot produce join parameters (not configured, or the cluster refused)."""


@dataclass(frozen=True)
class JoinParams:
    """What ``kubeadm join`` needs: endpoint, bootstrap token and CA public key pins."""

    api_server: str
    token: str
    ca_cert_hashes: list[str]


class JoinSource(Protocol):
    """Where join parameters come from."""

    def join_params(self, node_id: str) -> JoinParams:
        """Parameters for ``node_id`` (a description lands in the Secret when minted)."""
        ...


@dataclass(frozen=True)
class StaticJoin:
    """Stub mode: the same configured parameters for every node."""

    api_server: str
    token: str
    ca_cert_hashes: tuple[str, ...]

    def join_params(self, node_id: str) -> JoinParams:
        return JoinParams(self.api_server, self.token, list(self.ca_cert_hashes))


class NotConfigured:
    """No join configuration: say how to give one instead of inventing parameters."""

    def join_params(self, node_id: str) -> JoinParams:
        raise JoinUnavailable(
            "this hub has no Kubernetes join configuration: start worldland-hub with "
            "--kube-api-server/--kube-token/--kube-ca-hash or --kubeconfig"
        )


def new_bootstrap_token() -> tuple[str, str]:
    """A token id (6) and secret (16) from [a-z0-9], as kubeadm generates them."""
    token_id = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(6))
    secret = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(16))
    return token_id, secret


class KubeconfigJoin:
    """Mint a real bootstrap token in the cluster a kubeconfig points at."""

    def __init__(self, kubeconfig: Path, ttl: dt.timedelta) -> None:
        from kubernetes import client
        from kubernetes import config as kube_config

        self._ttl = ttl
        loader: Any = kube_config
        self._api_client: Any = loader.new_client_from_config(config_file=str(kubeconfig))
        self._core: Any = client.CoreV1Api(self._api_client)
        self._client_module: Any = client
        configuration = self._api_client.configuration
        url = urlsplit(configuration.host)
        if not url.hostname:
            raise JoinUnavailable(
                f"{kubeconfig}: cluster server {configuration.host!r} has no host"
            )
        port = url.port or 443
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
        self.api_server = f"{host}:{port}"
        ca_file = configuration.ssl_ca_cert
        if not ca_file:
            raise JoinUnavailable(f"{kubeconfig}: the cluster has no certificate-authority data")
        self.ca_cert_hash = spki_sha256(x509.load_pem_x509_certificate(Path(ca_file).read_bytes()))

    def join_params(self, node_id: str) -> JoinParams:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        client = self._client_module
        token_id, secret = new_bootstrap_token()
        expiration = dt.datetime.now(dt.UTC).replace(microsecond=0) + self._ttl
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=f"bootstrap-token-{token_id}", namespace="kube-system"
            ),
            type="bootstrap.kubernetes.io/token",
            data={
                key: base64.b64encode(value.encode()).decode()
                for key, value in {
                    "description": f"worldland node {node_id}",
                    "token-id": token_id,
                    "token-secret": secret,
                    "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "usage-bootstrap-authentication": "true",
                    "usage-bootstrap-signing": "true",
                    "auth-extra-groups": NODE_GROUP,
                }.items()
            },
        )
        try:
            self._core.create_namespaced_secret("kube-system", body)
        except ApiException as exc:
            raise JoinUnavailable(
                f"the cluster refused the bootstrap token ({exc.status} {exc.reason})"
            ) from None
        except (OSError, HTTPError) as exc:
            raise JoinUnavailable(
                f"cannot reach the Kubernetes API at {self.api_server}: {type(exc).__name__}"
            ) from None
        return JoinParams(self.api_server, f"{token_id}.{secret}", [self.ca_cert_hash])
