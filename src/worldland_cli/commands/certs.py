"""`worldland certs status`, `certs bootstrap` and `certs renew`: the node's mTLS certificate.

Parsing and rendering only: `bootstrap` and `renew` run
:func:`worldland_cli.auth.provider.ensure_node_certificate`, which calls the same
``ensure_certificate`` the daemon runs, so what a person sees here is what happens unattended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from worldland_cli.commands.options import CertDir, HubCa, HubUrl, JsonFlag, KeyFile, SiweDomain
from worldland_cli.errors import ExitCode
from worldland_cli.output import Result

if TYPE_CHECKING:
    from worldland_cli.auth.certs import CertStatus
    from worldland_cli.auth.relogin import SignIn

app = typer.Typer(
    help="Node certificate: status, bootstrap, renew.\n\n"
    "\b\nExamples:\n"
    "  worldland certs status\n"
    "  worldland certs renew                            # before a planned hub outage",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _status_lines(st: CertStatus) -> list[str]:
    from worldland_cli.times import format_time

    if not st.present:
        return [f"no certificate in {st.cert_dir}: run `worldland register`"]
    match = {True: "yes", False: "NO (node.key does not match node.crt)", None: "no node.key"}
    lines = [
        f"subject:     {st.subject}",
        f"serial:      {st.serial}",
        f"valid until: {format_time(st.not_after) if st.not_after else '?'}"
        + (" (EXPIRED)" if st.expired else ""),
        f"renew after: {format_time(st.renew_after) if st.renew_after else '?'}"
        + (" (due now)" if st.needs_renewal and not st.expired else ""),
        f"key matches: {match[st.key_matches]}",
        f"ca.crt:      {'present' if st.ca_present else 'missing'}"
        + (" (did NOT sign node.crt)" if st.issued_by_ca is False else ""),
    ]
    return lines


@app.command("status")
def status(
    cert_dir: CertDir = None,
    json_output: JsonFlag = False,
) -> Result:
    """Subject, expiry, renewal time and whether node.key matches node.crt.

    \b
    Examples:
      worldland certs status
      worldland certs status --cert-dir /etc/worldland/certs --json

    Exit status: 0 usable, 1 missing, expired, mismatched or not signed by ca.crt.
    """
    from worldland_cli import config
    from worldland_cli.auth.certs import cert_status

    st = cert_status(config.load().cert_dir(cert_dir))
    return Result(
        {"usable": st.usable, **st.to_json()},
        _status_lines(st),
        exit_code=ExitCode.OK if st.usable else ExitCode.FAILED,
    )


def _ensure(sign_in: SignIn, cert_dir: str | None, *, force: bool) -> Result:
    from worldland_cli import config
    from worldland_cli.auth.provider import ensure_node_certificate
    from worldland_cli.times import format_time

    node, outcome = ensure_node_certificate(config.load(), sign_in, force=force, cert_dir=cert_dir)
    st = outcome.status
    until = format_time(st.not_after) if st.not_after else "?"
    line = {
        "kept": f"Certificate for node {node.node_id} is valid until {until}; nothing to do",
        "issued": f"Bootstrap certificates saved to {st.cert_dir}",
        "renewed": f"Certificate renewed (valid until {until}) in {st.cert_dir}",
    }[outcome.action]
    return Result({"action": outcome.action, **st.to_json()}, [line])


@app.command("bootstrap")
def bootstrap(
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    cert_dir: CertDir = None,
    private_key_file: KeyFile = None,
    siwe_domain: SiweDomain = None,
    json_output: JsonFlag = False,
) -> Result:
    """Get a certificate for the registered node, or renew it when a third of its life is
    left; the private key is made here (0600) and never sent.

    \b
    Examples:
      worldland certs bootstrap
      worldland certs bootstrap --hub https://hub.example.org:8443 --hub-ca ./hub-ca.crt
    """
    from worldland_cli.auth.relogin import SignIn

    return _ensure(
        SignIn(hub=hub, hub_ca=hub_ca, private_key_file=private_key_file, siwe_domain=siwe_domain),
        cert_dir,
        force=False,
    )


@app.command("renew")
def renew(
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    cert_dir: CertDir = None,
    private_key_file: KeyFile = None,
    siwe_domain: SiweDomain = None,
    json_output: JsonFlag = False,
) -> Result:
    """Renew now, whatever the remaining lifetime (over mTLS when the hub speaks TLS).

    \b
    Examples:
      worldland certs renew
      worldland certs renew --json | jq -r .not_after
    """
    from worldland_cli.auth.relogin import SignIn

    return _ensure(
        SignIn(hub=hub, hub_ca=hub_ca, private_key_file=private_key_file, siwe_domain=siwe_domain),
        cert_dir,
        force=True,
    )
