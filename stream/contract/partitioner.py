"""The contract's partitioner: which partition a case key belongs to.

All events of one case must be in one partition (the worker folds a case in the
partition that holds it). The contract's partitioner is Kafka's default for keyed
records, the Java client's and aiokafka's: murmur2 of the key bytes, made positive
by masking the sign bit (not ``abs``), modulo the topic's partition count.
librdkafka-based clients must be told (``partitioner=murmur2_random``): their
default (``consistent_random``, CRC32) puts most keys elsewhere.

The worker checks every record of a source topic (``wrong_partition``), so the hash
must be cheap: ``murmur2`` and ``partitions_of`` are the compiled ones
(``_murmur2.c``, built by ``make install``: 0.06 us a key, a whole batch in one call)
wherever a C compiler was found at install time, else the pure-Python ones below
(``COMPILED`` says which). murmur2 one key at a time in Python costs 3-6 us a 32-byte
key (a fifth of an event's work), so ``partitions_of_python`` hashes a whole batch
at once: the keys of one length are laid side by side as 64-bit lanes of one big
integer, and each step of the hash is one multiply, shift, mask or XOR over all of
them (a lane's 32-bit value times the 31-bit constant stays below 2**63, so no carry
crosses lanes; a right shift's spill from the next lane is masked away before it can
meet a multiply). The unit tests hold both to Kafka's vectors and to each other.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Callable, Sequence
from types import ModuleType

SEED = 0x9747B28C
M = 0x5BD1E995
MASK32 = 0xFFFFFFFF
_LANE = b"\xff\xff\xff\xff\0\0\0\0"  # one 64-bit little-endian lane's low 32 bits
_POSITIVE = b"\xff\xff\xff\x7f\0\0\0\0"  # and its low 31

_compiled: ModuleType | None
try:
    from stream.contract import _murmur2 as _compiled
except ImportError:  # no C compiler at `make install` (setup.py: optional extension)
    _compiled = None
#: True when the compiled murmur2 is in use (the worker logs it at start)
COMPILED = _compiled is not None


def murmur2_python(key: bytes) -> int:
    """Kafka's murmur2 of ``key`` as an unsigned 32-bit int (Java's ``Utils.murmur2``)."""
    n = len(key)
    h = SEED ^ n
    n4 = n & ~3
    for (k,) in struct.iter_unpack("<I", key[:n4]):
        k = (k * M) & MASK32
        k ^= k >> 24
        h = ((h * M) & MASK32) ^ ((k * M) & MASK32)
    rest = n - n4
    if rest:
        if rest >= 3:
            h ^= key[n4 + 2] << 16
        if rest >= 2:
            h ^= key[n4 + 1] << 8
        h = ((h ^ key[n4]) * M) & MASK32
    h ^= h >> 13
    h = (h * M) & MASK32
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a keyed record: ``toPositive(murmur2(key)) % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partitions_of_python(keys: Sequence[bytes | None], partitions: int) -> list[int | None]:
    """``partition_of`` of every key at once (None for a record without a key)."""
    if not keys:
        return []
    lengths = set(map(len, keys)) if None not in keys else set()  # type: ignore[arg-type]
    if len(lengths) == 1:  # the usual batch: every key hex of one length
        (length,) = lengths
        return [h % partitions for h in _murmur2_lanes(keys, length)]  # type: ignore[arg-type]
    out: list[int | None] = [None] * len(keys)
    by_length: defaultdict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        if key is not None:
            by_length[len(key)].append(i)
    for length, where in by_length.items():
        hashes = _murmur2_lanes([keys[i] for i in where], length)  # type: ignore[misc]
        for i, h in zip(where, hashes, strict=True):
            out[i] = h % partitions
    return out


def _murmur2_lanes(keys: Sequence[bytes], length: int) -> list[int]:
    """``murmur2`` of keys that all have ``length`` bytes, sign bit masked, one lane each.

    Masks are taken only where a lane could spill into the next: a product or XOR
    of in-lane values stays in its 64-bit lane, so ``(h*M) ^ (k*M)`` is masked once.
    """
    n = len(keys)
    data = b"".join(keys)
    mask = int.from_bytes(_LANE * n, "little")
    h = int.from_bytes(struct.pack("<Q", SEED ^ length) * n, "little")
    buf = bytearray(8 * n)
    for i in range(0, length & ~3, 4):
        for j in range(4):  # byte j of word i of every key, into byte j of its lane
            buf[j::8] = data[i + j::length]
        k = (int.from_bytes(buf, "little") * M) & mask
        k ^= (k >> 24) & mask
        h = ((h * M) ^ (k * M)) & mask
    rest = length & 3
    if rest:
        buf = bytearray(8 * n)
        for j in range(rest):
            buf[j::8] = data[(length & ~3) + j::length]
        h = ((h ^ int.from_bytes(buf, "little")) * M) & mask
    h ^= (h >> 13) & mask
    h = (h * M) & mask
    h ^= (h >> 15) & mask
    h &= int.from_bytes(_POSITIVE * n, "little")  # toPositive: each lane's sign bit off
    return list(struct.unpack(f"<{n}Q", h.to_bytes(8 * n, "little")))


#: Kafka's murmur2 of a key as an unsigned 32-bit int: compiled where built
murmur2: Callable[[bytes], int] = murmur2_python if _compiled is None else _compiled.murmur2
#: ``partition_of`` of every key of a batch (None for a record without a key)
partitions_of: Callable[[Sequence[bytes | None], int], list[int | None]] = (
    partitions_of_python if _compiled is None else _compiled.partitions_of)


def wrong_partition_detail(expected: int, actual: int) -> str:
    """The dead-letter detail of a misplaced record (partition numbers only)."""
    return f"partition {actual}, contract partitioner gives {expected}"
