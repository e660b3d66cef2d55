"""Security regression tests: each one failed before its fix.

The hub tests here run against the real hub (a subprocess over HTTP or TLS, real SIWE logins,
real certificates), with the fixtures of ``tests/hub/conftest.py``.
"""

from __future__ import annotations

from tests.hub.conftest import client, stub_hub, tls_hub, wallet

__all__ = ["client", "stub_hub", "tls_hub", "wallet"]
