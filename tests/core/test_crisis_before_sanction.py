"""Crisis words come before any sanction: a muted, shadow-muted, slowed or over-budget
person who writes a crisis phrase still gets the help lines privately, and staff are
still alerted (server.features() puts safety before flood control)."""

from __future__ import annotations

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.core.chat import Chat
from chatsupport.core.session import Link

from .harness import LISTENER, Recorder, errors, make_chat, person, staff

CRISIS = "i just want to die"


def helped(sink: Recorder) -> list[ev.Notice]:
    return [e for e in sink.events if isinstance(e, ev.Notice) and e.kind == "resources"]


def alerts(sink: Recorder) -> list[tuple[str, str, int | None]]:
    return [(a.uid, a.text, a.message_id) for a in sink.of(ev.Alert) if a.kind == "crisis"]


async def silenced(
    kind: type[rq.Mute | rq.Shadow],
) -> tuple[Chat, Recorder, Link, Recorder]:
    """A chat, a moderator's sink, and a person the moderator muted (or shadow-muted)."""
    chat, _ = await make_chat()
    mod, mod_sink = await staff(chat)
    target, sink = await person(chat)
    await chat.handle(mod, kind(uid=target.session.uid, minutes=10))
    sink.take(), mod_sink.take()
    return chat, mod_sink, target, sink


async def test_a_muted_person_in_crisis_still_gets_help_and_staff_hear() -> None:
    chat, mod_sink, target, sink = await silenced(rq.Mute)
    _, listener_sink = await staff(chat, LISTENER, "address-l")
    await chat.handle(target, rq.Say(text=CRISIS, room="lobby"))
    assert len(helped(sink)) == 1
    assert errors(sink) == ["muted"]  # still muted: nothing was published
    assert alerts(mod_sink) == [(target.session.uid, CRISIS, None)]
    assert alerts(listener_sink) == [(target.session.uid, CRISIS, None)]
    assert target.session.crisis


async def test_a_shadow_muted_person_in_crisis_still_gets_help_and_staff_hear() -> None:
    chat, mod_sink, target, sink = await silenced(rq.Shadow)
    await chat.handle(target, rq.Me(text="wants to kill myself", room="lobby"))
    assert len(helped(sink)) == 1
    [(uid, text, message_id)] = alerts(mod_sink)
    assert (uid, text) == (target.session.uid, "wants to kill myself") and message_id


async def test_slow_mode_and_an_empty_budget_never_hide_crisis_words() -> None:
    chat, clock = await make_chat(msg_rate=0.1, msg_burst=2, flood_strikes=2)
    mod, mod_sink = await staff(chat)
    await chat.handle(mod, rq.Slow(room="lobby", seconds=600))
    slowed, sink = await person(chat)
    await chat.handle(slowed, rq.Say(text="hello", room="lobby"))
    sink.take(), mod_sink.take()
    await chat.handle(slowed, rq.Say(text=CRISIS, room="lobby"))  # slow mode refuses it
    assert len(helped(sink)) == 1
    assert errors(sink) == ["rate_limited"]
    assert alerts(mod_sink) == [(slowed.session.uid, CRISIS, None)]

    flooding, sink = await person(chat, "address-b")
    await chat.handle(flooding, rq.Join(room="general"))  # no slow mode there
    clock.now += 1000  # another person, who spends their budget on accepted messages
    for n in range(2):
        await chat.handle(flooding, rq.Say(text=f"spam {n}", room="general"))
    sink.take(), mod_sink.take()
    await chat.handle(flooding, rq.Say(text="i want to end my life"))
    await chat.handle(flooding, rq.Say(text="i want to end my life"))
    events = sink.take()
    kinds = [e.kind for e in events if isinstance(e, ev.Notice)]
    # The help lines come first, once; the automatic mute (flood_strikes=2) after.
    assert kinds[0] == "resources" and kinds.count("resources") == 1 and "mute" in kinds
    assert [a.kind for a in mod_sink.of(ev.Alert)] == ["crisis", "flood"]


async def test_a_command_or_ordinary_words_refused_raise_nothing() -> None:
    chat, mod_sink, target, sink = await silenced(rq.Mute)
    await chat.handle(target, rq.Say(text="hello", room="lobby"))
    await chat.handle(target, rq.Say(text="/nosuch i want to die"))
    assert helped(sink) == [] and alerts(mod_sink) == []
    assert not target.session.crisis
