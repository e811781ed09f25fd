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
