"""A small EVM client: JSON-RPC over httpx, ABI coding with eth-abi, signing with eth-account.

The hub's settlement worker and the contract tests drive one contract through a handful of
calls: deploy, read, send a signed transaction, wait for its receipt, read its events. web3.py
does all that and much more, but it is heavy and slow to import; this module is the part we use,
typed, and it turns a revert into the contract's own error (``Refused(id, reason)``) so a caller
can act on it. Transactions are legacy (EIP-155) with the node's gas price: every EVM chain
takes those.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

# Solidity's built-in revert payloads, next to the custom errors an ABI declares.
_ERROR_STRING = keccak(text="Error(string)")[:4]
_PANIC = keccak(text="Panic(uint256)")[:4]
# A transaction's gas is its estimate plus this share: state can move between the estimate and
# the block (another batch lands first), and unused gas is not charged.
GAS_MARGIN = 0.2


class ChainError(Exception):
    """A chain operation failed; subclasses say how."""


class RpcError(ChainError):
    """The node answered a JSON-RPC call with an error (other than a revert)."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (JSON-RPC error {code})")
        self.code = code


class Reverted(ChainError):
    """The EVM reverted a call or a gas estimate: ``error`` names the contract's error.

    ``error`` is a custom error's name, ``"Error"`` for ``require``/``revert("...")``,
    ``"Panic"`` for an assertion or arithmetic fault, or ``""`` for a revert without data.
    """

    def __init__(self, error: str, values: tuple[Any, ...], data: bytes) -> None:
        super().__init__(f"reverted: {error or 'without a reason'}{values if values else ''}")
        self.error = error
        self.values = values
        self.data = data


class TransactionFailed(ChainError):
    """A transaction was mined but failed (status 0): its gas is spent, its effects undone."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__(f"transaction {receipt.tx_hash} failed in block {receipt.block_number}")
        self.receipt = receipt


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical type string of an ABI parameter, structs spelled as tuples."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(component) for component in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _types(params: Sequence[Mapping[str, Any]]) -> list[str]:
    return [abi_type(param) for param in params]


def _signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(_types(entry['inputs']))})"


def _decode(params: Sequence[Mapping[str, Any]], data: bytes) -> tuple[Any, ...]:
    """ABI-decode ``data`` as ``params``, addresses checksummed (eth-abi gives lower case)."""
    values = decode(_types(params), data)
    return tuple(_python(param, value) for param, value in zip(params, values, strict=True))


def _python(param: Mapping[str, Any], value: Any) -> Any:
    kind = str(param["type"])
    if kind.endswith("]"):
        inner = {**param, "type": kind[: kind.rindex("[")]}
        return tuple(_python(inner, item) for item in value)
    if kind == "tuple":
        return tuple(
            _python(component, item)
            for component, item in zip(param["components"], value, strict=True)
        )
    if kind == "address":
        return to_checksum_address(value)
    return value


def gpu_type(name: str) -> bytes:
    """The contract's ``gpuType`` for a GPU model name as NVML reports it: keccak256 of UTF-8."""
    return keccak(text=name)


@dataclass(frozen=True)
class Artifact:
    """A compiled contract as ``tools/compile.js`` writes it: ABI and creation bytecode."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes

    @classmethod
    def load(cls, path: Path) -> Artifact:
        """Read a build file (``hub_stub/contracts/NAME.json``, or one of another build)."""
        return cls._parse(path.read_text(encoding="utf-8"))

    @classmethod
    def bundled(cls, name: str) -> Artifact:
        """A contract shipped with the hub (``WorldlandPayments``, ``TestToken``).

        Read as package data, so an installed hub (a wheel, no source tree) has them too.
        """
        text = (resources.files("hub_stub") / "contracts" / f"{name}.json").read_text("utf-8")
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Artifact:
        data = json.loads(text)
        return cls(data["contractName"], data["abi"], bytes.fromhex(data["bytecode"][2:]))

    def entry(self, kind: str, name: str) -> dict[str, Any]:
        """The one ABI entry of this kind and name (overloads are not supported)."""
        found = [e for e in self.abi if e["type"] == kind and e.get("name") == name]
        if len(found) != 1:
            raise KeyError(f"{self.name} has {len(found)} {kind}s named {name!r}")
        return found[0]

    def constructor_types(self) -> list[str]:
        """The constructor's parameter types (none when the ABI declares no constructor)."""
        for entry in self.abi:
            if entry["type"] == "constructor":
                return _types(entry["inputs"])
        return []

    def decode_revert(self, data: bytes) -> Reverted:
        """Name a revert payload after this contract's errors (or Solidity's built-in ones)."""
        if len(data) < 4:
            return Reverted("", (), data)
        head, body = data[:4], data[4:]
        if head == _ERROR_STRING:
            return Reverted("Error", tuple(decode(["string"], body)), data)
        if head == _PANIC:
            return Reverted("Panic", tuple(decode(["uint256"], body)), data)
        for entry in self.abi:
            if entry["type"] == "error" and keccak(text=_signature(entry))[:4] == head:
                return Reverted(entry["name"], _decode(entry["inputs"], body), data)
        return Reverted(f"0x{head.hex()}", (), data)


