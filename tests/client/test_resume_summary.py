"""The terminal client's one line after a resume (`Client._resumed`), for each way a replay can
fall short: the words must say why, since only some of the reasons mean the messages are gone.
Driven with the core's own `resumed` event and a view that keeps the lines it is shown."""

from __future__ import annotations

from typing import get_args

import pytest

from chatsupport.client.terminal import REPLAY_GAPS, Client
from chatsupport.core import events as ev
from chatsupport.core.vocabulary import ReplayCut

from ..helpers import Lines


def summary_after(resumed: ev.Resumed) -> str:
    view = Lines()
    client = Client("ws://127.0.0.1:1/ws", view, interactive=False)
    client.away = ["lobby"]
    client.state.enter("lobby")
    client._resumed(resumed)
    [line] = view.lines
    return line


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (None, "some older messages are no longer kept"),
        ("overtaken", "more came in meanwhile than could wait, so some are not shown"),
        ("unavailable", "the rest could not be read just now: shown once the server is back"),
    ],
)
def test_a_resume_cut_short_says_why(reason: ReplayCut | None, words: str) -> None:
    line = summary_after(ev.Resumed(missed=0, complete=False, reason=reason))
    assert line == f"-- resumed (0 missed); still in #lobby; {words}"


def test_a_whole_resume_says_nothing_is_missing() -> None:
    assert (
        summary_after(ev.Resumed(missed=0, complete=True))
        == "-- resumed (0 missed); still in #lobby"
    )


def test_every_reason_the_server_gives_has_its_words() -> None:
    assert set(REPLAY_GAPS) == {None, *get_args(ReplayCut)}
