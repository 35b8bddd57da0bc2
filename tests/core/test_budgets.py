"""Fair budgets (issue 17), on a clock that never moves unless told: refusals cost nothing,
only floods lead to an automatic mute, and a wrong-token lockout is the guesser's alone."""

from __future__ import annotations

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.core.chat import Chat
from chatsupport.core.roles import FAILURE_WINDOW, FAILURES_ALLOWED
from chatsupport.core.session import Link

from .harness import MOD, Recorder, errors, make_chat, moderator, person

BURST = 8


def mistakes(count: int) -> list[rq.Request]:
    """Requests that are refused, whatever the budget: each kind the issue named and more."""
    kinds: list[rq.Request] = [
        rq.Say(room="nowhere", text="hello?"),  # not_in_room
        rq.Say(room="lobby", text="x" * 2001),  # too_long (it would cost 5 tokens)
        rq.Say(room="lobby", text="/mute"),  # a command's usage wrong
        rq.Kick(uid="u0"),  # forbidden
    ]
    return [kinds[n % len(kinds)] for n in range(count)]


async def say_many(chat: Chat, link: Link, count: int) -> None:
    for n in range(count):
        await chat.handle(link, rq.Say(room="lobby", text=f"m{n}"))


def said(sink: Recorder) -> int:
    return sum(isinstance(e, ev.Message) for e in sink.events)


async def test_refused_requests_cost_nothing_and_the_budget_still_holds() -> None:
    chat, _ = await make_chat(probation_seconds=0, msg_burst=BURST)
    link, sink = await person(chat)
    for request in mistakes(40):
        await chat.handle(link, request)
    assert "rate_limited" not in errors(sink)
    say = rq.Say(room="lobby", text="corrected")
    assert chat.delay(link, say) == 0  # the text interface would not wait either
    await say_many(chat, link, BURST)
    assert said(sink) == BURST and not errors(sink)
    await chat.handle(link, say)  # the clock has not moved: the budget is spent now
    assert errors(sink) == ["rate_limited"]


async def test_mistakes_never_mute_floods_do() -> None:
    chat, _ = await make_chat(probation_seconds=0, msg_burst=BURST, flood_strikes=5)
    link, sink = await person(chat)
    for request in mistakes(50):
        await chat.handle(link, request)
    assert not [e for e in sink.take() if isinstance(e, ev.Notice) and e.kind == "mute"]
    await say_many(chat, link, BURST + 5)  # the budget, then five floods
    notices = [e for e in sink.take() if isinstance(e, ev.Notice)]
    assert [n.kind for n in notices] == ["mute"]


async def test_slow_mode_refusals_are_no_flood() -> None:
    chat, clock = await make_chat(probation_seconds=0, flood_strikes=3)
    mod, _ = await moderator(chat)
    await chat.handle(mod, rq.Slow(room="lobby", seconds=30))
    link, sink = await person(chat)
    await say_many(chat, link, 10)  # one goes out, nine wait for the slow mode
    assert said(sink) == 1 and errors(sink).count("rate_limited") == 9
    clock.now += 31
    await chat.handle(link, rq.Say(room="lobby", text="after the wait"))
    assert said(sink) == 1 and not errors(sink)  # not muted


async def test_wrong_token_lockout_is_the_guessers_and_says_how_long() -> None:
    chat, clock = await make_chat(probation_seconds=0)
    guesser, guesser_sink = await person(chat, "same-network")
    neighbour, neighbour_sink = await person(chat, "same-network")
    for n in range(FAILURES_ALLOWED):
        await chat.handle(guesser, rq.Auth(token=f"wrong{n}"))
    assert errors(guesser_sink) == ["forbidden"] * FAILURES_ALLOWED
    for _ in range(10):  # locked out, even with the right token; never muted for it
        await chat.handle(guesser, rq.Auth(token=MOD))
    refusals = [e for e in guesser_sink.take() if isinstance(e, ev.Error | ev.Notice)]
    assert {(e.code, e.message) for e in refusals if isinstance(e, ev.Error)} == {
        ("rate_limited", "too many wrong tokens; try again in 10 minutes")
    }
    assert not [e for e in refusals if isinstance(e, ev.Notice)]
    # Someone else on the same network signs in at once.
    await chat.handle(neighbour, rq.Auth(token=MOD))
    assert [e.kind for e in neighbour_sink.take() if isinstance(e, ev.Notice)] == ["auth"]
    clock.now += FAILURE_WINDOW / 2
    await chat.handle(guesser, rq.Auth(token=MOD))
    assert [e.message for e in guesser_sink.take() if isinstance(e, ev.Error)] == [
        "too many wrong tokens; try again in 5 minutes"
    ]
    clock.now += FAILURE_WINDOW / 2
    await chat.handle(guesser, rq.Auth(token=MOD))
    assert [e.kind for e in guesser_sink.take() if isinstance(e, ev.Notice)] == ["auth"]


async def test_the_lockout_follows_the_session_to_a_new_connection() -> None:
    chat, _ = await make_chat(probation_seconds=0)
    sink = Recorder()
    link = await chat.open(sink, "address-a")
    welcome = next(e for e in sink.take() if isinstance(e, ev.Welcome))
    for n in range(FAILURES_ALLOWED):
        await chat.handle(link, rq.Auth(token=f"wrong{n}"))
    await chat.close(link, "disconnected")  # kept for a resume
    again = Recorder()
    back = await chat.open(again, "address-b", resume=welcome.session)
    assert back.session is link.session
    await chat.handle(back, rq.Auth(token=MOD))
    assert errors(again) == ["rate_limited"]
