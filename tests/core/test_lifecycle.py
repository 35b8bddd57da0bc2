"""A session's life without sockets: the transition table, what is held and kept, and in
which order a resume gives it back (core/lifecycle.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chatsupport.core import events as ev
from chatsupport.core.lifecycle import (
    AWAY_KEPT,
    TRANSITIONS,
    Life,
    LifecycleError,
    State,
    Step,
)
from chatsupport.core.limits import TokenBucket
from chatsupport.core.session import Link, Session

from .harness import Recorder


def person() -> tuple[Session, Link, Recorder]:
    session = Session("u1", "hash", "Kind Owl", "kind owl", TokenBucket(1.0, 8.0), 0.0)
    sink = Recorder()
    return session, Link(sink, session, "key"), sink


def message(room: str, id_: int) -> ev.Message:
    return ev.Message(
        id=id_, room=room, uid="u2", name="Calm Heron", role=None, kind="say", text="hi", ts=0.0
    )


def test_the_table_names_every_state_and_ended_is_final() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.ENDED] == {}
    reachable = {after for steps in TRANSITIONS.values() for after in steps.values()}
    assert reachable == set(State) - {State.NEW}


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (state, step)
        for state in State
        for step in Step
        if step not in TRANSITIONS[state] and step is not Step.REPLAYED
    ],
)
def test_a_step_the_table_does_not_allow_raises(state: State, step: Step) -> None:
    life = Life()
    life.state = state  # set up directly: every pair the table leaves out
    _, link, _ = person()
    steps = {
        Step.CONNECT: lambda: life.connect(link),
        Step.RESTORE: lambda: life.restore(0.0, {}),
        Step.ATTACH: lambda: life.attach(link),
        Step.DETACH: lambda: life.detach(0.0),
        Step.WITHDRAW: life.withdraw,
        Step.END: life.end,
    }
    if state is State.ENDED and step is Step.END:
        assert life.end() is False  # ending twice is not a step: answered, not raised
        return
    with pytest.raises(LifecycleError):
        steps[step]()


def test_away_keeps_direct_events_and_resume_gives_them_before_held_live_ones() -> None:
    session, link, sink = person()
    life = session.life
    life.connect(link)
    life.detach(now=10.0)
    assert (life.state, session.link, session.present) == (State.AWAY, None, True)
    assert life.idle(15.0) == 5.0
    life.direct(ev.Queue(position=2))
    life.withdraw()
    assert not session.present
    life.direct(ev.Queue(position=1))

    rec = Recorder()
    back = Link(rec, session, "key")
    assert life.attach(back) is None
    assert life.idle(20.0) is None and life.held is not None
    life.hold_back("lobby", message("lobby", 7))
    life.hold_back("lobby", message("lobby", 8))
    life.direct(ev.Matched(room="dm-1", partner=ev.Member("u3", "Kind Owl")))
    life.replayed_up_to("lobby", 7)  # the replay sent 7 already: its live copy goes
    life.replayed(back)
    got = rec.events
    assert [type(e).__name__ for e in got] == ["Queue", "Queue", "Message", "Matched"]
    assert got[:2] == [ev.Queue(position=2), ev.Queue(position=1)]
    assert got[2] == message("lobby", 8)
    assert life.state is State.CONNECTED and sink.events == []


def test_only_the_newest_direct_events_are_kept_while_away() -> None:
    session, link, _ = person()
    session.life.connect(link)
    session.life.detach(0.0)
    for position in range(AWAY_KEPT + 5):
        session.life.direct(ev.Queue(position=position))
    rec = Recorder()
    back = Link(rec, session, "key")
    session.life.attach(back)
    session.life.replayed(back)
    assert rec.events == [ev.Queue(position=p) for p in range(5, AWAY_KEPT + 5)]


def test_a_resume_over_an_open_connection_hands_it_back_to_close() -> None:
    session, link, _ = person()
    session.life.connect(link)
    other = Link(Recorder(), session, "key")
    assert session.life.attach(other) is link
    assert session.life.attach(other) is None  # their own token again on it


def test_a_reply_hold_releases_in_order_but_leaves_a_resume_its_turn() -> None:
    session, link, sink = person()
    life = session.life
    life.connect(link)
    with life.hold():
        life.hold_back("lobby", message("lobby", 1))
        assert sink.events == []
    assert sink.events == [message("lobby", 1)]
    with life.hold():
        life.hold_back("lobby", message("lobby", 2))
        life.attach(link)  # a resume began meanwhile: it releases after its replay
    assert len(sink.events) == 1 and life.held is not None
    life.replayed(link)
    assert sink.events == [message("lobby", 1), message("lobby", 2)]


def test_a_closed_resume_keeps_direct_events_and_leaves_room_ones_to_history() -> None:
    session, link, _ = person()
    life = session.life
    life.connect(link)
    life.attach(link)
    life.hold_back("lobby", message("lobby", 3))
    life.direct(ev.Queue(position=1))
    life.detach(5.0)
    rec = Recorder()
    back = Link(rec, session, "key")
    life.attach(back)
    life.replayed(back)
    assert rec.events == [ev.Queue(position=1)]


def test_departed_rooms_wait_for_the_replay() -> None:
    session, link, _ = person()
    life = session.life
    life.connect(link)
    assert not life.replay_to_come
    life.detach(0.0)
    assert life.replay_to_come
    life.departing("dm-1", 3, 9)
    assert dict(life.departed) == {"dm-1": (3, 9)}
    life.departed_given_back()
    assert dict(life.departed) == {}
    assert life.end() and life.state is State.ENDED and session.link is None


SRC = Path(__file__).resolve().parents[2] / "src" / "chatsupport"
MUTATING = {"append", "extend", "clear", "pop", "remove", "insert"}


def _is_life(node: ast.expr) -> bool:
    """`life` or `anything.life`: a session's Life."""
    return (isinstance(node, ast.Name) and node.id == "life") or (
        isinstance(node, ast.Attribute) and node.attr == "life"
    )


def _writes_life(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATING  # life.held.append(...)
        ):
            targets = [node.func.value]
        lines += [
            t.lineno
            for t in targets
            if isinstance(t, ast.Attribute) and t.attr in Life.__slots__ and _is_life(t.value)
        ]
    return lines


def test_only_the_lifecycle_module_writes_a_life() -> None:
    offenders = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "lifecycle.py"
        and (lines := _writes_life(ast.parse(path.read_text(), str(path))))
    }
    assert offenders == {}
    caught = "session.life.link = None\nlife.held.append(x)\nlife.state = 1\nx = life.link\n"
    assert sorted(_writes_life(ast.parse(caught))) == [1, 2, 3]
