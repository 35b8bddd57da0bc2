"""Moderation state on a clock we move by hand: expiry, probation, escalation, no sleeping.

The core is I/O-free, so these drive a real Chat and memory broker through `open` /
`handle` / `tick` (the harness: tests/core/harness.py)."""

from __future__ import annotations

import msgspec

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.core.flood import Flood
from chatsupport.core.matching import Matching
from chatsupport.core.moderation import Moderation, duration

from .harness import errors, make_chat, moderator, person


async def test_mute_ban_and_shadow_expire_on_their_own() -> None:
    chat, clock = await make_chat(probation_seconds=0)
    mod, _ = await moderator(chat)
    target, sink = await person(chat, "address-t", "client-t")
    await chat.handle(mod, rq.Mute(uid=target.session.uid, minutes=2))
    await chat.handle(mod, rq.Shadow(uid=target.session.uid, minutes=3))
    sink.take()
    await chat.handle(target, rq.Say(text="hello"))
    assert errors(sink) == ["muted"]
    clock.now += 121
    await chat.tick()
    await chat.handle(target, rq.Say(text="hello"))
    assert errors(sink) == [] and chat.visibility.silenced(target.session.uid)
    clock.now += 60
    await chat.tick()
    assert not chat.visibility.silenced(target.session.uid)

    await chat.handle(mod, rq.Ban(uid=target.session.uid, minutes=1, scope="person"))
    assert sink.closed == "banned"
    refusal = chat.admit("address-t", "client-t")
    assert refusal is not None and refusal.code == "banned" and refusal.resources
    assert chat.admit("address-t", "client-other") is None  # the person, not their network
    assert chat.admit("address-b") is None
    clock.now += 61
    await chat.tick()
    assert chat.admit("address-t", "client-t") is None
    assert chat.feature(Moderation).state.bans == {}


async def test_a_ban_covers_the_address_by_default_as_the_contract_says() -> None:
    chat, clock = await make_chat(probation_seconds=0)
    mod, _ = await moderator(chat)
    target, sink = await person(chat, "address-t", "client-t")
    await chat.handle(mod, rq.Ban(uid=target.session.uid, minutes=5))
    told = [e for e in sink.take() if isinstance(e, ev.Notice) and e.kind == "banned"]
    assert "everyone on your network for 5 minutes" in told[0].text and told[0].resources
    refusal = chat.admit("address-t", "client-other")  # someone else on that network
    assert refusal is not None and refusal.code == "banned" and refusal.resources
    assert "your network" in refusal.message
    assert chat.admit("address-b") is None
    clock.now += 301
    await chat.tick()
    assert chat.admit("address-t", "client-other") is None


async def test_a_person_only_server_bans_the_address_only_when_asked() -> None:
    chat, _ = await make_chat(probation_seconds=0, ban_scope="person")
    mod, _ = await moderator(chat)
    target, _ = await person(chat, "address-t", "client-t")
    await chat.handle(mod, rq.Ban(uid=target.session.uid, minutes=5))
    assert chat.admit("address-t", "client-other") is None
    assert chat.admit("address-t", "client-t") is not None


async def test_an_address_ban_can_be_capped_and_ends_first() -> None:
    chat, clock = await make_chat(probation_seconds=0, address_ban_max=600.0, ban_scope="person")
    mod, _ = await moderator(chat)
    target, sink = await person(chat, "address-t", "client-t")
    await chat.handle(mod, rq.Ban(uid=target.session.uid, minutes=60, scope="address"))
    assert sink.closed == "banned"
    told = [e for e in sink.take() if isinstance(e, ev.Notice) and e.kind == "banned"]
    assert "everyone on your network for 10 minutes" in told[0].text and told[0].resources
    for key, client in (("address-t", ""), ("address-t", "client-new"), ("address-b", "client-t")):
        refusal = chat.admit(key, client)
        assert refusal is not None and refusal.code == "banned", (key, client)
    assert refusal is not None and "to go" in refusal.message  # the person's own ban
    clock.now += 601
    await chat.tick()
    assert chat.admit("address-t", "client-new") is None  # the network is open again
    assert chat.admit("address-b", "client-t") is not None  # the person is still banned


