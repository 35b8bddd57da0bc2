"""Run the Autobahn TestSuite's fuzzingclient against a fresh ChatSupport server, then score
it for a JSON-answering server (autobahn_score.py). 127.0.0.1 only; the server is stopped
by its PID.

The suite's `wstest` is Python 2 (PyPI `autobahntestsuite`, still Python 2.7 in 25.10.1);
Debian ships no Python 2, so install a 2.7 (pyenv, or any build) and the suite beside it:

    python2.7 -m pip install --target ~/autobahn autobahntestsuite==25.10.1
    python bench/autobahn_run.py --python2 python2.7 --site ~/autobahn \
        --markdown bench/autobahn-report.md

Reports land in bench/results/autobahn/ (ignored by git); the summary is printed and, with
--markdown, written (bench/autobahn-report.md is the latest one kept in the repository).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import autobahn_score
from targets import Env, start_chatsupport

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
# The benchmark's limits (targets.py), and no presence: the suite would take others'
# comings and goings for answers.
SERVER_FLAGS = ["--presence-limit", "0", "--probation-seconds", "0", "--log-level", "WARNING"]
WSTEST = (
    "import site, sys; site.addsitedir(sys.argv[1]); sys.argv = ['wstest'] + sys.argv[2:]; "
    "from autobahntestsuite.wstest import run; run()"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python2", default="python2.7", help="a Python 2.7 interpreter")
    parser.add_argument("--site", required=True, help="where autobahntestsuite is installed")
    parser.add_argument("--cases", default=",".join(FAMILIES), help="e.g. 6.*,7.1.5")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "autobahn")
    parser.add_argument("--markdown", type=Path, help="write the summary here")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for the suite")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    reports = args.out / "reports"
    env = Env(src=ROOT / "src", logs=args.out, server_cpu=None)
    server, port = start_chatsupport(env, "server", "ws", None, SERVER_FLAGS)
    try:
        spec = {
            "outdir": str(reports),
            "servers": [{"agent": "chatsupport", "url": f"ws://127.0.0.1:{port}/ws"}],
            "cases": args.cases.split(","),
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        (args.out / "fuzzingclient.json").write_text(json.dumps(spec, indent=2))
        started = time.monotonic()
        with (args.out / "wstest.log").open("w") as log:
            subprocess.run(
                [args.python2, "-c", WSTEST, args.site, "-m", "fuzzingclient",
                 "-s", str(args.out / "fuzzingclient.json")],
                stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout, check=True,
            )  # fmt: skip
        print(f"suite done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        server.stop()
    summary = ["--markdown", str(args.markdown)] if args.markdown else []
    return autobahn_score.main([str(reports), *summary])


if __name__ == "__main__":
    sys.exit(main())
