"""Command line: `chatsupport serve`, `chatsupport connect`, `chatsupport token add`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from . import config as settings
from . import workers
from .core.ports import BrokerUnavailable
from .core.roles import hash_line
from .core.vocabulary import ROLES
from .server import ChatServer


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help at spaces only, so `--new-conns-window` stays one word."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the server",
        formatter_class=_HelpFormatter,
        allow_abbrev=False,  # `--address-key SECRET` must not be read as --address-key-file
        description="Run the server. Each setting is a flag, a CHATSUPPORT_<FLAG> environment "
        "variable and a key of the --config file (docs/configuration.md); flags win over "
        "variables, variables over the file.",
    )
    serve.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings, named as below with underscores (http_port = 8080); "
        "also CHATSUPPORT_CONFIG",
    )
    # A worker of `--workers N`, started by the parent (workers.py): never typed by people.
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--worker-after", default="", help=argparse.SUPPRESS)
    group = serve.add_argument_group()
    for item in settings.SETTINGS:
        if item.about.heading:
            group = serve.add_argument_group(item.about.heading.lower())
        if not item.flag:
            continue
        shown = f"{item.about.help} (default: {item.shown_default()})"
        group.add_argument(
            item.flag,
            dest=item.name,
            metavar=item.metavar,
            default=None,
            help=shown.replace("%", "%%"),  # argparse formats help with %
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatsupport", description="Anonymous peer-support chat.")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    connect = sub.add_parser("connect", help="the terminal client")
    connect.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/ws")
    token = sub.add_parser("token", help="manage listener/moderator tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    add = token_sub.add_parser("add", help="create a token; prints it once, stores its hash")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--tokens-file", required=True)
    return parser


def setup_logging(level: str, worker: int | None = None) -> None:
    """Logs on standard error; a worker of `--workers N` says which one it is."""
    tag = f"[worker {worker}] " if worker is not None else ""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s",
    )
    # websockets logs client addresses in some messages; keep its chatter out.
    logging.getLogger("websockets").setLevel(logging.WARNING)


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


async def _serve(config: settings.Config, role: workers.Role | None = None) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    if role is not None:
        workers.watch_parent(loop, stopping.set)
    server = ChatServer(config)
    await server.start()
    for url in server.urls.values():
        print(f"listening on {url}", flush=True)
    if role is not None:
        if role.after:  # the worker this one replaces died: its people leave now
            await server.forget_node(role.after)
        print(f"{workers.READY} {server.node}", flush=True)
    await stopping.wait()
    await server.stop("server_shutdown")
    return 0


def serve(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`chatsupport serve`: one process, the parent of `--workers N`, or one of its workers."""
    flags = {s.name: getattr(args, s.name) for s in settings.SETTINGS if s.flag}
    try:
        config = settings.load(flags, args.config)
    except (OSError, ValueError) as error:
        print(f"chatsupport: bad configuration: {error}", file=sys.stderr)
        return 2
    role = None
    if args.worker is not None and args.worker_of is not None:
        role = workers.Role(args.worker, args.worker_of, args.worker_after)
        workers.become_worker(role)
    setup_logging(config.log_level, role.index if role else None)
    if role is None and config.workers > 1:
        return workers.supervise(config, argv)
    loop = _event_loop()
    try:
        return loop.run_until_complete(_serve(config, role))
    except BrokerUnavailable as error:  # e.g. Redis unreachable at start
        print(f"chatsupport: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"chatsupport: cannot listen: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a broken resources or crisis phrases file
        print(f"chatsupport: bad configuration: {error}", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args, argv)
    if args.command == "connect":
        from .client.terminal import run as run_client

        return run_client(args.url)
    return add_token(args.role, args.tokens_file)


def add_token(role: str, tokens_file: str) -> int:
    """`chatsupport token add`: append a new token's hash; print the token once."""
    token = secrets.token_urlsafe(32)
    path = Path(tokens_file)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(hash_line(role, token) + "\n")
    path.chmod(0o600)
    print(f"New {role} token (shown once; keep it secret):\n{token}")
    return 0
