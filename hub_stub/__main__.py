"""``worldland-hub`` / ``python -m hub_stub``: parse flags, build the app, serve it with uvicorn.

TLS: ``--tls-cert/--tls-key`` serve a given certificate; ``--tls-self`` serves one the hub's own
CA issues for ``--host``. Either way the server asks for (but does not require) a client
certificate chained to the hub CA, so nodes authenticate by certificate and people by token on
the same port; :mod:`hub_stub.tls` hands the verified peer certificate to the app.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import ipaddress
import logging
import re
import socket
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hub_stub import __version__
from hub_stub.config import DEFAULT_VPN_POOL, HubConfig
from hub_stub.kube import CA_HASH_RE, TOKEN_RE, JoinUnavailable
from hub_stub.limits import AUTH_RATE, CLAIM_RATE, OPEN_RATE, Rate
from hub_stub.settlement.config import SettlementConfig
from worldland_cli.auth.origin import origin


def _duration(text: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number and s, m, h or d (e.g. 7d)")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return dt.timedelta(**{unit: int(match.group(1))})


def _pool(text: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    try:
        first, last = (ipaddress.IPv4Address(p.strip()) for p in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use FIRST-LAST, e.g. 10.100.1.2-10.100.1.254"
        ) from None
    if first > last or not all(a in ipaddress.IPv4Network("10.100.0.0/16") for a in (first, last)):
        raise argparse.ArgumentTypeError(f"{text!r}: need FIRST <= LAST inside 10.100.0.0/16")
    return first, last


def _public_url(text: str) -> str:
    try:
        origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _rate(text: str) -> Rate:
    try:
        return Rate.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number of at least 1")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of seconds above 0, e.g. 2.5")
    return value


def _wei(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number of wei")
    return int(text)


def _address(text: str) -> str:
    from eth_utils.address import is_address, to_checksum_address

    if not is_address(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (0x and 40 hex digits)")
    return str(to_checksum_address(text))


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not regex.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return text

    return check


EXAMPLES = """\
examples:
  worldland-hub --data-dir ./hub-data                      # http://127.0.0.1:8080
  worldland-hub --data-dir ./hub-data --port 8443 --tls-self   # TLS from the hub's own CA
  worldland-hub --data-dir /var/lib/worldland-hub --host 0.0.0.0 --port 8443 \\
      --tls-cert /etc/ssl/hub.pem --tls-key /etc/ssl/hub.key \\
      --public-url https://hub.example.org:8443
  worldland-hub --data-dir ./hub-data --port 0 --port-file ./hub.port   # any free port
  worldland-hub vpn server-config --data-dir ./hub-data --output wg0.conf
  worldland-hub chain deploy --help                        # the payment contract, dev chains
