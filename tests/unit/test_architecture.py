"""The package's layers: a module imports only from its own layer and those before it."""

from __future__ import annotations

import ast
from pathlib import Path

import stream

PACKAGE = Path(stream.__file__).parent


def _layer(module: str) -> int:
    """Index in ``stream.LAYERS`` of a dotted module name under ``stream``."""
    return stream.LAYERS.index(module.split(".")[1])


def _imports(path: Path) -> set[str]:
    """Every ``stream.*`` module a file imports, at any depth (function-level too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "stream":
                found |= {f"stream.{a.name}" for a in node.names}
            elif node.module.startswith("stream."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("stream.")}
    return found


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:  # stream/__init__.py is the package itself
            out[".".join(parts)] = path
    return out


def test_every_module_belongs_to_a_layer():
    assert {name.split(".")[1] for name in _modules()} == set(stream.LAYERS)


def test_no_module_imports_from_a_layer_after_its_own():
    upward = sorted(
        (name, imported) for name, path in _modules().items() for imported in _imports(path)
        if imported.split(".")[1] in stream.LAYERS and _layer(imported) > _layer(name))
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    # The check must be able to fail: a contract module importing the worker.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from stream.worker.app import create_app\n")
    assert _imports(bad) == {"stream.worker.app"}
    assert _layer("stream.worker.app") > _layer("stream.contract.events")


def _third_party(path: Path) -> set[str]:
    """Top-level names of every non-``stream`` package a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
    return found - {"stream"}


#: what the state layer must not depend on: it defines the figures, the worker runs them
RUNTIME = {"faust", "aiokafka", "prometheus_client", "mode"}


def test_state_defines_figures_without_the_runtime():
    leaks = sorted((name, pkg) for name, path in _modules().items()
                   if name.startswith("stream.state.")
                   for pkg in _third_party(path) & RUNTIME)
    assert leaks == []


def test_the_report_reads_no_worker_module():
    # The report turns cells into tables; what a figure is lives in stream.state.
    reads = sorted((name, imported) for name, path in _modules().items()
                   if name.startswith("stream.report") for imported in _imports(path)
                   if imported.startswith("stream.worker"))
    assert reads == []


def test_the_runtime_check_sees_a_prometheus_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from prometheus_client.core import GaugeMetricFamily\nimport faust\n")
    assert _third_party(bad) & RUNTIME == {"prometheus_client", "faust"}


def test_only_the_records_module_reads_a_slot_by_position():
    assert _positional(PACKAGE) == []


def test_the_position_check_sees_the_old_fact_code(tmp_path):
    # The check must be able to fail: the shapes facts were read in before named fields.
    pkg = tmp_path / "stream" / "state"
    pkg.mkdir(parents=True)
    (pkg / "old.py").write_text(
        "def f(rec):\n    rcv, dec = rec.get('rcv'), rec.get('dec')\n    a = rcv[3]\n"
        "    outcome = rec.get('ans') or rec.get('abn')\n    ts, _, q, w = outcome\n"
        "    return rec['res'][0], a, dec, ts\n")
    lines = sorted(spot.split(":")[1] for spot in _positional(tmp_path / "stream"))
    assert lines == ["3", "5", "6"]


def _positional(package: Path) -> list[str]:
    """``file:line`` of every slot read by position outside stream/state/records.py.

    A slot is a name assigned from an expression that reads a record (``rec.get(...)``,
    ``record[...]``); reading one by position is an integer subscript of it, or of a
    record read directly, or unpacking it into several names.
    """
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "records.py" or path.parent.name not in ("state", "worker"):
            continue
        tree = ast.parse(path.read_text())
        slots = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and _reads_record(node.value) for target in node.targets
                 for t in ast.walk(target) if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            indexed = (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                       and isinstance(node.slice.value, int)
                       and ((isinstance(node.value, ast.Name) and node.value.id in slots)
                            or _reads_record(node.value)))
            unpacked = (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
                        and node.value.id in slots
                        and any(isinstance(t, ast.Tuple) for t in node.targets))
            if indexed or unpacked:
                found.append(f"{path.name}:{node.lineno}")
    return found


def _reads_record(value: ast.expr) -> bool:
    """Whether an expression reads a record: ``rec.get(...)``, ``record[...]`` anywhere in it."""
    for node in ast.walk(value):
        target = (node.func.value if isinstance(node, ast.Call)
                  and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  else node.value if isinstance(node, ast.Subscript) else None)
        if isinstance(target, ast.Name) and target.id in ("rec", "record"):
            return True
    return False