# Decodes reverts before the contract is known: only Solidity's built-in errors get names.
_NO_ABI = Artifact("unknown", [], b"")


@dataclass(frozen=True)
class Receipt:
    """The parts of a transaction receipt a caller acts on."""

    tx_hash: str
    status: int
    gas_used: int
    block_number: int
    contract_address: str | None
    logs: list[dict[str, Any]]


@dataclass(frozen=True)
class Event:
    """A decoded log: the event's name, its arguments by parameter name, and where it is."""

    name: str
    args: dict[str, Any]
    address: str
    tx_hash: str | None = None
    block_number: int | None = None


class Rpc:
    """A JSON-RPC client for one node URL (HTTP)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)
        self._chain_id: int | None = None

    def request(self, method: str, *params: Any) -> Any:
        """Call ``method`` and return its result.

        A revert raises :class:`Reverted` named only after Solidity's built-in errors; callers
        that know the contract re-decode ``data`` with its ABI (:meth:`Artifact.decode_revert`).
        """
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        reply = self._client.post(self.url, json=body)
        reply.raise_for_status()
        answer = reply.json()
        error = answer.get("error")
        if error is None:
            return answer["result"]
        data = error.get("data")
        # Geth and anvil both answer a revert with code 3 and the revert payload as data.
        if error.get("code") == 3 or (isinstance(data, str) and data.startswith("0x")):
            payload = bytes.fromhex(data[2:]) if isinstance(data, str) else b""
            raise _NO_ABI.decode_revert(payload)
        raise RpcError(method, int(error.get("code", 0)), str(error.get("message", "")))

    @property
    def chain_id(self) -> int:
        """The node's chain id (asked once): EIP-155 signatures bind to it."""
        if self._chain_id is None:
            self._chain_id = int(self.request("eth_chainId"), 16)
        return self._chain_id

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of ``tx_hash`` (status 0 included), or None while it is not mined."""
        raw = self.request("eth_getTransactionReceipt", tx_hash)
        if raw is None:
            return None
        address = raw.get("contractAddress")
        return Receipt(
            tx_hash=tx_hash,
            status=int(raw["status"], 16),
            gas_used=int(raw["gasUsed"], 16),
            block_number=int(raw["blockNumber"], 16),
            contract_address=to_checksum_address(address) if address else None,
            logs=list(raw["logs"]),
        )

    def wait_receipt(self, tx_hash: str, *, timeout: float = 120.0) -> Receipt:
        """Poll until ``tx_hash`` is mined; raise :class:`TransactionFailed` when it failed."""
        deadline = time.monotonic() + timeout
        while (receipt := self.receipt(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise ChainError(f"transaction {tx_hash} not mined within {timeout:.0f} s")
            time.sleep(0.2)
        if receipt.status != 1:
            raise TransactionFailed(receipt)
        return receipt

    def block_number(self) -> int:
        """The number of the latest block."""
        return int(self.request("eth_blockNumber"), 16)

    def nonce(self, address: str, block: str = "latest") -> int:
        """How many transactions ``address`` has sent as of ``block`` (its next nonce there)."""
        return int(self.request("eth_getTransactionCount", address, block), 16)

    def balance(self, address: str) -> int:
        """The native-coin balance of ``address`` in wei (what pays for gas)."""
        return int(self.request("eth_getBalance", address, "latest"), 16)

    def gas_price(self) -> int:
        """The node's suggested legacy gas price in wei."""
        return int(self.request("eth_gasPrice"), 16)

    def estimate_gas(
        self, sender: str, data: bytes, to: str | None = None, on_revert: Artifact | None = None
    ) -> int:
        """Gas for the call as the node runs it now; a revert raises :class:`Reverted`, named
        after ``on_revert``'s errors."""
        call: dict[str, Any] = {"from": sender, "data": f"0x{data.hex()}"}
        if to is not None:
            call["to"] = to
        try:
            return int(self.request("eth_estimateGas", call), 16)
        except Reverted as revert:
            raise (on_revert or _NO_ABI).decode_revert(revert.data) from None

    def send_raw(self, raw: bytes) -> str:
        """Broadcast a signed transaction; its hash (the node computes the same one)."""
        return str(self.request("eth_sendRawTransaction", f"0x{raw.hex()}"))

    def send(
        self,
        account: LocalAccount,
        data: bytes,
        *,
        to: str | None = None,
        gas: int | None = None,
        on_revert: Artifact | None = None,
        value: int = 0,
    ) -> Receipt:
        """Sign a transaction with ``account``, send it and wait for its receipt.

        Without ``gas`` the node estimates it first, so a transaction that would revert is
        refused here (:class:`Reverted`, named after ``on_revert``'s errors) without spending
        gas. With ``gas`` it is sent as is, and a revert is mined as :class:`TransactionFailed`.
        """
        if gas is None:
            estimate = self.estimate_gas(account.address, data, to, on_revert)
            gas = int(estimate * (1 + GAS_MARGIN))
        tx: dict[str, Any] = {
            "data": data,
            "gas": gas,
            "gasPrice": self.gas_price(),
            "nonce": self.nonce(account.address, "pending"),
            "chainId": self.chain_id,
            "value": value,
        }
        if to is not None:
            tx["to"] = to
        signed = account.sign_transaction(tx)
        return self.wait_receipt(self.send_raw(bytes(signed.raw_transaction)))


