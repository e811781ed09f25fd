"""A records store kept as one dict per changelog partition.

One dict for every record of a national year (3.2 million keys) doubled its table in one
C call as it grew past about 2.8 million keys: 541-607 ms of the event loop held while a
catch-up wrote a batch (BENCHMARKS.md, step 63). Split by partition, each dict holds a
few per cent of the records, so a table grows in a few milliseconds, and dropping a
partition a rebalance takes away is one ``pop``, where it was a pass over every record
(about 2 s with a national year).

The agents and the changelog writer read and write a partition's own dict
(``PartitionedRecords.part``): the batch they fold is one partition's. What reads the
store as one mapping (Faust's table API, a recovery's refold, the tests) goes through
``PartitionedRecords`` itself: its look-ups by key alone try each partition's dict.

A record lives in the dict of its changelog partition, which is its source partition:
every record keeps it (``"p"``, read by ``partition``) and a progress marker's or an
archive's key names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, MutableMapping
from itertools import chain, islice
from typing import Any

from stream.state import archive, progress

#: a record's JSON starts with its kind and its partition (``records.fold``)
_PARTITION = re.compile(rb'\{"k":"[^"]*","p":(\d+)[,}]')


def partition(key: str, value: bytes) -> int:
    """The partition of a stored record, progress marker or archive: a record keeps it
    (``"p"``, its second field, after its kind) and the others' keys name it."""
    for prefix in (progress.PREFIX, archive.PREFIX):
        if key.startswith(prefix):
            return int(key[len(prefix):])
    found = _PARTITION.match(value)
    if found is None:
        raise ValueError("a stored value without a partition")
    return int(found[1])


#: (partition, how many of the flat dict's items in a row are its): ``runs``
Runs = list[tuple[int, int]]


class PartitionedRecords(MutableMapping[str, bytes]):
    """table key -> stored value, kept as partition -> that partition's dict."""

    def __init__(self, parts: dict[int, dict[str, bytes]] | None = None) -> None:
        #: partition -> its records (the agents' and the writer's own dicts)
        self.parts: dict[int, dict[str, bytes]] = {} if parts is None else parts

    def part(self, partition: int) -> dict[str, bytes]:
        """One partition's records, made empty if it has none yet."""
        records = self.parts.get(partition)
        if records is None:
            records = self.parts[partition] = {}
        return records

    def __getitem__(self, key: str) -> bytes:
        for records in self.parts.values():
            value = records.get(key)
            if value is not None:  # (values are bytes)
                return value
        raise KeyError(key)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.part(partition(key, value))[key] = value

    def __delitem__(self, key: str) -> None:
        for records in self.parts.values():
            if records.pop(key, None) is not None:
                return
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return any(key in records for records in self.parts.values())

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self.parts.values())

    def __len__(self) -> int:
        return sum(map(len, self.parts.values()))

    def items(self) -> Any:
        """Every (key, value), partition by partition (no look-up per key)."""
        return _Items(self)

    def values(self) -> Any:
        return _Values(self)

    def clear(self) -> None:
        self.parts.clear()

    def flat(self) -> tuple[dict[str, bytes], Runs]:
        """Every record in one dict, partition by partition, and the runs that say which
        partition each stretch of it is (a checkpoint keeps the one dict: ``split``)."""
        out: dict[str, bytes] = {}
        for records in self.parts.values():
            out.update(records)
        return out, [(p, len(records)) for p, records in self.parts.items()]


class _Items:
    """``PartitionedRecords.items()``: sized, iterated partition by partition."""

    def __init__(self, of: PartitionedRecords) -> None:
        self._of = of

    def __len__(self) -> int:
        return len(self._of)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return chain.from_iterable(records.items() for records in self._of.parts.values())


class _Values(_Items):
    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        return chain.from_iterable(records.values() for records in self._of.parts.values())


def split(flat: dict[str, bytes], runs: Runs | None,
          held: Iterable[int] = ()) -> dict[int, dict[str, bytes]]:
    """partition -> its records, from one dict of them (a checkpoint's), emptied here.

    With ``runs`` (what ``flat`` gave, read back in the same order) each partition's
    stretch is sliced off in C. A checkpoint written before the store was split has
    none: each record's partition is read from it (about 2 s with a national year,
    once), as it is where runs do not add up to the dict. Every partition of ``held``
    gets a dict, empty if it has no record.
    """
    parts = _by_runs(flat, runs) if runs is not None else None
    if parts is None:
        parts = {}
        for key, value in flat.items():
            records = parts.get(p := partition(key, value))
            if records is None:
                records = parts[p] = {}
            records[key] = value
    flat.clear()  # (its table freed now: a restart holds the records once, not twice)
    for p in held:
        parts.setdefault(p, {})
    return parts


def _by_runs(flat: dict[str, bytes], runs: Runs) -> dict[int, dict[str, bytes]] | None:
    if sum(n for _, n in runs) != len(flat) or len({p for p, _ in runs}) != len(runs):
        return None
    items = iter(flat.items())
    return {p: dict(islice(items, n)) for p, n in runs}
