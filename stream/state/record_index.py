"""What each record of one kind holds open now, kept per partition: an OpenWork listener.

Calls waiting (``stream.state.calls_waiting``) and open partner requests
(``stream.state.partner_responses``) are pure functions of a record, judged against the
clock only at scrape time. Both keep, per partition and record key, what the record holds
open, fed by ``OpenWork`` with every record that changes or is rebuilt, dropped with its
partition, and checkpointed with open work; this class is that bookkeeping, once.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import Generic, TypeVar

from stream.state.records import Record

Part = Hashable  # (topic, partition) in the worker
V = TypeVar("V")


class RecordIndex(Generic[V]):
    """``partition -> record key -> value`` for the records of kind ``KIND`` holding one."""

    #: the record kind (``record["k"]``) this index reads; other records pass untouched
    KIND = ""

    def __init__(self) -> None:
        self._by_part: dict[Part, dict[str, V]] = {}

    def value_of(self, record: Record | None) -> V | None:
        """What the record holds open now (None or empty: nothing)."""
        raise NotImplementedError

    def update(self, partition: Part, key: str, record: Record | None) -> None:
        """Replace what the key contributes (None: the record is gone)."""
        if record is not None and record.get("k") != self.KIND:
            return  # the hot path: most records are of another kind
        value = self.value_of(record)
        if value:
            self._by_part.setdefault(partition, {})[key] = value
        elif partition in self._by_part:
            self._by_part[partition].pop(key, None)

    def drop_partition(self, partition: Part) -> None:
        self._by_part.pop(partition, None)

    def drop_topic(self, topic: str, keep: Collection[Part] = ()) -> None:
        """Forget every ``(topic, partition)`` of one topic but ``keep`` (before a rebuild)."""
        for part in [p for p in self._by_part
                     if isinstance(p, tuple) and p[0] == topic and p not in keep]:
            del self._by_part[part]

    def export(self, partition: Part) -> dict[str, V] | None:
        """What a checkpoint keeps of one partition."""
        return self._by_part.get(partition)

    def restore(self, partition: Part, state: dict[str, V] | None) -> None:
        """Take one partition's values from a checkpoint."""
        if state is not None:
            self._by_part[partition] = state

    def values_of(self, owned: Collection[Part]) -> list[V]:
        """Every value of the owned partitions."""
        return [v for part in owned for v in self._by_part.get(part, {}).values()]
