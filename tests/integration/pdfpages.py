"""What a printed report's pages hold, read from Chromium's own tagged PDF.

A row cut in half is a fact about the paginated PDF, not about the screen layout,
so it is read from the PDF itself. Chromium (Skia) tags its PDFs: every table row
is a ``/TR`` structure element whose text is marked content on a page (``/Pg``).
A body row whose text lies on two pages was split by a page break. Header rows
are left out: Chromium repeats a table's header on every page it spans, on purpose.
Skia writes plain (uncompressed) objects for the structure tree, so a few regular
expressions read it; only the page contents are compressed, and they are not needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OBJECT = re.compile(rb"(?m)^(\d+) 0 obj\s*(.*?)\bendobj", re.S)
_REF = re.compile(rb"(\d+) 0 R")
_MCR = re.compile(rb"<<([^<>]*?/MCID[^<>]*?)>>", re.S)
_PG = re.compile(rb"/Pg (\d+) 0 R")
_BOX = re.compile(rb"/MediaBox \[([\d.\s-]+)\]")


@dataclass(frozen=True)
class PdfRow:
    """One tagged table row: its number in document order and the pages it is on."""

    index: int
    pages: tuple[int, ...]
    header: bool


@dataclass(frozen=True)
class PdfLayout:
    page_sizes: tuple[tuple[float, float], ...]  # points, width x height
    rows: tuple[PdfRow, ...]

    def cut_rows(self) -> list[PdfRow]:
        """Body rows printed on more than one page."""
        return [r for r in self.rows if not r.header and len(r.pages) > 1]


def _objects(pdf: bytes) -> dict[int, bytes]:
    return {int(m.group(1)): m.group(2) for m in _OBJECT.finditer(pdf)}


def _value(body: bytes, key: bytes) -> bytes:
    """The raw value after ``key`` in a dictionary: an array, a dictionary or a token."""
    m = re.search(rb"/" + key + rb"\s*", body)
    if m is None:
        return b""
    rest = body[m.end():]
    if rest.startswith(b"["):  # MCR dictionaries inside hold no arrays
        return rest[:rest.index(b"]") + 1]
    if rest.startswith(b"<<"):
        return rest[:rest.index(b">>") + 2]
    return re.split(rb"[/>\n]", rest, maxsplit=1)[0]


def _page_order(objs: dict[int, bytes]) -> list[int]:
    """Page object numbers in reading order, walking the /Pages tree from the catalog."""
    catalog = next(b for b in objs.values() if b"/Type /Catalog" in b)
    order: list[int] = []

    def walk(ref: int) -> None:
        body = objs[ref]
        if re.search(rb"/Type /Page\b(?!s)", body):
            order.append(ref)
        for kid in _REF.findall(_value(body, b"Kids")):
            walk(int(kid))

    walk(int(_REF.findall(_value(catalog, b"Pages"))[0]))
    return order


def _pages_of(objs: dict[int, bytes], ref: int, page: int | None) -> set[int]:
    """The page objects holding any marked content under one structure element."""
    body = objs[ref]
    own = _PG.search(_MCR.sub(b" ", body))
    page = int(own.group(1)) if own else page
    kids = _value(body, b"K")
    found: set[int] = set()
    for mcr in _MCR.findall(kids):
        pg = _PG.search(mcr)
        found.add(int(pg.group(1)) if pg else page or 0)
    rest = _MCR.sub(b" ", kids)
    for kid in _REF.findall(rest):
        found |= _pages_of(objs, int(kid), page)
    if page and re.search(rb"\d", _REF.sub(b" ", rest)):  # bare MCIDs: on this page
        found.add(page)
    return found


def _is_tr(body: bytes) -> bool:
    return re.search(rb"/S /TR\b", body) is not None


def _is_header(objs: dict[int, bytes], ref: int) -> bool:
    """The first row of its table, of column headings only: Chromium repeats it."""
    tr = objs[ref]
    parent = _REF.findall(_value(tr, b"P"))
    siblings = _REF.findall(_value(objs[int(parent[0])], b"K")) if parent else []
    first = next((int(r) for r in siblings if _is_tr(objs[int(r)])), None)
    cells = [objs[int(r)] for r in _REF.findall(_value(tr, b"K"))]
    return first == ref and bool(cells) and all(b"/Scope /Column" in c for c in cells)


def read_layout(pdf: bytes) -> PdfLayout:
    """Page sizes and the pages of every tagged table row of a Chromium PDF."""
    objs = _objects(pdf)
    order = _page_order(objs)
    number = {ref: i + 1 for i, ref in enumerate(order)}
    sizes = []
    for ref in order:
        box = _BOX.search(objs[ref])
        x0, y0, x1, y1 = (float(v) for v in box.group(1).split()) if box else (0, 0, 0, 0)
        sizes.append((x1 - x0, y1 - y0))
    rows = []
    for ref in sorted(r for r, b in objs.items() if _is_tr(b)):
        pages = sorted(number[p] for p in _pages_of(objs, ref, None) if p in number)
        rows.append(PdfRow(len(rows) + 1, tuple(pages), _is_header(objs, ref)))
    return PdfLayout(tuple(sizes), tuple(rows))
