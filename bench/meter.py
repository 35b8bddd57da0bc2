"""What the load generator measures besides deliveries: CPU, memory, percentiles.

Everything comes from /proc (Linux): per-process CPU from /proc/PID/stat, RSS and
thread count from /proc/PID/status, per-core busy and softirq time from
/proc/stat. On a shared machine a core is also used by other people's work; the
Meter reports that share ("other") so that contended runs can be told apart.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICK


def proc_status(pids: Sequence[int], key: str) -> int:
    """Sum of one /proc/PID/status field (VmRSS in kB, Threads) over ``pids``."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def core_ticks() -> list[tuple[int, int, int]]:
    """(busy, softirq, total) jiffies of each core; busy includes softirq and steal."""
    cores = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                ticks = [int(x) for x in line.split()[1:]]
                idle = ticks[3] + ticks[4]  # idle, iowait
                cores.append((sum(ticks) - idle, ticks[6], sum(ticks)))
    return cores


def ksoftirqd() -> dict[int, int]:
    """core -> PID of its ksoftirqd thread, which runs deferred network work."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith("ksoftirqd/") and comm[10:].isdigit():
                found[int(comm[10:])] = int(entry.name)
    return found


def only_core(pid: int) -> int | None:
    try:
        cpus = os.sched_getaffinity(pid)
    except OSError:
        return None
    return next(iter(cpus)) if len(cpus) == 1 else None


class Meter:
    """CPU of the server(s), of this process and of each core, between start and stop."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = pids
        self.t = self.server = 0.0
        self.each: list[float] = []  # CPU seconds of each server process at the start
        self.me = (0.0, 0.0)
        self.cores: list[tuple[int, int, int]] = []
        self.kernel = ksoftirqd()
        self.kernel_cpu: dict[int, float] = {}
        self.result: dict[str, Any] = {}

    def start(self) -> None:
        self.t = time.perf_counter()
        self.server = proc_cpu_seconds(self.pids)
        self.each = [proc_cpu_seconds([pid]) for pid in self.pids]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.me = (usage.ru_utime, usage.ru_stime)
        self.cores = core_ticks()
        self.kernel_cpu = {c: proc_cpu_seconds([pid]) for c, pid in self.kernel.items()}

    def stop(self) -> float:
        """Fill ``result``; return the wall time measured."""
        wall = time.perf_counter() - self.t
        usage = resource.getrusage(resource.RUSAGE_SELF)
        user, system = usage.ru_utime - self.me[0], usage.ru_stime - self.me[1]
        mine = 100 * (user + system) / wall
        r = self.result = {"loadgen_cpu_pct": round(mine, 1)}
        r["loadgen_sys_pct"] = round(100 * system / wall, 1)
        busy, softirq = [], []
        for core, ((b0, s0, t0), (b1, s1, t1)) in enumerate(
            zip(self.cores, core_ticks(), strict=True)
        ):
            deferred = 0.0
            if core in self.kernel:
                deferred = proc_cpu_seconds([self.kernel[core]]) - self.kernel_cpu[core]
            busy.append(100 * (b1 - b0) / max(1, t1 - t0))
            softirq.append(100 * (s1 - s0) / max(1, t1 - t0) + 100 * deferred / wall)
        r["cores_busy_pct"] = [round(x, 1) for x in busy]
        r["cores_softirq_pct"] = [round(x, 1) for x in softirq]  # with ksoftirqd's
        gen_core = only_core(os.getpid())
        if gen_core is not None and gen_core < len(busy):
            other = busy[gen_core] - softirq[gen_core] - mine
            r["generator_core_other_pct"] = round(max(0.0, other), 1)
        if self.pids:
            server = 100 * (proc_cpu_seconds(self.pids) - self.server) / wall
            r["server_cpu_pct"] = round(server, 1)
            if len(self.pids) > 1:  # which of them (Redis, a parent, its workers) did the work
                ends = [proc_cpu_seconds([pid]) for pid in self.pids]
                each = [100 * (b - a) / wall for a, b in zip(self.each, ends, strict=True)]
                r["server_cpu_pct_each"] = [round(x, 1) for x in each]
            srv_core = only_core(self.pids[0])
            if srv_core is not None and srv_core < len(busy) and srv_core != gen_core:
                other = busy[srv_core] - softirq[srv_core] - server
                r["server_core_other_pct"] = round(max(0.0, other), 1)
        return wall


def percentiles(samples: list[int]) -> dict[str, float]:
    """p50, p99 and max of nanosecond samples, in milliseconds."""
    if not samples:
        return {"lat_samples": 0}
    samples.sort()
    n = len(samples)

    def ms(q: float) -> float:
        return round(samples[min(n - 1, int(q * n))] / 1e6, 3)

    return {"lat_samples": n, "lat_p50_ms": ms(0.5), "lat_p99_ms": ms(0.99), "lat_max_ms": ms(1.0)}
