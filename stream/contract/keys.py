"""Pseudonymous keys: the one recipe every producer uses (docs/contract.md, "Keys").

    key = hex(HMAC-SHA-256(secret, UTF-8 of "<kind>:<identifier>"))[:32]

* ``secret``: the council's key secret, at least 16 bytes (a file of hex digits is
  decoded), held by the council and given to every system that produces events;
* ``kind``: what the identifier names (``contact``, ``child``, ``call``...): the
  purpose string, so a contact id and a child id with the same digits get
  unrelated keys. The source system is deliberately *not* part of it: a case
  known to two systems (a contact in the case system and its early-help
  allocation in the early-help module) must get one key from both, or its events
  never join. A system whose identifiers are only unique within itself says so
  in the identifier (``kind`` ``call``, identifier ``telephony-a:12345``);
* 32 lower-case hex digits (128 bits): inside the contract's 16-64 and far from
  any chance collision at a council's volumes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

#: A key kind: lower-case word, so no colon can make two (kind, id) pairs collide.
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
KEY_HEX_DIGITS = 32
MIN_SECRET_BYTES = 16


class SecretError(ValueError):
    """The secret cannot be used (the message says why, never the secret)."""


def pseudonymous_key(secret: bytes, kind: str, identifier: str) -> str:
    """The pseudonymous key of one identifier of one kind."""
    if not _KIND.fullmatch(kind):
        raise ValueError("a key kind is a lower-case word (a-z, 0-9, _ and -, 1-32)")
    message = f"{kind}:{identifier}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:KEY_HEX_DIGITS]


def load_secret(path: Path | None) -> bytes:
    """The secret in a file: at least 16 bytes; a file of hex digits is decoded."""
    if path is None:
        raise SecretError("no key secret: pass --secret-file FILE or set "
                          "CSPA_PSEUDONYM_KEY_FILE (at least 16 bytes, e.g. 64 hex digits)")
    try:
        data = Path(path).read_bytes().strip()
    except OSError as exc:
        raise SecretError(f"cannot read the key file {path}: {exc.strerror}") from None
    if re.fullmatch(rb"(?:[0-9a-fA-F]{2})+", data):
        data = bytes.fromhex(data.decode())
    if len(data) < MIN_SECRET_BYTES:
        raise SecretError(f"the key in {path} is shorter than {MIN_SECRET_BYTES} bytes")
    return data
