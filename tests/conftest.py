from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from playwright.async_api import Playwright, async_playwright

from chatsupport import ChatServer

from .helpers import OPEN_CLIENTS, require, start_server
from .mod_helpers import write_tokens


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: xdist hands tests out in this order, so they run alongside
    the many short ones instead of alone at the end."""
    items.sort(
        key=lambda item: not any(item.iter_markers("slow")) and not any(item.iter_markers("soak"))
    )


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One headless Chromium per test process (each xdist worker), launched by Playwright's
    own browser server (so with the switches `chromium.launch` gives it), stopped by its
    process group; browser tests connect to it (tests/web/test_web.py, `browser`) instead
    of each starting a Chromium of its own."""
    chromium = require("chromium")
    config = tmp_path_factory.mktemp("chromium") / "launch.json"
    options = {"executablePath": chromium, "headless": True, "args": CHROMIUM_ARGS}
    config.write_text(json.dumps({**options, "host": "127.0.0.1", "port": 0}))
    command = [sys.executable, "-m", "playwright", "launch-server", "--browser", "chromium"]
    proc = subprocess.Popen(
        [*command, "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the driver and Chromium under it
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()  # it prints its address once listening
        if not endpoint.startswith("ws://"):
            raise RuntimeError(f"Playwright's browser server did not start: {endpoint!r}")
        yield endpoint
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    """One Playwright driver (a Node process) per test process, in its one event loop: each
    browser test connects through it instead of starting a driver of its own."""
    async with async_playwright() as driver:
        yield driver


@pytest.fixture
async def server() -> AsyncIterator[ChatServer]:
    srv = await start_server()
    yield srv
    await srv.stop()


@pytest.fixture
async def staff_server(tmp_path: Path) -> AsyncIterator[ChatServer]:
    """A server that knows the staff tokens of mod_helpers (MOD_TOKEN, LISTENER_TOKEN)."""
    srv = await start_server(tokens_file=write_tokens(tmp_path))
    yield srv
    await srv.stop()


@pytest.fixture(autouse=True)
async def leftovers() -> AsyncIterator[None]:
    """Every test shares its process's event loop: whatever a test started and left running
    (a server's task, a client's reader) is cancelled when it ends, so the next starts clean."""
    before = asyncio.all_tasks()
    yield
    left = [task for task in asyncio.all_tasks() - before if task is not asyncio.current_task()]
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=5)


@pytest.fixture(autouse=True)
async def close_clients(leftovers: None) -> AsyncIterator[None]:
    yield
    clients = list(OPEN_CLIENTS)
    OPEN_CLIENTS.clear()
    await asyncio.gather(*(client.close() for client in clients))  # at once, not in turn
