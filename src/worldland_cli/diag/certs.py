"""`diag certs`: is the node's mTLS identity usable: chained to the hub CA, in date, matching key.

The hub refuses a node whose certificate is expired, not yet valid (clock skew), signed by
another hub's CA (a re-installed hub) or paired with the wrong key (a half-finished renewal);
each of these has its own check so support sees which one.  The private key is only loaded
to compare its public half; nothing about it but "matches" or "does not match" is reported.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from worldland_cli.auth.certs import renew_after
from worldland_cli.diag.base import DiagReport, Finding, fail, ok, skip, warn
from worldland_cli.host import Host
from worldland_cli.requirements.daemon import DAEMON_UNIT

REJOIN = "worldland certs bootstrap   # a new node certificate from the hub, as the wallet"


def _load_cert(host: Host, path: str) -> Any:
    from cryptography import x509

    data = host.read_bytes(path)
    if data is None:
        return None
    return x509.load_pem_x509_certificate(data)


def _describe(cert: Any) -> dict[str, Any]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in san]
    except x509.ExtensionNotFound:
        names = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sans": names,
    }


def _span(seconds: float) -> str:
    """A time span as a person reads it: days, else hours, else minutes."""
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit}s"
    return f"{max(int(seconds // 60), 0)} minutes"


def _validity(check_id: str, cert: Any, what: str, now: datetime, *, node: bool) -> Finding:
    """In date, and, for the node's certificate, renewed when it should have been.

    Renewal is judged against the certificate's own lifetime, as the daemon renews it
    (:func:`worldland_cli.auth.certs.renew_after`: a third of the lifetime left, the rule
    kubelet's certificate manager follows); a fixed number of days would call the hub's
    brand-new 7-day certificate overdue. The hub CA is the operator's to rotate.
    """
    info = _describe(cert)
    if now < cert.not_valid_before_utc:
        return fail(
            check_id,
            f"{what} is not valid until {info['not_before']}: this clock is behind",
            "sudo timedatectl set-ntp true",
            **info,
        )
    left = cert.not_valid_after_utc - now
    if left.total_seconds() <= 0:
        remedy = REJOIN if node else "# the hub's CA expired: its operator must issue a new one"
        return fail(check_id, f"{what} expired on {info['not_after']}", remedy, **info)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    due = renew_after(cert.not_valid_before_utc, cert.not_valid_after_utc)
    info["renew_after"] = due.isoformat()
    if now >= due:
        late = f"{what} expires in {_span(left.total_seconds())} ({info['not_after']}): "
        if node:
            return warn(
                check_id,
                late + f"past its renewal time ({due.isoformat()}, a third of its "
                f"{_span(lifetime.total_seconds())} lifetime left); the daemon renews it then",
                f"journalctl -u {DAEMON_UNIT} -n 50   # why the renewal failed",
                **info,
            )
        return warn(
            check_id,
            late + "less than a third of its lifetime left; the hub operator rotates it",
            None,
            **info,
        )
    sans = ", ".join(info["sans"]) or "no SANs"
    return ok(
        check_id,
        f"{what} valid until {info['not_after']} ({_span(left.total_seconds())} left, "
        f"renewed after {due.isoformat()}); {sans}",
        **info,
    )


def probe_certs(host: Host, cert_dir: str, now: datetime | None = None) -> DiagReport:
    """``cert_dir`` is the configured one (:meth:`worldland_cli.config.Config.cert_dir`)."""
    from cryptography.hazmat.primitives import serialization

    start = time.monotonic()
    report = DiagReport("certs")
    clock = now or datetime.now(UTC)
    base = cert_dir
    try:
        node = _load_cert(host, f"{base}/node.crt")
    except ValueError as e:
        node = None
        report.add(fail("certs.node", f"{base}/node.crt is not a PEM certificate: {e}", REJOIN))
    try:
        ca = _load_cert(host, f"{base}/ca.crt")
    except ValueError as e:
        ca = None
        report.add(fail("certs.ca", f"{base}/ca.crt is not a PEM certificate: {e}", REJOIN))

    if node is None and not report.checks:
        report.add(skip("certs.node", f"no {base}/node.crt: this node has not joined"))
    elif node is not None:
        report.add(_validity("certs.node", node, "node certificate", clock, node=True))
    if ca is not None:
        report.add(_validity("certs.ca", ca, "hub CA certificate", clock, node=False))
    elif not any(c.id == "certs.ca" for c in report.checks):
        report.add(skip("certs.ca", f"no {base}/ca.crt"))

    if node is not None and ca is not None:
        try:
            node.verify_directly_issued_by(ca)
            report.add(ok("certs.chain", "node certificate is signed by the hub CA"))
        except Exception as e:  # ValueError, TypeError or InvalidSignature (which has no text)
            report.add(
                fail(
                    "certs.chain",
                    f"node certificate was not issued by this hub CA (issuer "
                    f"{node.issuer.rfc4514_string()}, CA {ca.subject.rfc4514_string()}: "
                    f"{e or type(e).__name__})",
                    REJOIN,
                )
            )

    key_path = f"{base}/node.key"
    mode = host.mode(key_path)
    if mode is None:
        if node is not None:
            report.add(fail("certs.key", f"{key_path} is missing", REJOIN))
    else:
        if mode & 0o077:
            report.add(
                fail(
                    "certs.key-mode",
                    f"{key_path} is mode {mode:o}: readable by others",
                    f"chmod 600 {key_path}",
                )
            )
        else:
            report.add(ok("certs.key-mode", f"{key_path} is mode {mode:o}"))
        if node is not None:
            raw = host.read_bytes(key_path) or b""
            try:
                key = serialization.load_pem_private_key(raw, password=None)
            except (ValueError, TypeError):
                report.add(fail("certs.key", f"{key_path} is not a readable PEM key", REJOIN))
            else:
                fmt = serialization.PublicFormat.SubjectPublicKeyInfo
                enc = serialization.Encoding.DER
                same = key.public_key().public_bytes(enc, fmt) == node.public_key().public_bytes(
                    enc, fmt
                )
                if same:
                    report.add(ok("certs.key", "node.key matches node.crt"))
                else:
                    report.add(
                        fail(
                            "certs.key",
                            "node.key does not match node.crt (a renewal "
                            "wrote one but not the other)",
                            REJOIN,
                        )
                    )
            del raw
    report.duration_ms = int((time.monotonic() - start) * 1000)
    return report
