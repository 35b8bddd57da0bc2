"""Run the benchmark set of issue 8 against every target, side by side.

    python bench/run.py --quick    # smoke: every target, tiny N, ~15 s, bench/results/quick.md
    python bench/run.py --full     # the figures: docs/benchmarks.md (about 15 min)
    python bench/run.py --full --runs 5 --targets redis,chatsupport-tcp --scenarios fanout
    python bench/run.py --full --src ../main/src    # measure another checkout's server

Full mode: each run starts every target afresh for each scenario, the server
pinned to one core and the load generator (bench/loadgen.py) to another, and
the targets take turns in a rotating order; figures are medians over the runs.
Quick mode runs the targets in parallel, unpinned, all scenarios against one
server: it checks that everything works, its numbers mean nothing.

Exit status 0 when every scenario of every available target went through.
Raw results: bench/results/*.json; server logs: bench/results/logs/.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import meter
import report
import targets
from targets import BENCH, REPO, TARGETS, Env, Target

RESULTS = BENCH / "results"
CONTENDED = 25.0  # % of a core used by other work: above it, a measured run is tried again
CALM = 20.0  # % of the machine busy while nothing of ours runs: wait for less before a job
CALM_WAIT = 30.0  # seconds at most


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    loadgen_args: tuple[str, ...]
    scale: dict[str, str]
    runs: int
    retries: int  # extra attempts for a contended run
    budget: float  # seconds a loadgen process may take per scenario
    pinned: bool
    grouped: bool  # all scenarios of a target against one server, one loadgen


QUICK = Mode(
    "quick",
    ("-n", "50", "-p", "5", "-d", "0.3", "--warmup", "0.2", "--rate", "100", "--rooms", "10",
     "--per-room", "3", "--conns", "100", "--settle", "0.2", "--pause", "0.1", "--timeout", "15",
     "--stall", "1"),
    {"fanout": "50 receivers, 5 publishers", "latency": "50 receivers, 100 msg/s",
     "open100": "50 receivers, 5 publishers, 100 msg/s, open loop",
     "open300": "50 receivers, 5 publishers, 300 msg/s, open loop",
     "quiet": "10 rooms of 3, 100 msg/s", "idle": "100 connections"},
    runs=1, retries=0, budget=20, pinned=False, grouped=True,
)  # fmt: skip
FULL = Mode(
    "full",
    ("-n", "1000", "-p", "20", "-d", "5", "--warmup", "1", "--rate", "100", "--rooms", "500",
     "--per-room", "4", "--conns", "10000", "--settle", "1", "--pause", "1", "--timeout", "60"),
    {"fanout": "1,000 receivers in one room, 20 publishers with 1 message in flight, "
               "64-byte texts, 5 s measured after 1 s",
     "latency": "1,000 receivers in one room, 100 msg/s offered, 5 s measured",
     "open100": "1,000 receivers, 10 publishers, 100 msg/s offered in all (open loop), "
                "latency sampled at 20 receivers, 5 s measured",
     "open300": "as above at 300 msg/s",
     "quiet": "500 rooms of 4 receivers + 1 sender, 100 msg/s in all (0.2 per room)",
     "idle": "10,000 idle connections, RSS growth of the server per connection"},
    runs=3, retries=2, budget=200, pinned=True, grouped=False,
)  # fmt: skip


def raise_fd_limit() -> None:
    """Children inherit it: servers and the load generator need ~10,000 sockets."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cores(pinned: bool) -> tuple[int, int] | None:
    mine = sorted(os.sched_getaffinity(0))
    if not pinned or len(mine) < 2 or shutil.which("taskset") is None:
        return None
    return mine[0], mine[1]


