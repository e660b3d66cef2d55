"""``worldland-hub chain deploy``: the payment contract (and a test token) on a dev chain.

Signed by the operator's key file (0600), which becomes the contract's operator: it sets
the rates per GPU type (``--rate``, as many as needed) and can rotate the settler later. The
settler is the hub's hot wallet (``--settler-key-file``, the file the hub will use, or just
its ``--settler`` address). Without ``--token`` a TestToken is deployed too, and
``--mint`` gives renters some. Prints what it made as JSON (and writes it to ``--output``):
the addresses the hub's ``--payments-contract`` and the renters' wallets need.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import is_address, to_checksum_address

from hub_stub.chain import Artifact, ChainError, Rpc, deploy, gpu_type
from hub_stub.signer import KeyFileError, KeyFileSigner, read_key_file

DEFAULT_DELAY = 3600
TEST_TOKEN = ("Worldland Test Token", "WLT", 18)


def _pair(kind: str) -> Any:
    """``NAME=WEI`` (rates) or ``ADDRESS=WEI`` (mints) as a (str, int) pair."""

    def parse(text: str) -> tuple[str, int]:
        name, sep, amount = text.rpartition("=")
        if not sep or not name or not amount.isdigit():
            raise argparse.ArgumentTypeError(f"{text!r}: use {kind}=WEI")
        if kind == "ADDRESS":
            if not is_address(name):
                raise argparse.ArgumentTypeError(f"{name!r} is not an address")
            name = to_checksum_address(name)
        return name, int(amount)

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="worldland-hub chain deploy",
        description="Deploy WorldlandPayments (and, without --token, a TestToken) and set "
        "its rates. For dev chains and first deployments; see docs/settlement.md.",
        epilog="example: worldland-hub chain deploy --chain-rpc http://127.0.0.1:8545 "
        "--operator-key-file operator.key --settler-key-file settler.key "
        '--rate "NVIDIA H100 80GB HBM3=1000000000000"',
    )
    p.add_argument("--chain-rpc", required=True, metavar="URL", help="the chain's JSON-RPC URL")
    p.add_argument(
        "--operator-key-file", type=Path, required=True, help="the deployer, operator (0600)"
    )
    settler = p.add_mutually_exclusive_group(required=True)
    settler.add_argument("--settler-key-file", type=Path, help="the hub's hot wallet (0600)")
    settler.add_argument("--settler", metavar="ADDRESS", help="the hub's hot wallet address")
    p.add_argument(
        "--token", metavar="ADDRESS", help="the ERC-20 to pay in (default: a new TestToken)"
    )
    p.add_argument(
        "--withdrawal-delay",
        type=int,
        default=DEFAULT_DELAY,
        metavar="SECONDS",
        help=f"renters' notice before withdrawing (default {DEFAULT_DELAY})",
    )
    p.add_argument(
        "--rate",
        type=_pair("NAME"),
        action="append",
        default=[],
        metavar="NAME=WEI",
        help="wei per second for one GPU of this NVML model name, repeatable",
    )
    p.add_argument(
        "--mint",
        type=_pair("ADDRESS"),
        action="append",
        default=[],
        metavar="ADDRESS=WEI",
        help="test tokens for a renter, repeatable (only with the new TestToken)",
    )
    p.add_argument("--output", type=Path, help="also write the JSON here")
    return p


def main(argv: Sequence[str]) -> None:
    args = parser().parse_args(argv)
    if args.token and args.mint:
        raise SystemExit("worldland-hub: --mint needs the new TestToken (leave out --token)")
    try:
        operator = Account.from_key(read_key_file(args.operator_key_file))
        settler = (
            KeyFileSigner.from_file(args.settler_key_file).address
            if args.settler_key_file
            else args.settler
        )
    except KeyFileError as exc:
        raise SystemExit(f"worldland-hub: {exc}") from None
    if not is_address(settler):
        raise SystemExit(f"worldland-hub: --settler {settler!r} is not an address")
    with Rpc(args.chain_rpc) as rpc:
        try:
            made = _deploy(rpc, operator, to_checksum_address(settler), args)
        except ChainError as exc:
            raise SystemExit(f"worldland-hub: deploy failed: {exc}") from None
    text = json.dumps(made, indent=2) + "\n"
    sys.stdout.write(text)
    if args.output is not None:
        args.output.write_text(text)


def _deploy(rpc: Rpc, operator: Any, settler: str, args: argparse.Namespace) -> dict[str, Any]:
    token_address = args.token
    if token_address is None:
        token = deploy(rpc, Artifact.bundled("TestToken"), operator, *TEST_TOKEN)
        token_address = token.address
        for address, amount in args.mint:
            token.transact(operator, "mint", address, amount)
    payments = deploy(
        rpc,
        Artifact.bundled("WorldlandPayments"),
        operator,
        to_checksum_address(token_address),
        settler,
        args.withdrawal_delay,
    )
    for name, wei in args.rate:
        payments.transact(operator, "setRate", gpu_type(name), wei)
    return {
        "chain_id": rpc.chain_id,
        "payments_contract": payments.address,
        "token": to_checksum_address(token_address),
        "operator": operator.address,
        "settler": settler,
        "withdrawal_delay": args.withdrawal_delay,
        "rates": {name: str(wei) for name, wei in args.rate},
        "minted": {address: str(amount) for address, amount in args.mint},
    }
