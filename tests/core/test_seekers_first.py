"""Seekers first, and listeners looked after: the queue's order (crisis first, kept across
a resume), the honest waiting room, one request per person and a modest rate, ending and
reporting in one step, repeated reports, the guardrails (capacity, the rest after a crisis
chat, debrief) and the anonymous "did this help?". Socket-free (tests/core/harness.py)."""

from __future__ import annotations

from dataclasses import replace

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.core.chat import Chat
from chatsupport.core.match_rule import Board, Profile, Slot, choose, estimate
from chatsupport.core.session import Link

from .harness import LISTENER, LISTENER_2, Recorder, errors, listening, make_chat, person, staff

CRISIS = "i just want to die"


def queue_of(sink: Recorder) -> list[ev.Queue]:
    return [e for e in sink.events if isinstance(e, ev.Queue)]


def matched(sink: Recorder) -> list[ev.Matched]:
    return [e for e in sink.events if isinstance(e, ev.Matched)]


def notices(sink: Recorder, kind: str) -> list[ev.Notice]:
    return [e for e in sink.events if isinstance(e, ev.Notice) and e.kind == kind]


async def talking(chat: Chat, key: str) -> tuple[Link, Recorder]:
    link, sink = await person(chat, key)
    await chat.handle(link, rq.Talk())
    return link, sink


def profile(uid: str, **fields: object) -> Profile:
    return Profile(ev.Member(uid, uid.upper()), **fields)  # type: ignore[arg-type]


def test_the_rule_serves_in_order_and_keeps_people_apart() -> None:
    people = {u: profile(u) for u in ("s1", "s2", "l1", "l2")}
    people["s1"] = profile("s1", ignored=("l1",))
    board = Board(
        seekers=["s1", "s2"],
        slots=[Slot("l1", 0), Slot("l2", 0)],
        people=people,
        loads={},
        capacity=1,
    )
    pair = choose(board)  # s1 ignored l1: l2 takes s1
    assert pair is not None and (pair.seeker.member.uid, pair.slot) == ("s1", Slot("l2", 0))
    away = replace(board, people={**people, "s1": profile("s1", away=True)})
    pair = choose(away)  # away: passed over (keeps their place)
    assert pair is not None and (pair.seeker.member.uid, pair.slot.uid) == ("s2", "l1")
    rest = replace(board, resting={"l2"}, apart={("l1", "s2")})
    assert choose(rest) is None  # l2 rests, l1 is kept from both
    full = replace(board, loads={"l1": 1, "l2": 1})
    assert choose(full) is None


def test_the_estimate_is_from_recent_waits_or_none() -> None:
    assert estimate([], 1, 2) is None
    assert estimate([30.0, 60.0, 600.0], 1, 0) is None  # nobody on: no honest estimate
    assert estimate([30.0, 60.0, 600.0], 1, 2) == 60
    assert estimate([30.0, 60.0, 600.0], 5, 2) == 180  # three rounds of two listeners


async def test_crisis_goes_first_and_stays_first_across_a_resume() -> None:
    chat, _ = await make_chat()
    calm, calm_sink = await talking(chat, "a")
    urgent, urgent_sink = await talking(chat, "b")
    assert [q.position for q in queue_of(urgent_sink)] == [2]
    await chat.handle(urgent, rq.Say(text=CRISIS, room="lobby"))
    assert [q.position for q in queue_of(urgent_sink)][-1] == 1
    assert [q.position for q in queue_of(calm_sink)][-1] == 2

    await chat.close(urgent, "network")  # dropped: away, keeps the place
    back = Recorder()
    link = await chat.open(back, "b")
    old = urgent.session
    await chat.handle(link, rq.Resume(session=urgent_sink.token))
    assert link.session is old
    assert [q.position for q in queue_of(back)] == [1]  # told afresh, still first
    assert await chat.broker.queued("match:seekers") == [old.uid, calm.session.uid]
    _, lis_sink = await listening(chat)
    assert [m.partner.uid for m in matched(lis_sink)] == [old.uid]


