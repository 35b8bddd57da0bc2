"""Score an Autobahn TestSuite fuzzingclient run for a server that answers in JSON.

The suite expects an echo server: it sends a message and waits for the same message back.
ChatSupport answers every frame with JSON instead (`error bad_json` for the suite's
`*****`, a `pong` for a ping frame's JSON...), and greets each connection with `welcome` and
`joined`. So the suite marks every case FAILED ("actual events differ"), then closes with
1001 itself, which hides what the server did. This scorer judges what the cases are about,
the protocol, from the suite's per-case JSON reports:

- events: the server's own frames (`welcome`, `joined`, `presence`) are left out; every
  other data message the server sent is one *answer*, and each message the suite expected
  echoed must have exactly one answer, in order with the pongs and the suite's markers
  (`timeout`); the outcome is the first of OK, NON-STRICT, INFORMATIONAL that matches;
- closing: the suite's own verdict, unless the suite failed the connection itself over the
  events; then, when the server should have failed it first, FAILED; otherwise the server
  must have answered the suite's close with an expected code, or echoed its 1001.

    python bench/autobahn_score.py bench/results/autobahn/reports [--agent chatsupport]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SERVER_OWN = {"welcome", "joined", "presence"}  # sent on connect or for others, not answers
OUTCOMES = ("OK", "NON-STRICT", "INFORMATIONAL")
PASSING = set(OUTCOMES)  # as the suite itself counts them
NOTE = (
    "Made by `bench/autobahn_run.py` (fuzzingclient, wstest 25.10.1) and scored by "
    "`bench/autobahn_score.py`. NON-STRICT and INFORMATIONAL pass, as in the suite's own "
    'reports; docs/protocol.md, "Conformance", says why each NON-STRICT case is so.'
)
_TYPE = re.compile(r'"type":\s*"(\w+)"')
Event = tuple[str, ...]


def answers(events: list[list[Any]], *, received: bool) -> list[Event]:
    """Events as this scorer compares them: data messages become `answer`, pongs and the
    suite's markers stay; what the server sends on its own is left out."""
    out: list[Event] = []
    for event in events:
        kind = event[0]
        if kind == "message":
            found = _TYPE.search(str(event[1])) if received else None
            if found and found[1] in SERVER_OWN:
                continue
            out.append(("answer",))
        elif kind in ("pong", "timeout"):
            out.append((kind, str(event[1])))
        # pings from the server (keepalive) are no answer to anything
    return out


def behaviour(case: dict[str, Any]) -> str:
    if case.get("behavior") == "INFORMATIONAL":
        return "INFORMATIONAL"
    got = answers(case.get("received", []), received=True)
    for outcome in OUTCOMES:
        wanted = case.get("expected", {}).get(outcome)
        if wanted is not None and answers(wanted, received=False) == got:
            return outcome
    return "FAILED"


def closing(case: dict[str, Any]) -> str:
    """The suite's own verdict on the closing handshake, unless the suite failed the
    connection itself over the events (it expected an echo): then what the server did."""
    suite = str(case.get("behaviorClose"))
    if not case.get("failedByMe"):
        return suite
    expected = case.get("expectedClose", {})
    if not expected.get("closedByMe", True):
        return "FAILED"  # the server should have failed the connection first
    remote = case.get("remoteCloseCode")
    if remote in expected.get("closeCode", []):
        return "OK"
    if case.get("localCloseCode") == 1001 and remote == 1001:
        return "OK"  # the suite gave up over the events alone; the server echoed its close
    return "WRONG CODE"


def score_case(case: dict[str, Any]) -> tuple[str, str, str]:
    """(outcome, events verdict, close verdict)."""
    events, close = behaviour(case), closing(case)
    if close not in ("OK", "INFORMATIONAL"):
        return "FAILED", events, close
    return events, events, close


def score(reports: Path, agent: str) -> list[dict[str, Any]]:
    index = json.loads((reports / "index.json").read_text())[agent]
    rows = []
    for case_id in sorted(index, key=lambda c: [int(p) for p in c.split(".")]):
        case = json.loads((reports / index[case_id]["reportfile"]).read_text())
        outcome, events, close = score_case(case)
        rows.append(
            {
                "case": case_id,
                "outcome": outcome,
                "events": events,
                "close": close,
                "suite": f"{case.get('behavior')}/{case.get('behaviorClose')}",
                "remote_close": case.get("remoteCloseCode"),
                "description": re.sub(r"<[^>]+>", " ", case.get("description", ""))[:90],
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], title: str, note: str = "") -> str:
    totals = Counter(row["outcome"] for row in rows)
    families: dict[str, Counter[str]] = {}
    for row in rows:
        families.setdefault(row["case"].split(".")[0], Counter())[row["outcome"]] += 1
    lines = [f"# {title}", ""] + ([note, ""] if note else [])
    lines.append("| family | cases | OK | NON-STRICT | INFORMATIONAL | FAILED |")
    lines.append("|---|---|---|---|---|---|")
    for family in sorted(families, key=int):
        c = families[family]
        lines.append(
            f"| {family} | {sum(c.values())} | {c['OK']} | {c['NON-STRICT']} | "
            f"{c['INFORMATIONAL']} | {c['FAILED']} |"
        )
    lines.append(
        f"| all | {len(rows)} | {totals['OK']} | {totals['NON-STRICT']} | "
        f"{totals['INFORMATIONAL']} | {totals['FAILED']} |"
    )
    others = [row for row in rows if row["outcome"] != "OK"]
    if others:
        lines += ["", "Not plain OK:", "", "| case | outcome | events | close | what |"]
        lines.append("|---|---|---|---|---|")
        lines += [
            f"| {r['case']} | {r['outcome']} | {r['events']} | {r['close']} "
            f"(server sent {r['remote_close']}) | {r['description']} |"
            for r in others
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", type=Path, help="the suite's outdir (with index.json)")
    parser.add_argument("--agent", default="chatsupport")
    parser.add_argument("--markdown", type=Path, help="write the summary here too")
    parser.add_argument("--note", default=NOTE, help="a paragraph under the title")
    args = parser.parse_args(argv)
    rows = score(args.reports, args.agent)
    text = markdown(rows, "Autobahn TestSuite, scored for a JSON-answering server", args.note)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0 if all(row["outcome"] in PASSING for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