class Contract:
    """A deployed contract: encode calls from its ABI, read, transact, decode its events."""

    def __init__(self, rpc: Rpc, artifact: Artifact, address: str) -> None:
        self.rpc = rpc
        self.artifact = artifact
        self.address = to_checksum_address(address)

    def encode(self, function: str, *args: Any) -> bytes:
        """Calldata for ``function(*args)``: selector and ABI-encoded arguments."""
        entry = self.artifact.entry("function", function)
        selector = keccak(text=_signature(entry))[:4]
        return selector + encode(_types(entry["inputs"]), args)

    def call(self, function: str, *args: Any, sender: str | None = None) -> Any:
        """Run ``function`` read-only at the latest block: one output as is, several as a tuple."""
        request: dict[str, Any] = {
            "to": self.address,
            "data": f"0x{self.encode(function, *args).hex()}",
        }
        if sender is not None:
            request["from"] = sender
        try:
            result = self.rpc.request("eth_call", request, "latest")
        except Reverted as revert:
            raise self.artifact.decode_revert(revert.data) from None
        outputs = self.artifact.entry("function", function)["outputs"]
        values = _decode(outputs, bytes.fromhex(str(result)[2:]))
        return values[0] if len(values) == 1 else tuple(values)

    def transact(
        self, account: LocalAccount, function: str, *args: Any, gas: int | None = None
    ) -> Receipt:
        """Send ``function(*args)`` signed by ``account`` (see :meth:`Rpc.send`)."""
        data = self.encode(function, *args)
        return self.rpc.send(account, data, to=self.address, gas=gas, on_revert=self.artifact)

    def events(self, receipt: Receipt) -> list[Event]:
        """This contract's events in ``receipt``, in log order (see :meth:`decode_logs`)."""
        return self.decode_logs(receipt.logs)

    def decode_logs(self, logs: Sequence[Mapping[str, Any]]) -> list[Event]:
        """This contract's events among ``logs``, in order (other contracts' are skipped).

        Indexed parameters must be of static types (both contracts' are): a string or array
        would be logged as its hash, which this does not decode.
        """
        by_topic = {
            keccak(text=_signature(entry)): entry
            for entry in self.artifact.abi
            if entry["type"] == "event" and not entry.get("anonymous", False)
        }
        events = []
        for log in logs:
            topics = [bytes.fromhex(topic[2:]) for topic in log["topics"]]
            if to_checksum_address(log["address"]) != self.address or not topics:
                continue
            entry = by_topic.get(topics[0])
            if entry is None:
                continue
            indexed = [p for p in entry["inputs"] if p["indexed"]]
            plain = [p for p in entry["inputs"] if not p["indexed"]]
            args: dict[str, Any] = {}
            for param, topic in zip(indexed, topics[1:], strict=True):
                args[param["name"]] = _decode([param], topic)[0]
            values = _decode(plain, bytes.fromhex(log["data"][2:]))
            args.update(zip((p["name"] for p in plain), values, strict=True))
            block = log.get("blockNumber")
            events.append(
                Event(
                    entry["name"],
                    args,
                    self.address,
                    tx_hash=log.get("transactionHash"),
                    block_number=None if block is None else int(block, 16),
                )
            )
        return events

    def logs(self, event: str, *topics: bytes | None, from_block: int = 0) -> list[Event]:
        """This contract's ``event`` logs up to the latest block, filtered by indexed values
        (``topics``, 32 bytes each, in parameter order; None matches any)."""
        entry = self.artifact.entry("event", event)
        query = {
            "address": self.address,
            "fromBlock": hex(from_block),
            "toBlock": "latest",
            "topics": [
                f"0x{keccak(text=_signature(entry)).hex()}",
                *(None if topic is None else f"0x{topic.hex()}" for topic in topics),
            ],
        }
        return self.decode_logs(self.rpc.request("eth_getLogs", query))


def deploy(rpc: Rpc, artifact: Artifact, account: LocalAccount, *args: Any) -> Contract:
    """Deploy ``artifact`` with constructor ``args``, signed by ``account``."""
    data = artifact.bytecode + encode(artifact.constructor_types(), args)
    receipt = rpc.send(account, data, on_revert=artifact)
    if receipt.contract_address is None:
        raise ChainError(f"deploying {artifact.name}: the receipt names no contract address")
    return Contract(rpc, artifact, receipt.contract_address)
