"""hub_stub.chain's own behaviour beyond the contract tests: errors a caller must tell apart."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from hub_stub.chain import Reverted, RpcError
from tests.support.anvil import RunningAnvil

from .conftest import INSUFFICIENT_DEPOSIT, PAYMENTS


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def test_revert_payloads_are_named() -> None:
    refused = selector("Refused(uint256,uint8)") + encode(
        ["uint256", "uint8"], [5, INSUFFICIENT_DEPOSIT]
    )
    message = selector("Error(string)") + encode(["string"], ["no"])
    panic = selector("Panic(uint256)") + encode(["uint256"], [0x11])
    decoded = [
        PAYMENTS.decode_revert(data) for data in (refused, message, panic, b"", b"\xde\xad\xbe\xef")
    ]
    assert [(r.error, r.values) for r in decoded] == [
        ("Refused", (5, INSUFFICIENT_DEPOSIT)),
        ("Error", ("no",)),
        ("Panic", (0x11,)),
        ("", ()),
        ("0xdeadbeef", ()),
    ]
    assert all(isinstance(r, Reverted) for r in decoded)


def test_node_errors_are_not_reverts(anvil: RunningAnvil) -> None:
    with pytest.raises(RpcError) as failed:
        anvil.rpc.request("eth_noSuchMethod")
    assert failed.value.code == -32601
    assert anvil.rpc.chain_id == 31337
