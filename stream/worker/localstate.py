"""The worker's state kept on local disk, so a restart reads only the changelogs' tail.

Two parts:

* ``LocalStore``: Faust's memory store that also knows, per changelog partition, the
  last changelog offset its records reflect (``persisted_offset``), and tells a
  listener about every record the changelog changes in it. Faust's recovery then
  reads a changelog partition from that offset on, not from its start, and the
  listener keeps the figure cells and open work derived from the records in step.
* A checkpoint: the stores' records and offsets and the derived state (figure
  cells, open work), written together to one file in the data directory by
  ``stream.worker.checkpoint`` and read back by ``load`` when the worker starts.

A checkpoint is a pickle, and reading a pickle can run code: the file is signed with
HMAC-SHA-256 under a key from a secret file (``CSPA_CHECKPOINT_KEY_FILE``), and ``load``
checks the signature over every byte before anything is unpickled. Unsigned, altered
or signed with another key: refused in one log line, and the worker rebuilds from the
changelogs. The data directory is private to the worker (0700), the file 0600.
Pickle stays for speed: a national year's checkpoint loads in seconds (BENCHMARKS.md).

Why not Faust's ``rocksdb://``: the agents read a record per event (a RocksDB get and
decode costs several times a dict look-up), and after a restart the figures would
still be refolded from every record (100 s for a national year, BENCHMARKS.md).
A checkpoint holds the cells too, so nothing is refolded.

Consistency, the invariant everything rests on: for a partition whose cells are
kept, the cells and open work are exactly what its records in the store give, and
every changelog record at or below the partition's offset is reflected in the store.
A checkpoint is taken with no batch being folded and every changelog write landed
(``stream.worker.checkpoint``), so what it holds is on Kafka; records after it are read back
from the changelog and go through the listener like any other restored record.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import pickle
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping, Set
from pathlib import Path
from typing import Any

from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from stream.worker.partitioned import PartitionedRecords, Runs, split

log = logging.getLogger("cspa.worker")

#: (changelog partition, table key, value before, value after); None: absent
OnChange = Callable[[int, str, bytes | None, bytes | None], None]

#: a store's part of a checkpoint: records, the partitions held (a checkpoint written
#: before 2026-12-05 has each key's partition instead), partition -> offset
Exported = tuple[dict[str, bytes], set[int] | Mapping[str, int], dict[int, int]]

#: bumped whenever what a checkpoint holds changes shape, or a class it pickles moves
#: (2: the modules moved into packages): an older file is ignored
FORMAT = 2


class LocalStore(MemoryStore[str, bytes]):
    """A memory store with per-partition changelog offsets and a change listener, its
    records kept one dict per partition (``stream.worker.partitioned``)."""

    data: PartitionedRecords

    def __post_init__(self) -> None:
        super().__post_init__()
        #: Faust's memory store keeps one dict of every record, and each key's partition
        #: in another as big (``_key_partition``, about 170 MB at a national year): this
        #: store keeps a dict per partition instead, and leaves Faust's dict empty
        self.data = PartitionedRecords()
        #: changelog partition -> the last changelog offset the store reflects
        self.offsets: dict[int, int] = {}
        self.on_change: OnChange | None = None
        #: partitions dropped since they were last assigned: a write of this worker's
        #: landing for one of them must not put its offset back (``written``)
        self.dropped: set[int] = set()

    @property
    def held(self) -> set[int]:
        """The partitions that may have records here (those with a dict)."""
        return set(self.data.parts)

    def part(self, partition: int) -> dict[str, bytes]:
        """One partition's records: the dict the agents read and the writer writes."""
        return self.data.part(partition)

    def persisted_offset(self, tp: TP) -> int | None:
        """Where Faust's recovery resumes reading this changelog partition (after it)."""
        return self.offsets.get(tp.partition)

    def put(self, partition: int, key: str, value: bytes | None, offset: int) -> None:
        """One changelog record into the store (None: a tombstone deletes the key)."""
        self.dropped.discard(partition)  # read from its changelog: held again
        records = self.data.part(partition)
        old = records.get(key)
        if value is None:
            records.pop(key, None)
        else:
            records[key] = value
        self.written(partition, offset)
        if self.on_change is not None and old != value:
            self.on_change(partition, key, old, value)

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        """Faust's recovery path: decoded changelog events, in order."""
        for event in batch:
            message = event.message
            value = None if message.value is None else to_value(event.value)
            self.put(message.partition, to_key(event.key), value, message.offset)

    def written(self, partition: int, offset: int) -> None:
        """The changelog holds this partition's records up to ``offset`` (a record
        restored, or the worker's own write landed there).

        Not for a partition dropped since it was last assigned: a write landing after
        the drop would give it an offset with none of the records before it, and the
        next assignment's recovery would read its changelog only from there.
        """
        if partition in self.dropped:
            return
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP],
                           newly_assigned: set[TP], generation_id: int = 0) -> None:
        """An assignment: the partitions it gives are held again (recovery reads them)."""
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        self.dropped -= {tp.partition for tp in assigned}

    async def on_recovery_completed(self, active_tps: Set[TP], standby_tps: Set[TP]) -> None:
        """Keep the records of active and standby partitions; forget the others.

        (Faust's memory store drops the standby partitions' records too, while its
        standby reader goes on from where it stood: the copy would have a hole.)
        """
        kept = {tp.partition for tp in (*active_tps, *standby_tps)}
        self.drop(p for p in self.held | set(self.offsets) if p not in kept)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget every record and the offset of these partitions: their dicts go."""
        gone = set(partitions)
        for partition_ in gone:
            self.data.parts.pop(partition_, None)
            self.offsets.pop(partition_, None)
        self.dropped |= gone

    def export(self, copy: bool = True) -> tuple[Exported, Runs]:
        """What a checkpoint keeps of the store, and the runs of its records dict.

        The records are one dict, partition by partition, as before the store was
        split (a worker of an older release reads the checkpoint as it always did);
        the runs say where each partition's stretch is (``partitioned.split``). Always
        a new dict, so ``copy`` matters only for the offsets: the store's own with
        ``copy`` False, for a process whose store nobody changes meanwhile.
        """
        records, runs = self.data.flat()
        offsets = dict(self.offsets) if copy else self.offsets
        return (records, self.held, offsets), runs

    def restore(self, state: Exported, runs: Runs | None = None) -> int:
        """Take a checkpoint's records and offsets (before Faust's recovery starts); the
        records taken.

        The checkpoint's records dict is split into the store's (``partitioned.split``)
        and emptied: a national year's is about 170 MB, and kept it would be held twice
        at the restart's peak. The second part names the partitions held (as keys: an
        older checkpoint's key -> partition dict gives them as values).
        """
        data, partitions, offsets = state
        held = partitions if isinstance(partitions, set) else set(partitions.values())
        self.data = PartitionedRecords(split(data, runs, held))
        self.offsets.clear()
        self.offsets.update(offsets)
        return len(self.data)


#: the key of a head naming the tail that follows it (``write``)
TAIL = "tail"
#: a signed checkpoint starts with these bytes, then the HMAC-SHA-256 of the pickle after
MAGIC = b"CSPACKP1"
_MAC = hashlib.sha256().digest_size
_HEADER = len(MAGIC) + _MAC
_CHUNK = 8 * 1024 * 1024
#: shortest key accepted: the HMAC-SHA-256 block's worth of security wants 32 bytes
MIN_KEY_BYTES = 32


class _Signing:
    """A file-like writer that feeds every byte written to an HMAC on the way."""

    def __init__(self, file: Any, mac: hmac.HMAC) -> None:
        self.file, self.mac = file, mac

    def write(self, data: bytes) -> int:
        self.mac.update(data)
        written: int = self.file.write(data)
        return written


def read_key(path: Path) -> bytes:
    """The checkpoint key from its secret file; ValueError saying what is wrong with it."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"checkpoint key file {path} not readable: "
                         f"{exc.strerror or type(exc).__name__}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"checkpoint key file {path} holds {len(key)} bytes; "
                         f"at least {MIN_KEY_BYTES} are needed")
    return key