async def test_the_waiting_room_is_honest_and_carries_a_note() -> None:
    chat, clock = await make_chat()
    seeker, sink = await talking(chat, "a")
    [queued] = queue_of(sink)
    assert (queued.position, queued.listeners, queued.wait) == (1, 0, None)  # nobody on
    await chat.handle(seeker, rq.Talk(note="exams, and my family"))
    assert [n.kind for n in sink.of(ev.Notice)] == ["talk"]  # kept, still waiting
    assert await chat.broker.queued("match:seekers") == [seeker.session.uid]

    clock.now += 90  # waited a minute and a half
    lis, lis_sink = await listening(chat)
    [got] = matched(lis_sink)
    assert (got.partner.uid, got.note) == (seeker.session.uid, "exams, and my family")
    [got] = matched(sink)
    assert got.note is None  # the seeker's own note is not sent back to them

    # The next seeker hears how many are on and what recent waits suggest.
    await chat.handle(lis, rq.Listen(on=False))
    await chat.handle(lis, rq.Listen(on=True))
    _, later_sink = await talking(chat, "b")
    [queued] = queue_of(later_sink)
    assert (queued.position, queued.listeners, queued.wait) == (1, 1, 90)


async def test_one_open_request_per_person_and_a_modest_rate() -> None:
    chat, _ = await make_chat(talk_requests=2)
    seeker, sink = await talking(chat, "a")
    await chat.handle(seeker, rq.Talk())  # again: leaves the queue (never a second place)
    await chat.handle(seeker, rq.Talk())  # second join
    assert await chat.broker.queued("match:seekers") == [seeker.session.uid]
    await chat.handle(seeker, rq.Talk())  # leaving is never limited
    await chat.handle(seeker, rq.Talk())  # a third join in ten minutes: refused
    assert errors(sink) == ["rate_limited"]
    await chat.handle(seeker, rq.Say(text=CRISIS, room="lobby"))
    await chat.handle(seeker, rq.Talk())  # someone in crisis is never refused
    assert errors(sink) == []
    assert await chat.broker.queued("match:seekers") == [seeker.session.uid]


async def test_a_listener_can_end_and_report_in_one_step() -> None:
    chat, _ = await make_chat(reports_alert_after=2)
    _, mod_sink = await staff(chat)
    lis, lis_sink = await listening(chat)
    seeker, sink = await talking(chat, "a")
    [match] = matched(lis_sink)
    await chat.handle(seeker, rq.Say(text="you are useless", room=match.room))
    lis_sink.take(), mod_sink.take()
    await chat.handle(lis, rq.End(room=match.room, report="abusive"))
    assert [type(e) for e in lis_sink.take()] == [ev.Notice, ev.Left]
    [report] = mod_sink.of(ev.Report)
    assert (report.uid, report.reason, report.evidence[-1].text) == (
        seeker.session.uid,
        "abusive",
        "you are useless",
    )
    ended = [e for e in sink.events if isinstance(e, ev.Ended)]
    assert [(e.room, e.reason) for e in ended] == [(match.room, "partner_left")]
    # Never matched again; the listener is free for the next seeker.
    await chat.handle(seeker, rq.Talk())
    assert matched(lis_sink) == []
    other, _ = await talking(chat, "b")
    assert [m.partner.uid for m in matched(lis_sink)] == [other.session.uid]

    # A second report about the same person (reports_alert_after=2) brings a moderator in.
    _, witness_sink = await person(chat, "c")
    witness = next(link for link in chat.links if link.sink is witness_sink)
    await chat.handle(seeker, rq.Say(text="everyone here is useless", room="lobby"))
    await chat.handle(witness, rq.Report(uid=seeker.session.uid, reason="rude"))
    alerts = [a for a in mod_sink.of(ev.Alert) if a.kind == "reports"]
    assert [(a.uid, "2 times" in a.text) for a in alerts] == [(seeker.session.uid, True)]


