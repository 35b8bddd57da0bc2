"""CI runs the benchmark harness for a few seconds: every target starts, every scenario runs.

The figures of a smoke run mean nothing (tiny N, unpinned, in parallel); the measured
ones are in docs/benchmarks.md, made by `python bench/run.py --full`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, require


@pytest.mark.slow
def test_bench_quick_smoke(tmp_path: Path) -> None:
    for tool in ("redis-server", "ngircd", "inspircd"):  # the references issue 16 compares
        require(tool)
    out = tmp_path / "quick.md"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = out.read_text()
    assert "chatsupport-tcp" in report and "chatsupport-ws" in report
    assert "`ngircd`: ngIRCd" in report and "`inspircd`: InspIRCd" in report
    assert "### One busy room" in report
    assert "scenario runs ok" in done.stdout + done.stderr