def new_key(path: Path) -> Path:
    """Write a random key to ``path`` (0600) unless one is there: for ``make run`` and the
    tests, never a production default (a key beside the data is no protection)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
    return path


def private_dir(path: Path) -> None:
    """Create ``path`` readable by its owner only (0700), or take away others' access.

    Whoever can write the data directory could swap a checkpoint: only the worker may.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o700)
        log.warning("data directory was open to others (mode %o): now 0700", mode)


def write(path: Path, state: dict[str, Any], key: bytes,
          tail: tuple[str, Any] | None = None) -> int:
    """Pickle ``state`` to ``path``, signed with ``key``, whole or not at all whatever the
    moment of a crash (the previous file stays until then); its size in bytes.

    Streamed to the file, with no copy of it in memory (a national year's checkpoint
    is most of a gigabyte); the worker runs it in a forked child, off its event loop
    (``stream.worker.snapshot``). The signature goes in the header once the pickle is
    written. A ``tail`` (name, value) is a second pickle after the first, which ``load``
    reads into ``state[name]`` only if its caller wants it: a part that may not unpickle
    (its classes moved) or may not be used, read without ever holding its bytes.

    ``state`` is pickled without a memo (``Pickler.fast``): it must hold no object twice
    and no cycle (records are str -> bytes). A memo keeps a reference to every object
    pickled, and its reader one to every object read: with a national year's 3.2 million
    records that was about 400 MB in the writing child and 64 MB at the restart's peak
    (BENCHMARKS.md, step 43). The tail keeps its memo (shared and cyclic objects).
    """
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)  # an older .tmp may have had another mode
        f.write(MAGIC + bytes(_MAC))
        mac = hmac.new(key, digestmod=hashlib.sha256)
        signing = _Signing(f, mac)
        head = state if tail is None else {**state, TAIL: tail[0]}
        flat = pickle.Pickler(signing, protocol=pickle.HIGHEST_PROTOCOL)
        flat.fast = True  # no memo: see the docstring
        flat.dump(head)
        if tail is not None:
            pickle.dump(tail[1], signing, protocol=pickle.HIGHEST_PROTOCOL)
        size = f.tell()
        f.seek(len(MAGIC))
        f.write(mac.digest())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return size


