"""The terminal client in a terminal: one prompt_toolkit input line that stays for the whole
session, with what arrives printed above it (`patch_stdout`).

Conventions of irssi and WeeChat: Enter sends the line and clears the input (the line is shown
once, when the room echoes it); `/auth TOKEN` shows as `/auth ******` while typed and is never
kept in the input history; Ctrl-C, Ctrl-D on an empty line and `/quit` say goodbye to the
server and exit 0; while the connection is down one status line above the input counts down
to the next attempt and says how many lines wait to be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input.vt100 import Vt100Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.patch_stdout import patch_stdout

from ..core import events as ev
from .render import STYLE, Fragments, Screen, to_ansi
from .terminal import Client, secret, until_done

SECRET_START = len("/auth")


class StaysRaw(Vt100Input):
    """The terminal stays in raw mode while lines are printed above the input.

    prompt_toolkit prints them in "cooked" mode, where the terminal itself handles keys:
    a Ctrl-U pressed just then was eaten by the line discipline (the kept words stayed on
    the input line and went out joined to the next ones), and typed keys were echoed in
    the middle of the output. Raw mode only delays a key until the print is done.
    """

    def cooked_mode(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class HideSecret(Processor):
    """Shows `/auth TOKEN` as `/auth *****` on the input line: the token is never on screen."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        text = ti.document.lines[ti.lineno]
        if not secret(text):
            return Transformation(ti.fragments)
        start = len(text) - len(text.lstrip()) + SECRET_START
        start = ti.source_to_display(start)
        fragments: StyleAndTextTuples = []
        position = 0
        for style, chars, *handler in ti.fragments:
            hidden = "".join(
                "*" if position + i >= start and c != " " else c for i, c in enumerate(chars)
            )
            fragments.append((style, hidden, *handler))  # type: ignore[arg-type]
            position += len(chars)
        return Transformation(fragments)


class TerminalView:
    """What the client shows, laid out for a person (`render.Screen`) and printed above the
    input line; the status line is part of the prompt, so it is redrawn in place."""

    def __init__(self, session: PromptSession[str]) -> None:
        self.session = session
        self.screen = Screen(self.width)

    def width(self) -> int:
        app = self.session.app
        if app.is_running:
            return app.output.get_size().columns
        return shutil.get_terminal_size().columns

    def line(self, text: str) -> None:
        self._print(self.screen.text(text))

    def message(self, event: ev.Message, tag: str, mention: str) -> None:
        self._print(self.screen.message(event, tag, mention))

    def refresh(self) -> None:
        if self.session.app.is_running:
            self.session.app.invalidate()

    def _print(self, rows: list[Fragments]) -> None:
        sys.stdout.write(to_ansi(rows))  # patch_stdout puts it above the input line
        sys.stdout.flush()


def key_bindings(client: Client, session: PromptSession[str]) -> KeyBindings:
    keys = KeyBindings()
    empty = Condition(lambda: not session.default_buffer.text)

    @keys.add("enter")
    def send(event: KeyPressEvent) -> None:
        """Send and clear: the room's echo shows the line (once). A secret is not kept."""
        buffer = event.current_buffer
        text = buffer.text
        if text.strip() and not secret(text):
            buffer.append_to_history()
        buffer.reset()
        if text.strip().lower() == "/quit":
            client.quitting.set()
        else:
            client.submit(text)
        client.offer()  # the next words kept for the person, if any

    @keys.add("c-c")
    @keys.add("<sigint>")
    @keys.add("c-d", filter=empty)
    def leave(event: KeyPressEvent) -> None:
        event.current_buffer.reset()
        client.quitting.set()

    return keys


async def interactive(url: str) -> int:
    session: PromptSession[str] = PromptSession(
        history=InMemoryHistory(), style=STYLE, erase_when_done=True, input=StaysRaw(sys.stdin)
    )
    view = TerminalView(session)
    client = Client(url, view, interactive=True)

    def prompt() -> StyleAndTextTuples:
        status = client.status_text()
        room = f"#{client.state.current or '-'}> "
        above: StyleAndTextTuples = [("class:status", status), ("", "\n")] if status else []
        return [*above, ("class:prompt", room)]

    def offer() -> None:
        """Words not sent (their room is gone) come back on the input line, one at a time,
        never over what the person is typing."""
        buffer = session.default_buffer
        if client.held and session.app.is_running and not buffer.text:
            buffer.text = client.held.popleft()
            buffer.cursor_position = len(buffer.text)
            session.app.invalidate()

    client.offer = offer
    with patch_stdout(raw=True):
        typing = asyncio.create_task(
            session.prompt_async(
                prompt,
                key_bindings=key_bindings(client, session),
                input_processors=[HideSecret()],
                handle_sigint=False,
            )
        )
        try:
            return await until_done(client, typing)
        finally:
            if session.app.is_running:
                session.app.exit()
            with contextlib.suppress(asyncio.CancelledError, EOFError, KeyboardInterrupt):
                await typing