async def test_capacity_rest_after_a_crisis_chat_and_debrief() -> None:
    chat, clock = await make_chat(listener_capacity=1, crisis_cooldown=120)
    _, mod_sink = await staff(chat)
    lis, lis_sink = await listening(chat)
    first, first_sink = await talking(chat, "a")
    _, second_sink = await talking(chat, "b")
    [match] = matched(lis_sink)
    assert matched(second_sink) == []  # capacity 1: the second waits
    await chat.handle(first, rq.Say(text=CRISIS, room=match.room))
    lis_sink.take()
    await chat.handle(first, rq.Leave(room=match.room))
    assert [n.kind for n in lis_sink.of(ev.Notice)] == ["rest"]
    assert [n.kind for n in first_sink.of(ev.Notice)][-1] == "feedback"
    await chat.tick()
    assert matched(second_sink) == []  # resting
    await chat.handle(lis, rq.Debrief(note="that one stays with me"))
    [alert] = [a for a in mod_sink.of(ev.Alert) if a.kind == "debrief"]
    assert (alert.uid, alert.text) == (lis.session.uid, "that one stays with me")
    assert [n.kind for n in lis_sink.of(ev.Notice)] == ["debrief"]
    clock.now += 121
    await chat.tick()
    assert [m.partner.uid for m in matched(second_sink)] == [lis.session.uid]


async def test_did_it_help_is_counted_once_and_kept_with_nobody() -> None:
    chat, _ = await make_chat()
    lis, lis_sink = await listening(chat)
    seeker, sink = await talking(chat, "a")
    await chat.handle(seeker, rq.Feedback(answer="helpful"))
    assert errors(sink) == ["bad_request"]  # no chat has ended yet
    [match] = matched(lis_sink)
    await chat.handle(lis, rq.End(room=match.room))
    assert [n.kind for n in sink.of(ev.Notice)] == ["feedback"]
    await chat.handle(seeker, rq.Feedback(answer="helpful"))
    await chat.handle(seeker, rq.Feedback(answer="helpful"))  # once per ended chat
    assert errors(sink) == ["bad_request"]
    await chat.handle(lis, rq.Feedback(answer="helpful"))  # listeners are not asked
    assert errors(lis_sink) == ["bad_request"]
    assert chat.counters["feedback_helpful"] == 1


async def test_only_listeners_debrief_and_a_second_listener_takes_over() -> None:
    chat, _ = await make_chat()
    somebody, sink = await person(chat)
    await chat.handle(somebody, rq.Debrief())
    assert errors(sink) == ["forbidden"]
    lis, lis_sink = await listening(chat)
    _, seeker_sink = await talking(chat, "a")
    [match] = matched(lis_sink)
    other, other_sink = await listening(chat, LISTENER_2)
    await chat.handle(lis, rq.Handoff(room=match.room, note="they like to talk about music"))
    [notice] = notices(seeker_sink, "handoff")
    assert notice.name == other.session.name and "music" in notice.text
    assert "music" in notices(other_sink, "handoff")[0].text


async def test_listeners_hear_someone_waits_and_can_offer_a_chat() -> None:
    chat, _ = await make_chat()
    lis, lis_sink = await staff(chat, LISTENER, "address-l")  # signed in, not listening
    seeker, sink = await talking(chat, "a")
    [alert] = lis_sink.of(ev.Alert)
    assert (alert.kind, alert.uid, alert.name) == ("waiting", "", "")  # never who
    other, other_sink = await person(chat, "b")
    await chat.handle(other, rq.Say(text=CRISIS, room="lobby"))
    lis_sink.take()
    await chat.handle(lis, rq.Offer(uid=other.session.uid))
    [offer] = notices(other_sink, "offer")
    assert offer.name == lis.session.name
    # Offering makes the listener available: the seeker waiting is theirs now.
    assert [m.partner.uid for m in matched(lis_sink)] == [seeker.session.uid]
    assert [m.partner.uid for m in matched(sink)] == [lis.session.uid]
