"""Running out of file descriptors, said once: one line with the limit when new connections
cannot be accepted for want of descriptors (EMFILE, ENFILE), one when there is room again;
not one a second. The event loop goes on accepting by itself once descriptors are free
(asyncio retries every second; uvloop/libuv drops the waiting connection and goes on), so
nothing else is needed to recover.

asyncio reports the failed accept to the loop's exception handler (by default a traceback a
second): `handle` takes those over. uvloop reports nothing, so each tick also counts this
process' descriptors once connections come near the limit.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
from typing import Any

log = logging.getLogger("chatsupport.server")

HEADROOM = 16  # descriptors left below the limit that count as out of them


def open_descriptors(limit: int) -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError as error:
        if error.errno in (errno.EMFILE, errno.ENFILE):
            return limit  # not even one left to look
        return None  # not Linux: the exception handler still says it once


class Descriptors:
    """Installed as the loop's exception handler; everything else goes to the one before."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.previous = loop.get_exception_handler()
        self.limit, self.hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.exhausted = False
        loop.set_exception_handler(self.handle)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.get_exception_handler() == self.handle:
            loop.set_exception_handler(self.previous)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
            self._out()
        elif self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def check(self, connections: int) -> None:
        """On each tick, with the number of open connections."""
        if not self.exhausted and connections < self.limit // 2:
            return  # far from the limit: not worth counting
        used = open_descriptors(self.limit)
        if used is None:
            return
        if used >= self.limit - HEADROOM:
            self._out()
        elif self.exhausted and used < self.limit - 2 * HEADROOM:
            self.exhausted = False
            log.info("file descriptors free again (%d of %d in use)", used, self.limit)

    def _out(self) -> None:
        if self.exhausted:
            return
        self.exhausted = True
        log.error(
            "out of file descriptors (limit %d, hard limit %d): new connections are refused "
            "until some close; raise the limit (ulimit -n, systemd LimitNOFILE=)",
            self.limit,
            self.hard,
        )
