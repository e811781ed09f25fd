"""Archived figures: the cells of erased cases, kept as aggregates only.

Retention (``python -m stream retention``) erases the records of cases whose every
event is older than the council's cut-off. The figures are a sum of what each record
contributes (``stream.state.aggregates``), so a refold from the records left would
lose those cases' counts from published months. Before a record goes, its facts are
added to its partition's *archive*: one value per changelog partition, under the key
``!archive:N`` beside the records, holding summed cells and nothing that names a
case. A partition's figures are its records' facts plus its archive.

The value also says ``through``: the changelog offset before which every record was
read into it. Retention deletes the changelog below that offset once the archive
has landed; a run cut short between the two finishes the deletion first, so no
erased case is archived twice.
"""

from __future__ import annotations

import orjson

from stream.state.aggregates import Aggregates, Cell

#: Record keys are ``kind:case-key`` with an alphabetic kind, so this cannot clash.
PREFIX = "!archive:"


def archive_key(partition: int) -> str:
    """Table key of one changelog partition's archive."""
    return f"{PREFIX}{partition}"


def is_archive(key: str) -> bool:
    return key.startswith(PREFIX)


def encode(agg: Aggregates, through: int) -> bytes:
    return orjson.dumps({"through": through, "cells": agg.to_json()})


def decode(raw: bytes) -> tuple[Aggregates, int]:
    """(cells, through) of an archive value."""
    value = orjson.loads(raw)
    return Aggregates.from_json(value["cells"]), int(value["through"])


def apply(agg: Aggregates, raw: bytes | None, sign: int) -> None:
    """Add (+1) or withdraw (-1) an archive's cells to or from a partition's cells."""
    if raw is None:
        return
    for key, cell in decode(raw)[0].cells.items():
        mine = agg.cells.get(key)
        if mine is None:
            mine = agg.cells[key] = Cell()
        mine.count += sign * cell.count
        mine.units += sign * cell.units
        for value, n in cell.values.items():
            mine.values.add(value, sign * n)
        agg.changed.add(key)
        if mine.count == 0:
            del agg.cells[key]
