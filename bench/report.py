"""Tables (and optional plots) from benchmark results, as Markdown.

A result row is one scenario of one target in one run: the load generator's JSON
plus ``target`` and ``run``. Figures are medians over the runs that went
through, with min-max; ratios are taken run by run (same run, same machine
state) and their median is shown, as issue 8 asks for side-by-side ratios.
"""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from targets import BY_NAME

Row = dict[str, Any]
BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"


def values(rows: Sequence[Row], target: str, scenario: str, key: str) -> list[float]:
    return [
        float(r[key])
        for r in rows
        if r["target"] == target
        and r["scenario"] == scenario
        and r.get("ok")
        and r.get(key) is not None
    ]


def per_run_ratios(
    rows: Sequence[Row], scenario: str, key: str, ours: str, ref: str
) -> list[float]:
    by_run: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["scenario"] == scenario and r.get("ok") and r.get(key) and r["target"] in (ours, ref):
            by_run.setdefault(r["run"], {})[r["target"]] = float(r[key])
    return [v[ours] / v[ref] for v in by_run.values() if ours in v and ref in v and v[ref]]


def fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def med(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def spread(xs: Sequence[float], digits: int = 0) -> str:
    return f"{fmt(min(xs), digits)}-{fmt(max(xs), digits)}" if xs else "-"


def targets_in(rows: Sequence[Row], scenario: str) -> list[str]:
    seen = {r["target"] for r in rows if r["scenario"] == scenario}
    return [name for name in BY_NAME if name in seen]


def runs_cell(rows: Sequence[Row], target: str, scenario: str) -> str:
    mine = [r for r in rows if r["target"] == target and r["scenario"] == scenario]
    ok = sum(1 for r in mine if r.get("ok"))
    return f"{ok}/{len(mine)}"


def core(rows: Sequence[Row], target: str, scenario: str, index: int) -> float | None:
    xs = [
        float(r["cores_busy_pct"][index])
        for r in rows
        if r["target"] == target and r["scenario"] == scenario and r.get("ok")
        and len(r.get("cores_busy_pct") or ()) > index
    ]  # fmt: skip
    return med(xs)


Column = tuple[str, Callable[[str], str]]


def table(rows: Sequence[Row], scenario: str, columns: Sequence[Column]) -> list[str]:
    names = targets_in(rows, scenario)
    if not names:
        return []
    out = ["| target | " + " | ".join(c[0] for c in columns) + " | runs ok |"]
    out.append("|---" * (len(columns) + 2) + "|")
    for name in names:
        cells = [c[1](name) for c in columns]
        out.append(f"| {name} | " + " | ".join(cells) + f" | {runs_cell(rows, name, scenario)} |")
    return out


def fanout_table(rows: Sequence[Row], cores: tuple[int, int] | None) -> list[str]:
    s = "fanout"

    def v(key: str) -> Callable[[str], list[float]]:
        return lambda t: values(rows, t, s, key)

    def ratio(ref: str) -> Callable[[str], str]:
        return lambda t: fmt(med(per_run_ratios(rows, s, "deliveries_per_s", t, ref)), 2)

    cols: list[Column] = [
        ("deliveries/s (median)", lambda t: fmt(med(v("deliveries_per_s")(t)))),
        ("min-max", lambda t: spread(v("deliveries_per_s")(t))),
        ("x Redis", ratio("redis")),
        ("x Node ws", ratio("node-ws")),
        ("msg/s", lambda t: fmt(med(v("messages_per_s")(t)))),
        ("deliveries per read", lambda t: fmt(med(v("deliveries_per_read")(t)), 1)),
        ("RTT p50 ms", lambda t: fmt(med(v("rtt_p50_ms")(t)), 1)),
        ("server CPU %", lambda t: fmt(med(v("server_cpu_pct")(t)))),
        ("server CPU us/delivery", lambda t: fmt(med(v("server_us_per_delivery")(t)), 2)),
    ]
    if cores:
        cols.append(("server core %", lambda t: fmt(core(rows, t, s, cores[0]))))
        cols.append(("generator core %", lambda t: fmt(core(rows, t, s, cores[1]))))
    cols.append(("generator CPU %", lambda t: busy(med(v("loadgen_cpu_pct")(t)))))
    cols.append(("other load %", lambda t: fmt(med(contention(rows, t, s)))))
    body = table(rows, s, cols)
    if any("(!)" in line for line in body):
        body += ["", GENERATOR_BUSY]
    return body


GENERATOR_BUSY = (
    "(!) the generator process used 90% of its core or more: the kernel's per-segment work of "
    "loopback TCP lands on both cores, so both sides ran out together and the figure is a lower "
    "bound of what the server could deliver to a faster client."
)


def busy(pct: float | None) -> str:
    return fmt(pct) + (" (!)" if pct is not None and pct >= 90 else "")


def other_load(row: Row) -> float:
    """The larger share of the two cores used by neither side (other people's work), %."""
    return max(
        float(row.get("server_core_other_pct", 0)), float(row.get("generator_core_other_pct", 0))
    )


def contention(rows: Sequence[Row], target: str, scenario: str) -> list[float]:
    return [
        other_load(r)
        for r in rows
        if r["target"] == target and r["scenario"] == scenario and r.get("ok")
    ]


def latency_table(rows: Sequence[Row], scenario: str) -> list[str]:
    def v(key: str) -> Callable[[str], list[float]]:
        return lambda t: values(rows, t, scenario, key)

    def ratios(t: str) -> list[float]:
        return per_run_ratios(rows, scenario, "lat_p99_ms", t, "redis")

    cols: list[Column] = [
        ("p50 ms", lambda t: fmt(med(v("lat_p50_ms")(t)), 2)),
        ("p99 ms (median)", lambda t: fmt(med(v("lat_p99_ms")(t)), 2)),
        ("p99 min-max", lambda t: spread(v("lat_p99_ms")(t), 1)),
        ("p99 / Redis p99", lambda t: fmt(med(ratios(t)), 2)),
        ("max ms", lambda t: fmt(med(v("lat_max_ms")(t)), 1)),
        ("deliveries/s", lambda t: fmt(med(v("deliveries_per_s")(t)))),
        ("undelivered", lambda t: fmt(sum(v("undelivered")(t)))),
        ("server CPU %", lambda t: fmt(med(v("server_cpu_pct")(t)), 1)),
        ("server CPU us/delivery", lambda t: fmt(med(v("server_us_per_delivery")(t)), 2)),
        ("generator CPU %", lambda t: fmt(med(v("loadgen_cpu_pct")(t)))),
        ("other load %", lambda t: fmt(med(contention(rows, t, scenario)))),
    ]  # fmt: skip
    return table(rows, scenario, cols)


def idle_table(rows: Sequence[Row]) -> list[str]:
    def v(key: str) -> Callable[[str], list[float]]:
        return lambda t: values(rows, t, "idle", key)

    cols: list[Column] = [
        ("bytes/conn (median)", lambda t: fmt(med(v("rss_per_conn_bytes")(t)))),
        ("min-max", lambda t: spread(v("rss_per_conn_bytes")(t))),
        ("connections", lambda t: fmt(med(v("conns")(t)))),
        ("RSS before MB", lambda t: fmt((med(v("rss_base_kb")(t)) or 0) / 1024, 1)),
        ("RSS after MB", lambda t: fmt((med(v("rss_kb")(t)) or 0) / 1024, 1)),
        ("connect s", lambda t: fmt(med(v("connect_s")(t)), 1)),
        ("server threads", lambda t: fmt(med(v("server_threads")(t)))),
    ]
    return table(rows, "idle", cols)


def verdicts(rows: Sequence[Row], ncpu: int) -> list[str]:
    """Issue 8's targets, from the per-run ratios of this set of results."""

    def check(label: str, xs: list[float], good: Callable[[float], bool], unit: str) -> str:
        m = med(xs)
        if m is None:
            return f"| {label} | not measured | - |"
        return f"| {label} | {fmt(m, 2)}{unit} | {'met' if good(m) else 'NOT met'} |"

    ws_mem = values(rows, "chatsupport-ws", "idle", "rss_per_conn_bytes")
    tcp_mem = values(rows, "chatsupport-tcp", "idle", "rss_per_conn_bytes")
    return [
        "| target (issues 8 and 16) | measured (median of per-run ratios) | verdict |",
        "|---|---|---|",
        check("TCP fan-out >= 1.0x Redis", per_run_ratios(rows, "fanout", "deliveries_per_s",
              "chatsupport-tcp", "redis"), lambda m: m >= 1.0, "x"),
        check("WebSocket fan-out >= 2x Node ws", per_run_ratios(rows, "fanout",
              "deliveries_per_s", "chatsupport-ws", "node-ws"), lambda m: m >= 2.0, "x"),
        check("TCP p99 <= Redis p99", per_run_ratios(rows, "latency", "lat_p99_ms",
              "chatsupport-tcp", "redis"), lambda m: m <= 1.0, "x"),
        check("WebSocket p99 <= Redis p99", per_run_ratios(rows, "latency", "lat_p99_ms",
              "chatsupport-ws", "redis"), lambda m: m <= 1.0, "x"),
        check("TCP idle <= 4 KB/conn", [x / 1024 for x in tcp_mem], lambda m: m <= 4.0, " KB"),
        check("WebSocket idle <= 8 KB/conn", [x / 1024 for x in ws_mem], lambda m: m <= 8.0, " KB"),
        cluster(rows, ncpu),
        *round_two(rows),
    ]  # fmt: skip


def round_two(rows: Sequence[Row]) -> list[str]:
    """Issue 16's targets: the text interface against the C IRC servers, and one busy room
    offered 100 msg/s by few publishers (open loop) at Redis's p99 for under 60 % CPU."""

    def check(label: str, xs: list[float], good: Callable[[float], bool], unit: str) -> str:
        m = med(xs)
        if m is None:
            return f"| {label} | not measured | - |"
        return f"| {label} | {fmt(m, 2)}{unit} | {'met' if good(m) else 'NOT met'} |"

    def ratio(scenario: str, key: str, ours: str, theirs: str) -> list[float]:
        return per_run_ratios(rows, scenario, key, ours, theirs)

    out = [
        check(
            f"TCP fan-out ahead of {irc}",
            ratio("fanout", "deliveries_per_s", "chatsupport-tcp", irc),
            lambda m: m > 1.0,
            "x",
        )
        for irc in ("ngircd", "inspircd")
    ]
    out += [
        check(
            f"TCP idle below {irc}",
            ratio("idle", "rss_per_conn_bytes", "chatsupport-tcp", irc),
            lambda m: m < 1.0,
            "x",
        )
        for irc in ("ngircd", "inspircd")
    ]
    for ours in ("chatsupport-tcp", "chatsupport-ws"):
        kind = "TCP" if ours.endswith("tcp") else "WebSocket"
        out.append(
            check(
                f"{kind} p99 at 100 msg/s (10 publishers) <= Redis p99",
                ratio("open100", "lat_p99_ms", ours, "redis"),
                lambda m: m <= 1.0,
                "x",
            )
        )
        out.append(
            check(
                f"{kind} server CPU at 100 msg/s < 60 %",
                values(rows, ours, "open100", "server_cpu_pct"),
                lambda m: m < 60,
                " %",
            )
        )
    for irc in ("ngircd", "inspircd"):
        out.append(
            check(
                f"TCP p99 at 100 msg/s below {irc}",
                ratio("open100", "lat_p99_ms", "chatsupport-tcp", irc),
                lambda m: m < 1.0,
                "x",
            )
        )
    return out  # fmt: skip


def cluster(rows: Sequence[Row], ncpu: int) -> str:
    """Two nodes vs one: a throughput ratio with a core per node, else CPU per delivery."""
    label = "2 nodes >= 1.6x one node (WS)"
    two, one = "chatsupport-2nodes-ws", "chatsupport-ws"
    if ncpu >= 4:
        ratio = med(per_run_ratios(rows, "fanout", "deliveries_per_s", two, one))
        if ratio is None:
            return f"| {label} | not measured | - |"
        return f"| {label} | {fmt(ratio, 2)}x | {'met' if ratio >= 1.6 else 'NOT met'} |"
    cost2 = med(values(rows, two, "fanout", "server_us_per_delivery"))
    cost1 = med(values(rows, one, "fanout", "server_us_per_delivery"))
    if cost2 is None or cost1 is None:
        return f"| {label} | not measured | - |"
    return (
        f"| {label} | {ncpu} cores: both nodes and Redis share the server core; server CPU per "
        f"delivery {fmt(cost2, 2)} us (2 nodes + Redis) vs {fmt(cost1, 2)} us (1 node) | "
        "not measurable here |"
    )


def problems(rows: Sequence[Row]) -> list[str]:
    out = []
    for r in rows:
        notes = list(r.get("errors") or [])
        if r.get("stalls"):
            notes.append(f"{r['stalls']} publisher stalls")
        if r.get("undelivered"):
            notes.append(f"{r['undelivered']} deliveries not arrived 2 s after the end")
        if r.get("attempts", 1) > 1:
            notes.append(f"{r['attempts']} attempts (other load on the cores), kept the calmest")
        for key in ("conns", "rss_per_conn_bytes", "received_per_conn_bytes"):
            if not r.get("ok") and r.get(key) is not None:
                notes.append(f"{key} {r[key]:,}")
        if r.get("disconnects"):
            notes.append(f"disconnects {r['disconnects']}")
        if notes:
            out.append(f"- run {r['run']}, {r['target']}, {r['scenario']}: " + "; ".join(notes))
    return out


def results_block(rows: Sequence[Row], meta: dict[str, Any], plots: Sequence[str]) -> str:
    cores = meta.get("cores")
    lines = [BEGIN, "", f"Generated by `{meta['command']}` on {meta['date']}.", ""]
    if meta.get("note"):
        lines += [f"**{meta['note']}**", ""]
    lines += ["| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in meta["machine"].items()]
    lines += ["", "Targets:", ""]
    lines += [
        f"- `{t}`: {BY_NAME[t].label}" for t in BY_NAME if any(r["target"] == t for r in rows)
    ]
    lines += [f"- `{t}`: not run ({why})" for t, why in meta.get("skipped", {}).items()]
    sections = [
        ("Issue 8 targets", verdicts(rows, int(meta["machine"].get("nproc") or 1))),
        (f"Fan-out: {meta['scale']['fanout']}", fanout_table(rows, cores)),
        (f"Latency: {meta['scale']['latency']}", latency_table(rows, "latency")),
        (f"One busy room: {meta['scale']['open100']}", latency_table(rows, "open100")),
        (f"One busy room: {meta['scale']['open300']}", latency_table(rows, "open300")),
        (f"Quiet rooms: {meta['scale']['quiet']}", latency_table(rows, "quiet")),
        (f"Memory: {meta['scale']['idle']}", idle_table(rows)),
    ]
    for title, body in sections:
        if body:
            lines += ["", f"### {title}", "", *body]
    lines += [f"\n![{Path(p).stem}]({p})" for p in plots]
    trouble = problems(rows)
    if trouble:
        lines += ["", "### Problems seen", "", *trouble]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def write(path: Path, block: str, preamble: str) -> None:
    """Replace the results block of ``path`` (or create it with ``preamble``)."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = preamble + "\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def plot(rows: Sequence[Row], out_dir: Path, stem: str) -> list[Path]:
    """Bar charts of fan-out and latency, if matplotlib is installed."""
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return []
    made = []
    for scenario, key, title in (
        ("fanout", "deliveries_per_s", "deliveries/s, 1 room (higher is better)"),
        ("latency", "lat_p99_ms", "p99 latency ms (lower is better)"),
    ):
        names = [t for t in targets_in(rows, scenario) if values(rows, t, scenario, key)]
        if not names:
            continue
        meds = [med(values(rows, t, scenario, key)) or 0.0 for t in names]
        lows = [m - min(values(rows, t, scenario, key)) for t, m in zip(names, meds, strict=True)]
        highs = [max(values(rows, t, scenario, key)) - m for t, m in zip(names, meds, strict=True)]
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
        ax.barh(names, meds, xerr=[lows, highs], color="#5b8db8")
        ax.invert_yaxis()
        ax.set_title(title)
        fig.tight_layout()
        path = out_dir / f"{stem}-{scenario}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        made.append(path)
    return made
