"""Room batches (core/batch.py): a turn's room events, handed out in one pass when sealed,
reach each member as delivering them one at a time would (echo with its ref, nothing from
someone ignored, nothing from before one joined). Sealed here by hand, as the transport's
flusher does at the end of a loop turn."""

from __future__ import annotations

from chatsupport.core import events as ev
from chatsupport.core import lifecycle
from chatsupport.core import requests as rq

from .harness import make_chat, person


def said(events: list[ev.Event]) -> list[tuple[str, str | None]]:
    return [(e.text, e.ref) for e in events if isinstance(e, ev.Message)]


async def test_a_sealed_batch_gives_each_member_what_one_at_a_time_would() -> None:
    chat, _ = await make_chat()
    a, sa = await person(chat, "address-a")
    b, sb = await person(chat, "address-b")
    c, sc = await person(chat, "address-c")
    await chat.handle(c, rq.Ignore(uid=a.session.uid))
    for sink in (sa, sb, sc):
        sink.take()
    chat.batch_with(lambda: None)  # sealed by hand below
    try:
        await chat.handle(a, rq.Say(text="one", ref="r1"))
        await chat.handle(b, rq.Say(text="two"))
        assert (sa.take(), sb.take(), sc.take()) == ([], [], [])  # not sealed yet
        assert chat.seal()  # two events: more than one went out together
        assert said(sa.take()) == [("one", "r1"), ("two", None)]  # its own, with its ref
        assert said(sb.take()) == [("one", None), ("two", None)]
        assert said(sc.take()) == [("two", None)]  # a is ignored
        assert not chat.seal()  # nothing left
    finally:
        await chat.stop()
    assert chat.seal not in lifecycle.SEALERS


async def test_a_newcomer_gets_nothing_said_before_they_joined() -> None:
    chat, _ = await make_chat()
    a, sa = await person(chat, "address-a")
    chat.batch_with(lambda: None)
    try:
        await chat.handle(a, rq.Say(text="before"))
        _, sd = await person(chat, "address-d")  # joining seals what came first
        chat.seal()
        assert said(sd.take()) == []
        await chat.handle(a, rq.Say(text="after"))
        chat.seal()
        assert said(sd.take()) == [("after", None)]
        assert [e.text for e in sa.of(ev.Message)] == ["before", "after"]
    finally:
        await chat.stop()