def machine(pinned: tuple[int, int] | None) -> dict[str, str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return "not installed"
        return out.strip().splitlines()[0] if out.strip() else "?"

    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')} (load generator, sink)"
    except importlib.metadata.PackageNotFoundError:
        loop = "asyncio (uvloop not installed)"
    return {
        "nproc": str(os.cpu_count()),
        "CPU": model,
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "event loop": loop,
        "Node.js": version(["node", "--version"]),
        "Redis": version(["redis-server", "--version"]),
        "pinning": f"server on core {pinned[0]}, generator on core {pinned[1]} (taskset)"
        if pinned
        else "none",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def output(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()


def build_of(src: Path) -> str:
    """The git commit the measured ChatSupport comes from, '+dirty' if src/ has changes."""
    git = ["git", "-C", str(src)]
    try:
        head = output([*git, "log", "-1", "--format=%h %s", "--", "."])
        dirty = output([*git, "status", "--porcelain", "--", "."])
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" +dirty" if dirty else "")


def ensure_node_modules(install: bool) -> None:
    node_dir = BENCH / "node"
    if (node_dir / "node_modules" / "ws").is_dir() or not install:
        return
    if shutil.which("npm") is None or shutil.which("node") is None:
        return
    print("installing Node.js ws (npm ci in bench/node)", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=node_dir, timeout=300, check=False)


def run_loadgen(
    target: Target, env: Env, mode: Mode, scenarios: list[str], ports: list[int], pids: list[int],
    cpu: int | None,
) -> list[dict[str, Any]]:  # fmt: skip
    argv = [env.python, str(BENCH / "loadgen.py"), "--wire", target.wire,
            "--dialect", target.dialect, "--port", ",".join(map(str, ports)),
            "--scenario", ",".join(scenarios), *mode.loadgen_args, *target.gen_args]  # fmt: skip
    for pid in pids:
        argv += ["--server-pid", str(pid)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=mode.budget * len(scenarios) + 30
        )
    except subprocess.TimeoutExpired:
        return [
            {"scenario": s, "ok": False, "errors": ["load generator timed out"]} for s in scenarios
        ]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    got = {r["scenario"] for r in rows}
    err = done.stderr.strip()[-300:] or f"exit {done.returncode}"
    rows += [{"scenario": s, "ok": False, "errors": [err]} for s in scenarios if s not in got]
    return rows


def job(
    target: Target, env: Env, mode: Mode, run: int, scenarios: list[str]
) -> list[dict[str, Any]]:
    """Start ``target``, run ``scenarios`` against it, stop it: the result rows."""
    log_name = f"{mode.name}-{target.name}-run{run}-{'-'.join(scenarios)}"
    pinned = cores(mode.pinned)
    rows: list[dict[str, Any]]
    try:
        server = targets.start(target, env, log_name)
    except (RuntimeError, OSError) as exc:
        rows = [{"scenario": s, "ok": False, "errors": [f"start: {exc}"]} for s in scenarios]
    else:
        try:
            rows = run_loadgen(target, env, mode, scenarios, server.ports, server.pids,
                               pinned[1] if pinned else None)  # fmt: skip
        finally:
            codes = server.stop()
        for row in rows:
            row["server_exit"] = codes
            if target.role == "ours" and any(c != 0 for c in codes):
                row.setdefault("errors", []).append(f"server exit status {codes}")
    for row in rows:
        row.update(target=target.name, run=run)
        print(f"  run {run} {target.name:22} {summary(row)}", file=sys.stderr, flush=True)
    return rows


def contention(rows: list[dict[str, Any]]) -> float:
    measured = [r for r in rows if r.get("ok") and r["scenario"] != "idle"]
    return max((report.other_load(r) for r in measured), default=0.0)


def machine_busy(seconds: float = 1.0) -> float:
    """% of all cores busy during ``seconds`` (between jobs: other people's work)."""
    before = meter.core_ticks()
    time.sleep(seconds)
    after = meter.core_ticks()
    busy = sum(b[0] for b in after) - sum(a[0] for a in before)
    total = sum(b[2] for b in after) - sum(a[2] for a in before)
    return 100 * busy / max(1, total)


def wait_calm(limit: float) -> float:
    """Wait (at most ``limit`` seconds) until the machine is calm; how busy it was then."""
    deadline = time.monotonic() + limit
    while (busy := machine_busy()) > CALM and time.monotonic() < deadline:
        time.sleep(1.0)
    return round(busy, 1)


def calm_job(
    target: Target, env: Env, mode: Mode, run: int, scenarios: list[str]
) -> list[dict[str, Any]]:
    """``job``, tried again (up to ``mode.retries`` times) while others load the cores."""
    best: list[dict[str, Any]] = []
    attempts = 0
    while attempts <= mode.retries:
        attempts += 1
        busy = wait_calm(CALM_WAIT) if scenarios != ["idle"] else None
        rows = job(target, env, mode, run, scenarios)
        for row in rows:
            row["machine_busy_before_pct"] = busy
        if not best or contention(rows) < contention(best):
            best = rows
        if not all(r.get("ok") for r in rows) or contention(rows) <= CONTENDED:
            break
        print(f"  (other load {contention(rows):.0f}% on the cores: again)", file=sys.stderr)
    for row in best:
        row["attempts"] = attempts
    return best


def summary(row: dict[str, Any]) -> str:
    if not row.get("ok"):
        return f"{row['scenario']}: FAILED {'; '.join(row.get('errors') or [])[:200]}"
    if row["scenario"] == "fanout":
        return f"fanout: {row['deliveries_per_s']:,} deliveries/s"
    if row["scenario"] == "idle":
        return f"idle: {row['rss_per_conn_bytes']:,} bytes/conn over {row['conns']:,}"
    return f"{row['scenario']}: p50 {row.get('lat_p50_ms')} ms, p99 {row.get('lat_p99_ms')} ms"


def plan(
    mode: Mode, chosen: list[Target], scenarios: list[str], runs: int
) -> list[tuple[Target, int, list[str]]]:
    """(target, run, scenarios) jobs; full mode rotates the target order run by run."""
    jobs = []
    for run in range(1, runs + 1):
        shift = (run - 1) % len(chosen)
        order = chosen[shift:] + chosen[:shift]
        for target in order:
            mine = [s for s in scenarios if s in target.scenarios]
            if not mine:
                continue
            if mode.grouped:
                jobs.append((target, run, mine))
            else:
                jobs += [(target, run, [s]) for s in mine]
    # idle first within a run: it needs a fresh server, and it is the longest to set up
    jobs.sort(key=lambda j: (j[1], targets.ALL.index(j[2][0])))
    return jobs


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--quick", action="store_true", help="smoke run, seconds")
    which.add_argument("--full", action="store_true", help="the measured figures")
    which.add_argument(
        "--rewrite", type=Path, metavar="JSON", help="only redo the tables from raw results"
    )
    p.add_argument("--runs", type=int, help="runs per target (full: 3)")
    p.add_argument("--targets", help="comma-separated, of: " + ",".join(t.name for t in TARGETS))
    p.add_argument("--scenarios", help="comma-separated, of: " + ",".join(targets.ALL))
    p.add_argument("--src", type=Path, default=REPO / "src", help="where chatsupport is (src/)")
    p.add_argument("--out", type=Path, help="Markdown file to write (full: docs/benchmarks.md)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if args.rewrite:
        saved = json.loads(args.rewrite.read_text())
        render(args.out or REPO / "docs" / "benchmarks.md", saved["rows"], saved["meta"], True)
        return 0
    mode = QUICK if args.quick else FULL
    runs = max(1, min(args.runs or mode.runs, 20))
    raise_fd_limit()
    ensure_node_modules(install=not args.quick)
    pinned = cores(mode.pinned)
    env = Env(
        src=args.src.resolve(), logs=RESULTS / "logs", server_cpu=pinned[0] if pinned else None
    )
    wanted = set(args.targets.split(",")) if args.targets else {t.name for t in TARGETS}
    scenarios = args.scenarios.split(",") if args.scenarios else list(targets.ALL)
    if unknown := (wanted - set(targets.BY_NAME)) | (set(scenarios) - set(targets.ALL)):
        print(f"unknown target or scenario: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    skipped = {
        t.name: why for t in TARGETS if t.name in wanted and (why := targets.unavailable(t, env))
    }
    chosen = [t for t in TARGETS if t.name in wanted and t.name not in skipped]
    for name, why in skipped.items():
        print(f"skipping {name}: {why}", file=sys.stderr)
    meta: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(pinned),
        "cores": pinned,
        "scale": mode.scale,
        "skipped": skipped,
    }
    if mode is QUICK:
        meta["note"] = "Quick smoke run: targets in parallel, unpinned, tiny N. Not measurements."
    jobs = plan(mode, chosen, scenarios, runs)
    t0 = time.monotonic()
    rows: list[dict[str, Any]] = []
    if mode.pinned:
        for target, run, group in jobs:
            rows += calm_job(target, env, mode, run, group)
    else:
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            for part in pool.map(lambda j: job(j[0], env, mode, j[1], j[2]), jobs):
                rows += part
    meta["machine"]["ChatSupport build"] = build_of(env.src)
    meta["machine"]["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["machine"]["wall time"] = f"{time.monotonic() - t0:.0f} s"
    write_outputs(args, mode, rows, meta)
    failed = [r for r in rows if not r.get("ok")]
    print(f"{len(rows) - len(failed)}/{len(rows)} scenario runs ok in "
          f"{time.monotonic() - t0:.1f} s", file=sys.stderr)  # fmt: skip
    return 0 if rows and not failed else 1


def write_outputs(
    args: argparse.Namespace, mode: Mode, rows: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = RESULTS / f"{mode.name}-{stamp}.json"
    raw.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    out: Path = args.out or (
        REPO / "docs" / "benchmarks.md" if mode is FULL else RESULTS / "quick.md"
    )
    render(out, rows, meta, plots=mode is FULL)
    print(f"wrote {out} and {raw}", file=sys.stderr)


def render(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any], plots: bool) -> None:
    """The results block of ``out`` (and plots beside it, if asked and matplotlib is there)."""
    made = report.plot(rows, out.parent, out.stem) if plots else []
    block = report.results_block(rows, meta, [p.name for p in made])
    report.write(out, block, "# Benchmarks\n\nSee docs/benchmarks.md for the method.\n")


if __name__ == "__main__":
    sys.exit(main())
