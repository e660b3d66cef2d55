"""One-time transfer codes: made by the hub, 53.6 bits each, stored only as their SHA-256.

A code is four digits and five words from :data:`hub_stub.words.WORDS` (267 distinct words),
runpodctl's shape made longer: ``4817-cactus-walrus-ember-quill-topaz``. That is
``10**4 * 267**5`` codes, 53.6 bits: at 2,000 guesses a second, hitting any one of a
thousand live codes takes about 200 years on average, before any rate limit. The hub makes
every code: a client-chosen one is only as strong as its author's imagination.

The database keeps ``sha256(code)``, never the code, so a copy of ``hub.sqlite3`` hands out
no live code. A plain hash suffices because the code itself carries 53.6 bits: a slow or
keyed hash would add nothing against someone who can read the file.
"""

from __future__ import annotations

import hashlib
import math
import secrets

from hub_stub.words import WORDS

DIGITS = 4
WORDS_PER_CODE = 5
ENTROPY_BITS = math.log2(10**DIGITS * len(WORDS) ** WORDS_PER_CODE)


def new_code() -> str:
    """A fresh random code, ``NNNN-word-word-word-word-word``."""
    words = "-".join(secrets.choice(WORDS) for _ in range(WORDS_PER_CODE))
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}-{words}"


def code_hash(code: str) -> str:
    """What the store keeps and looks up instead of the code: hex SHA-256 of its UTF-8.

    The same function as the store's ``sha256_hex``, which migration 3 used to hash the codes
    an older hub kept in clear; both must stay plain SHA-256 for those codes to be found.
    """
    return hashlib.sha256(code.encode()).hexdigest()
