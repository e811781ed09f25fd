"""The Quix Streams peer: its own virtualenv, and a run over the benchmark's backlog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

from bench import CACHE, ROOT
from bench.procs import proc_status

#: The peer's pinned packages (quixstreams: latest 3.x when the harness was written).
#: pydantic as the worker pins it (pyproject.toml): the peer's ``--contract`` check runs
#: the worker's own models on it. pydantic-settings (read only by the contract's import
#: of ``stream.settings``, never per event) at the latest quixstreams allows (< 2.16).
QUIX_PINS = ("quixstreams==3.28.1", "orjson==3.13.0", "holidays==0.109", "pydantic==2.13.4",
             "pydantic-settings==2.15.0")
DEFAULT_VENV = CACHE / "bench-quix-venv"


def quix_version() -> str:
    return next(p.split("==")[1] for p in QUIX_PINS if p.startswith("quixstreams=="))


def ensure_venv(path: Path = DEFAULT_VENV) -> tuple[Path, float]:
    """The peer's python (creating the virtualenv once); seconds spent creating it."""
    python, stamp = path / "bin" / "python", path / ".bench-pins"
    wanted = " ".join(QUIX_PINS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python, 0.0
    t0 = time.monotonic()
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    res = subprocess.run([str(python), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", *QUIX_PINS],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(QUIX_PINS)} failed:\n{res.stderr[-3000:]}")
    stamp.write_text(wanted)
    return python, time.monotonic() - t0


def run_peer(python: Path, bootstrap: str, n: int, topics: list[str], workdir: Path,
             group: str, timeout: float, commit_seconds: float = 5.0,
             contract: bool = True, whole: bool = False) -> dict[str, Any]:
    """Run the Quix app until it has consumed ``n`` messages; its result and peak RSS.

    ``commit_seconds``: Quix's commit interval (its default is 5 s). ``contract``: it
    checks every event by the worker's contract before its fold, as the worker does.
    ``whole``: it folds as the worker does, every figure and open work (``--whole``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "result.json"
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [str(python), str(ROOT / "bench" / "quix_app.py"), "--bootstrap", bootstrap,
           "--group", group, "--n", str(n), "--state-dir", str(workdir / "state"),
           "--out", str(out), "--topics", ",".join(topics),
           "--commit-seconds", f"{commit_seconds:g}", *(["--contract"] if contract else []),
           *(["--whole"] if whole else [])]
    peak, t0 = 0, time.monotonic()
    with (workdir / "quix.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            while proc.poll() is None:
                peak = max(peak, proc_status(proc.pid, "VmHWM"))
                if time.monotonic() - t0 > timeout:
                    raise TimeoutError(f"Quix peer did not consume {n} in {timeout}s")
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    if not out.exists():
        tail = (workdir / "quix.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"Quix peer failed (rc={proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["peak_rss_bytes"] = peak
    result["wall_seconds"] = time.monotonic() - t0
    return result


if __name__ == "__main__":  # python -m bench.peer_quix: just build the virtualenv
    py, spent = ensure_venv()
    print(f"{py} ({spent:.0f}s)", file=sys.stderr)
