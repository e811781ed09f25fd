"""Approved feedback quotes, sealed with a key of their own (crypto-shredding).

A quote is the only free text of the contract, and the source topics are kept for
ever. So a quote never travels in clear: the producer seals it with AES-256-GCM under
a fresh 256-bit key that belongs to that one quote (``new_key``), sends the key to the
compacted key topic (``topics.toml`` ``feedback_keys``, keyed by ``feedback_key``) and
the sealed text in ``feedback.quote_approved``. Withdrawing consent sends a tombstone
for the key: once the broker has compacted it away, every copy of the sealed text (the
source topic, a dead letter, a backup) is unreadable, while the counts stay.

The sealed form is ``v1.`` and the URL-safe base64 (no padding) of nonce (12 bytes),
ciphertext and tag (16 bytes). The ``feedback_key`` is the associated data, so a sealed
quote cannot be replayed under another feedback's key. Nothing here ever puts the
quote, its key or its sealed form into an exception message.
"""

from __future__ import annotations

import base64
import binascii
import math
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: longest quote, in characters (Unicode code points)
MAX_QUOTE_CHARS = 1200
PREFIX = "v1."
_NONCE, _TAG, KEY_BYTES = 12, 16, 32
#: longest sealed form: a quote of MAX_QUOTE_CHARS characters of 4 UTF-8 bytes each
MAX_SEALED_CHARS = len(PREFIX) + math.ceil((_NONCE + 4 * MAX_QUOTE_CHARS + _TAG) * 4 / 3)
#: the sealed form's pattern in the contract: base64url only, so no readable text fits
SEALED_PATTERN = rf"^v1\.[A-Za-z0-9_-]{{38,{MAX_SEALED_CHARS - len(PREFIX)}}}$"


class QuoteError(ValueError):
    """A quote that cannot be sealed (empty or too long); the message never quotes it."""


def new_key() -> bytes:
    """A fresh 256-bit key for one quote."""
    return AESGCM.generate_key(bit_length=256)


def seal(quote: str, key: bytes, feedback_key: str) -> str:
    """The sealed form of ``quote`` under its own ``key``, bound to ``feedback_key``."""
    if not quote.strip():
        raise QuoteError("a quote must not be empty")
    if len(quote) > MAX_QUOTE_CHARS:
        raise QuoteError(f"a quote is at most {MAX_QUOTE_CHARS} characters "
                         f"(this one has {len(quote)})")
    nonce = os.urandom(_NONCE)
    sealed = nonce + AESGCM(key).encrypt(nonce, quote.encode("utf-8"), feedback_key.encode())
    return PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def unseal(sealed: str, key: bytes | None, feedback_key: str) -> str | None:
    """The quote, or None when its key is gone (withdrawn) or does not open it."""
    if key is None or len(key) != KEY_BYTES or not sealed.startswith(PREFIX):
        return None
    body = sealed[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        text = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], feedback_key.encode())
    except (InvalidTag, binascii.Error, ValueError):
        return None
    return text.decode("utf-8", "replace")
