from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatsupport import ChatServer

from .helpers import OPEN_CLIENTS, start_server
from .mod_helpers import write_tokens


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: xdist hands tests out in this order, so they run alongside
    the many short ones instead of alone at the end."""
    items.sort(
        key=lambda item: not any(item.iter_markers("slow")) and not any(item.iter_markers("soak"))
    )


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
async def close_clients() -> AsyncIterator[None]:
    yield
    clients = list(OPEN_CLIENTS)
    OPEN_CLIENTS.clear()
    await asyncio.gather(*(client.close() for client in clients))  # at once, not in turn
