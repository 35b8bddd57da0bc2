"""A short soak (bench/soak.py): two real nodes on a redis-server of its own, WebSocket and
text peers, a node killed and restarted mid-way (seed 36 puts that fault at 8.5 s); no gap,
duplicate or reordering, resumes that complete, and memory back to its level. The
3-minute figures are in docs/deploy.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, require

pytestmark = [pytest.mark.redis, pytest.mark.soak]
SHORT = ("--minutes", "0.33", "--ws", "6", "--text", "3", "--seed", "36", "--settle", "2")


def test_a_short_soak_through_a_node_kill_loses_nothing(tmp_path: Path) -> None:
    require("redis-server")
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "soak.py", *SHORT, "--json", str(out)],
        cwd=ROOT / "bench",
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [what for _, what in result["faults"]] == [result["faults"][0][1]]
    assert result["faults"][0][1].endswith("SIGKILL, restarted")
    assert result["gaps"] == result["duplicates"] == result["reorderings"] == 0
    assert result["counts"]["resume: complete true"] >= 1  # the killed node's people came back
    assert result["messages_seen"] > 20 and result["memory_back"]