"""


def parser() -> argparse.ArgumentParser:
    """The command line (argparse: the hub must not depend on the CLI's Typer app)."""
    p = argparse.ArgumentParser(
        prog="worldland-hub",
        description="Run the Worldland hub stub.",
        # Raw: the examples keep their lines (argparse would run them into one paragraph).
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    p.add_argument("--version", action="version", version=f"worldland-hub {__version__}")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to bind, 0 = any (default 8080)")
    p.add_argument("--data-dir", type=Path, required=True, help="database, CA and secrets")
    p.add_argument(
        "--public-url",
        type=_public_url,
        help="the URL clients reach the hub at (behind a proxy, say); SIWE messages must name "
        "its host and port as their domain and it as their URI (default: what it serves, "
        "http(s)://HOST:PORT)",
    )
    p.add_argument(
        "--chain-id",
        type=int,
        action="append",
        dest="chain_ids",
        help="allowed SIWE chain id, repeatable (default 1)",
    )
    p.add_argument("--admin-token-file", type=Path, help="operator token (made 0600 if absent)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--tls-cert", type=Path, help="server certificate PEM (with --tls-key)")
    tls.add_argument("--tls-self", action="store_true", help="serve a cert from the hub CA")
    p.add_argument("--tls-key", type=Path, help="server private key PEM")
    p.add_argument(
        "--cert-lifetime",
        type=_duration,
        default=dt.timedelta(days=7),
        help="node client certificate lifetime (default 7d)",
    )
    p.add_argument(
        "--token-ttl",
        type=_duration,
        default=dt.timedelta(hours=24),
        help="bearer token lifetime (default 24h)",
    )
    p.add_argument(
        "--transfer-ttl",
        type=_duration,
        default=dt.timedelta(hours=24),
        help="transfer code lifetime (default 24h)",
    )
    p.add_argument(
        "--vpn-pool",
        type=_pool,
        default=DEFAULT_VPN_POOL,
        help="worker VPN addresses FIRST-LAST (default 10.100.1.2-10.100.1.254)",
    )
    p.add_argument(
        "--vpn-peers-per-wallet",
        type=_positive,
        default=16,
        help="nodes of one wallet that may hold a VPN address (default 16)",
    )
    p.add_argument("--vpn-server-public-key", help="WireGuard server public key (default: made)")
    p.add_argument("--vpn-endpoint", help="WireGuard endpoint host:port (default HOST:41820)")
    kube = p.add_argument_group("kubeadm join")
    kube.add_argument("--kube-api-server", help="stub: API endpoint host:port")
    kube.add_argument(
        "--kube-token",
        type=_pattern(TOKEN_RE, "a bootstrap token [a-z0-9]{6}.[a-z0-9]{16}"),
        help="stub: bootstrap token",
    )
    kube.add_argument(
        "--kube-ca-hash",
        type=_pattern(CA_HASH_RE, "sha256:<64 hex>"),
        action="append",
        help="stub: CA public key pin, repeatable",
    )
    kube.add_argument("--kubeconfig", type=Path, help="mint real bootstrap tokens in this cluster")
    kube.add_argument(
        "--bootstrap-token-ttl",
        type=_duration,
        default=dt.timedelta(hours=24),
        help="lifetime of minted bootstrap tokens (default 24h)",
    )
    limits = p.add_argument_group("rate limits per client address (N/s, N/m or N/h[:BURST])")
    limits.add_argument(
        "--open-rate", type=_rate, default=OPEN_RATE, help="/health, /v1/info (50/s:200)"
    )
    limits.add_argument(
        "--auth-rate", type=_rate, default=AUTH_RATE, help="nonces and logins (5/s:60)"
    )
    limits.add_argument(
        "--claim-rate",
        type=_rate,
        default=CLAIM_RATE,
        help="transfer-code claims, also per wallet (1/s:20)",
    )
    limits.add_argument(
        "--max-pending-nonces",
        type=int,
        default=100_000,
        help="unspent login nonces held at once, from all addresses (100000)",
    )
    settle = p.add_argument_group(
        "on-chain settlement (docs/settlement.md): the first three turn it on, together"
    )
    settle.add_argument("--chain-rpc", metavar="URL", help="the chain's JSON-RPC URL")
    settle.add_argument(
        "--payments-contract", type=_address, metavar="ADDRESS", help="the WorldlandPayments"
    )
    settle.add_argument(
        "--settler-key-file", type=Path, help="the hot wallet's private key (0600), the settler"
    )
    defaults = SettlementConfig("", "", Path())
    settle.add_argument(
        "--confirmations",
        type=_positive,
        default=defaults.confirmations,
        help=f"blocks that confirm a payment, its own included ({defaults.confirmations})",
    )
    settle.add_argument(
        "--settle-batch",
        type=_positive,
        default=defaults.batch_size,
        help=f"usage rows per transaction ({defaults.batch_size})",
    )
    settle.add_argument(
        "--settle-interval",
        type=_seconds,
        default=defaults.interval,
        metavar="SECONDS",
        help=f"pause when there is nothing to settle ({defaults.interval:g})",
    )
    settle.add_argument(
        "--replace-after",
        type=_seconds,
        default=defaults.replace_after,
        metavar="SECONDS",
        help="resend an unmined transaction at a higher gas price after this "
        f"({defaults.replace_after:g})",
    )
    settle.add_argument(
        "--max-gas-price", type=_wei, metavar="WEI", help="gas price ceiling (default: none)"
    )
    settle.add_argument(
        "--retry-after",
        type=_seconds,
        default=defaults.retry_after,
        metavar="SECONDS",
        help=f"check a failed row again after this ({defaults.retry_after:g})",
    )
    settle.add_argument(
        "--min-balance",
        type=_wei,
        default=defaults.min_balance,
        metavar="WEI",
        help=f"alert below this settler gas balance ({defaults.min_balance})",
    )
    settle.add_argument(
        "--watch-interval",
        type=_seconds,
        default=defaults.watch_interval,
        metavar="SECONDS",
        help=f"check the hot wallet this often ({defaults.watch_interval:g})",
    )
    settle.add_argument("--alert-webhook", metavar="URL", help="POST alerts here as JSON")
    settle.add_argument(
        "--chain-timeout",
        type=_seconds,
        default=defaults.rpc_timeout,
        metavar="SECONDS",
        help=f"one JSON-RPC call at most ({defaults.rpc_timeout:g})",
    )
    p.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    return p


def config_from_args(args: argparse.Namespace) -> HubConfig:
    """Flags to :class:`HubConfig`, with the cross-flag checks argparse cannot express."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise SystemExit("--tls-cert and --tls-key go together")
    stub = [args.kube_api_server, args.kube_token, args.kube_ca_hash]
    if any(stub) and not all(stub):
        raise SystemExit("stub join needs all of --kube-api-server, --kube-token, --kube-ca-hash")
    if any(stub) and args.kubeconfig:
        raise SystemExit("use either the stub join flags or --kubeconfig, not both")
    if args.public_url is None and args.host in ("0.0.0.0", "::", ""):
        raise SystemExit(
            f"--host {args.host} listens on every address, so the hub cannot tell which one "
            "clients use: pass --public-url (e.g. https://hub.example.com)"
        )
    return HubConfig(
        settlement=settlement_config(args),
        data_dir=args.data_dir.resolve(),
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        chain_ids=tuple(args.chain_ids or (1,)),
        admin_token_file=args.admin_token_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_self=args.tls_self,
        cert_lifetime=args.cert_lifetime,
        token_ttl=args.token_ttl,
        transfer_ttl=args.transfer_ttl,
        vpn_pool=args.vpn_pool,
        vpn_peers_per_wallet=args.vpn_peers_per_wallet,
        vpn_server_public_key=args.vpn_server_public_key,
        vpn_endpoint=args.vpn_endpoint,
        kube_api_server=args.kube_api_server,
        kube_token=args.kube_token,
        kube_ca_hashes=tuple(args.kube_ca_hash or ()),
        kubeconfig=args.kubeconfig,
        bootstrap_token_ttl=args.bootstrap_token_ttl,
        open_rate=args.open_rate,
        auth_rate=args.auth_rate,
        claim_rate=args.claim_rate,
        max_pending_nonces=args.max_pending_nonces,
    )


def settlement_config(args: argparse.Namespace) -> SettlementConfig | None:
    """The settlement flags, or None when settlement is off (none of the three given)."""
    given = [args.chain_rpc, args.payments_contract, args.settler_key_file]
    if not any(given):
        return None
    if not all(given):
        raise SystemExit(
            "settlement needs all of --chain-rpc, --payments-contract, --settler-key-file"
        )
    return SettlementConfig(
        rpc_url=args.chain_rpc,
        contract=args.payments_contract,
        key_file=args.settler_key_file.resolve(),
        confirmations=args.confirmations,
        batch_size=args.settle_batch,
        interval=args.settle_interval,
        replace_after=args.replace_after,
        max_gas_price=args.max_gas_price,
        retry_after=args.retry_after,
        min_balance=args.min_balance,
        watch_interval=args.watch_interval,
        alert_webhook=args.alert_webhook,
        rpc_timeout=args.chain_timeout,
    )


def log_settlement() -> None:
    """The worker's log lines (payments, stuck transactions, alerts) on stderr.

    Its own logger and handler: uvicorn configures only its own loggers, and the root
    logger is left to whoever embeds the hub.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("hub_stub.settlement")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def vpn_parser() -> argparse.ArgumentParser:
    """``worldland-hub vpn server-config``: the VPN server's wg-quick config."""
    p = argparse.ArgumentParser(
        prog="worldland-hub vpn server-config",
        description="Print (or write, 0600) the WireGuard server's wg-quick config with a "
        "[Peer] for every address the hub gave out. The private key is not in it: PostUp "
        "loads it from the key file.",
        epilog="example: worldland-hub vpn server-config --data-dir /var/lib/worldland-hub "
        "--output /etc/wireguard/wg0.conf && sudo wg syncconf wg0 <(wg-quick strip wg0)",
    )
    p.add_argument("--data-dir", type=Path, required=True, help="the hub's data directory")
    p.add_argument("--key-file", type=Path, help="server private key (default DATA/vpn/server.key)")
    p.add_argument("--listen-port", type=int, default=41820, help="UDP port (default 41820)")
    p.add_argument("--output", type=Path, help="write here (0600) instead of printing")
    return p


def vpn_server_config(argv: Sequence[str]) -> None:
    """Render the server config from the hub's database (the hub may be running)."""
    from hub_stub.ca import write_private
    from hub_stub.store import Store
    from hub_stub.vpn_config import render_server_config, server_key_path, server_peers

    args = vpn_parser().parse_args(argv)
    data_dir = args.data_dir.resolve()
    database = data_dir / "hub.sqlite3"
    if not database.exists():
        raise SystemExit(f"worldland-hub: no hub database in {data_dir} (start the hub once)")
    key_file = (args.key_file or server_key_path(data_dir)).resolve()
    if not key_file.exists():
        raise SystemExit(
            f"worldland-hub: no server key at {key_file}: the hub makes one on its first start "
            "unless --vpn-server-public-key names a key kept elsewhere (then pass --key-file)"
        )
    store = Store(database)
    try:
        text = render_server_config(server_peers(store), key_file, args.listen_port)
    finally:
        store.close()
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_private(args.output, text.encode())


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``worldland-hub``: flags first, so --help and usage errors stay instant."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:2] == ["vpn", "server-config"]:
        vpn_server_config(given[2:])
        return
    if given[:2] == ["chain", "deploy"]:
        from hub_stub.settlement import deploy

        deploy.main(given[2:])
        return
    args = parser().parse_args(given)
    config = config_from_args(args)
    if config.settlement is not None:
        log_settlement()

    import uvicorn

    from hub_stub.app import create_app
    from hub_stub.ca import write_public
    from hub_stub.tls import PeerCertH11Protocol

    # Binding here (not inside uvicorn) lets --port 0 work: the real port is known before
    # serving and goes to --port-file, so launchers never race for a "free" port, and the
    # public URL the hub derives (and SIWE messages must name) carries it.
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it Nagle + delayed ACK add 40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(2048)
    config = dataclasses.replace(config, port=sock.getsockname()[1])
    try:
        app = create_app(config)
    except (RuntimeError, JoinUnavailable) as exc:  # e.g. a newer database: one line, no trace
        raise SystemExit(f"worldland-hub: {exc}") from None
    hub = app.state.hub
    tls_cert, tls_key = config.tls_cert, config.tls_key
    if config.tls_self:
        tls_cert, tls_key = hub.ca.issue_server_cert(config.host, config.data_dir / "tls")
    tls_args: dict[str, Any] = {}
    if tls_cert is not None:
        tls_args = {
            "ssl_certfile": str(tls_cert),
            "ssl_keyfile": str(tls_key),
            "ssl_ca_certs": str(hub.ca.cert_path),
            "ssl_cert_reqs": ssl.CERT_OPTIONAL,
        }
    if args.port_file is not None:
        write_public(args.port_file, f"{sock.getsockname()[1]}\n".encode())
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=PeerCertH11Protocol,
            ws="none",
            lifespan="on",
            log_level=args.log_level,
            access_log=False,
            backlog=2048,
            **tls_args,
        )
    )
    # One line on stderr, so an operator (or journalctl) sees where it serves and which URL
    # logins must name; launchers that need the port read --port-file instead.
    print(f"worldland-hub {__version__} {listening(config)}", file=sys.stderr, flush=True)
    server.run(sockets=[sock])


def listening(config: HubConfig) -> str:
    """``listening on http://127.0.0.1:8080 (public URL ...)``: the bound address and the
    public URL SIWE messages must name (the same unless --public-url says otherwise)."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    return (
        f"listening on {'https' if config.tls else 'http'}://{host}:{config.port} "
        f"(public URL {config.origin.uri})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
