"""A far-side helper that lies: run on the pod as its ``python3`` (a real sshd, a real exec).

The pod controls whatever answers our helper's requests: it can replace ``python3`` in its
PATH. This stand-in speaks the helper's frames (``worldland_cli.transfer.farprogram``) and
answers a packed read (``G``) with the lie named in ``$HOME/lie``; it answers other requests
truthfully enough for a transfer to get that far (nothing is at the destination; a hash job
fails, so the engine checks the usual way). Run as ``lying_helper.py -c PROGRAM NONCE``.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

HEAD = struct.Struct(">cII")
out = sys.stdout.buffer
inp = sys.stdin.buffer


def send(kind: bytes, rid: int, payload: bytes, length: int | None = None) -> None:
    out.write(HEAD.pack(kind, rid, len(payload) if length is None else length) + payload)
    out.flush()


def reply(kind: bytes, rid: int, doc: object) -> None:
    send(kind, rid, json.dumps(doc).encode())


def lie(rid: int, items: list[list[object]], how: str) -> None:
    """Answer a packed read of ``items`` ([path, size]) with the lie ``how``."""
    path, size = str(items[0][0]), int(str(items[0][1]))
    data = Path(path).read_bytes()[:size]
    sha = __import__("hashlib").sha256
    if how == "longer":  # more bytes than asked for, announced as such
        extra = data + b"\0" * 4096
        reply(b"F", rid, {"size": len(extra), "sha256": sha(extra).hexdigest(), "changed": False})
        send(b"D", rid, extra)
    elif how == "more-data":  # a header that says the truth, then more data than it said
        reply(b"F", rid, {"size": size, "sha256": sha(data).hexdigest(), "changed": False})
        send(b"D", rid, data + b"\0" * 4096)
    elif how == "huge-frame":  # a frame announcing 4 GiB; nothing follows it
        send(b"D", rid, b"", length=(1 << 32) - 1)
    elif how == "stray":  # an answer to a question nobody asked
        reply(b"R", rid + 1000, None)
    elif how == "not-json":
        send(b"F", rid, b"\xff{not json")
    out.flush()
    inp.read()  # wait for the client to give up


def main() -> None:
    nonce = sys.argv[-1]
    how = (Path(os.environ["HOME"]) / "lie").read_text().strip()
    out.write(b"\nWORLDLAND-FARSIDE 1 " + nonce.encode() + b"\n")
    out.flush()
    inp.read(9)  # the SFTP INIT preamble
    while True:
        head = inp.read(HEAD.size)
        if len(head) < HEAD.size:
            return
        kind, rid, n = HEAD.unpack(head)
        doc = json.loads(inp.read(n) or b"null")
        if kind == b"S":
            reply(b"R", rid, [[None, 2, "No such file or directory"] for _ in doc])
        elif kind == b"M":
            reply(b"R", rid, [None for _ in doc])
        elif kind == b"J":
            reply(b"!", rid, [5, "no hash here"])
        elif kind == b"G":
            lie(rid, doc, how)
            return


if __name__ == "__main__":
    main()
