from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatsupport import ChatServer

from .helpers import OPEN_CLIENTS, start_server


@pytest.fixture
async def server() -> AsyncIterator[ChatServer]:
    srv = await start_server()
    yield srv
    await srv.stop()


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while OPEN_CLIENTS:
        await OPEN_CLIENTS.pop().close()