async def test_reports_are_forgotten_after_the_retention() -> None:
    chat, clock = await make_chat(probation_seconds=0, report_retention=3600.0)
    mod, mod_sink = await moderator(chat)
    troll, _ = await person(chat)
    reporter, _ = await person(chat)
    await chat.handle(troll, rq.Say(text="nasty"))
    await chat.handle(reporter, rq.Report(id=1, reason="nasty"))
    assert [type(e) for e in mod_sink.take()].count(ev.Report) == 1
    assert chat.feature(Matching).reported(reporter.session.uid, troll.session.uid)  # never paired
    clock.now += 3599
    await chat.tick()
    await chat.handle(mod, rq.Reports())
    assert [type(e) for e in mod_sink.take()] == [ev.Report, ev.Notice]
    clock.now += 2
    await chat.tick()
    assert await chat.broker.list_reports("open", None, None, 10) == ([], False)
    await chat.handle(mod, rq.Reports())
    listed = mod_sink.take()
    assert [type(e) for e in listed] == [ev.Notice]
    assert isinstance(listed[0], ev.Notice) and listed[0].text == "no open reports"


async def test_reports_keep_at_most_max_reports_and_limit_each_reporter() -> None:
    chat, _ = await make_chat(probation_seconds=0, max_reports=3, reports_per_hour=4)
    trolls = [await person(chat) for _ in range(6)]
    for n, (troll, _) in enumerate(trolls):
        await chat.handle(troll, rq.Say(text=f"nasty {n}"))  # message id n + 1
    reporter, sink = await person(chat)
    for n in range(1, 7):
        await chat.handle(reporter, rq.Report(id=n, reason="nasty"))
    assert errors(sink) == ["rate_limited", "rate_limited"]
    kept, more = await chat.broker.list_reports("open", None, None, 10)
    texts = [msgspec.json.decode(k.event)["evidence"][-1]["text"] for k in kept]
    assert texts == ["nasty 3", "nasty 2", "nasty 1"] and not more  # newest first


async def test_probation_means_a_smaller_budget_then_the_normal_one() -> None:
    chat, clock = await make_chat(probation_seconds=300.0, msg_rate=1.0, msg_burst=8.0)
    state = chat.feature(Flood)
    newcomer, sink = await person(chat)
    mod, _ = await moderator(chat)
    assert state.on_probation(newcomer.session, clock())
    assert not state.on_probation(mod.session, clock())
    for n in range(8):
        await chat.handle(newcomer, rq.Say(text=f"hi {n}"))
    events = sink.take()
    assert sum(isinstance(e, ev.Message) for e in events) == 4  # half the burst
    assert [e.kind for e in events if isinstance(e, ev.Notice)] == ["probation"]

    clock.now += 301
    assert not state.on_probation(newcomer.session, clock())
    await chat.handle(newcomer, rq.Ping())  # any request: the normal budget from now on
    for n in range(10):
        await chat.handle(newcomer, rq.Say(text=f"later {n}"))
    assert sum(isinstance(e, ev.Message) for e in sink.take()) == 8


async def test_repeat_flooders_are_muted_and_moderators_told() -> None:
    chat, clock = await make_chat(
        probation_seconds=0, msg_rate=1.0, msg_burst=2.0, flood_strikes=3, flood_mute_seconds=60
    )
    _, mod_sink = await moderator(chat)
    flooder, sink = await person(chat)
    for n in range(5):
        await chat.handle(flooder, rq.Say(text=f"spam {n}"))
    events = sink.take()
    codes = [e.code for e in events if isinstance(e, ev.Error)]
    assert codes == ["rate_limited"] * 3
    mutes = [e for e in events if isinstance(e, ev.Notice) and e.kind == "mute"]
    assert len(mutes) == 1 and "1 minute" in mutes[0].text
    alerts = [e for e in mod_sink.take() if isinstance(e, ev.Alert)]
    assert [(a.kind, a.uid) for a in alerts] == [("flood", flooder.session.uid)]
    clock.now += 10  # budget back, still muted
    await chat.handle(flooder, rq.Say(text="more"))
    assert errors(sink) == ["muted"]
    clock.now += 51
    await chat.tick()
    await chat.handle(flooder, rq.Say(text="calm now"))
    assert errors(sink) == []


def test_durations_read_the_way_people_say_them() -> None:
    said = [duration(s) for s in (0.2, 1, 30, 60, 90, 3600, 7200, 86400, 30 * 86400)]
    assert said == [
        "1 second",
        "1 second",
        "30 seconds",
        "1 minute",
        "2 minutes",
        "60 minutes",
        "2 hours",
        "24 hours",
        "30 days",
    ]