def claim(path: Path) -> int | None:
    """Hold ``path``'s lock for the life of the process; None if another worker holds it.

    Two workers given one data directory must not share a checkpoint: the second
    takes none (the kernel drops the lock when its holder dies, SIGKILL included).
    """
    private_dir(path.parent)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _signed(f: Any, key: bytes) -> bool:
    """Whether the open file's header holds the HMAC of the rest (read in chunks)."""
    header = f.read(_HEADER)
    if len(header) != _HEADER or not header.startswith(MAGIC):
        return False
    mac = hmac.new(key, digestmod=hashlib.sha256)
    while chunk := f.read(_CHUNK):
        mac.update(chunk)
    return hmac.compare_digest(mac.digest(), header[len(MAGIC):])


def load(path: Path, key: bytes,
         wants: Callable[[dict[str, Any]], bool] = lambda head: True) -> dict[str, Any] | None:
    """A checkpoint written by ``write`` with ``key``; None if there is none, or it is
    not signed with ``key``, or it cannot be used.

    The signature is checked over the whole file before anything is unpickled. The
    pickle is then read from the same open file: a file swapped in meanwhile is not
    read (an attacker would have to write this file in place, as the worker's user).
    Its tail, if it has one, is read only if ``wants(head)``; one that cannot be read is
    left out (logged), the head still returned.
    """
    try:
        with path.open("rb") as f:
            if not _signed(f, key):
                log.warning("checkpoint refused: unsigned, altered or signed with another "
                            "key; the state is rebuilt from the changelogs")
                return None
            f.seek(_HEADER)
            state = pickle.load(f)  # signed by this worker's key: the worker's own file
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                log.warning("checkpoint ignored path=%s error=format", path)
                return None
            _read_tail(f, state, wants)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - an unusable file means a full restore
        log.warning("checkpoint ignored path=%s error=%s", path, type(exc).__name__)
        return None
    return state


def _read_tail(f: Any, head: dict[str, Any], wants: Callable[[dict[str, Any]], bool]) -> None:
    """The tail's value into ``head`` under its name, if it has one and it is wanted."""
    name = head.pop(TAIL, None)
    if name is None or not wants(head):
        return
    try:
        head[name] = pickle.load(f)
    except Exception as exc:  # noqa: BLE001 - the head stands without it
        log.warning("checkpoint part not read part=%s error=%s", name, type(exc).__name__)


#: ``local://`` names this store in Faust's store URLs (``Settings.store``)
STORES.aliases.setdefault("local", f"{__name__}:LocalStore")
