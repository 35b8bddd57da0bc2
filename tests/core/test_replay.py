"""A resume's replay without sockets (core/lifecycle.py `Replay`): it sends while the sink
takes more, leaves the rest to `when_drained`, holds live events meanwhile and releases them
after, and past the held bound ends incomplete with its reason."""

from __future__ import annotations

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.core.chat import Chat
from chatsupport.core.lifecycle import REPLAY_PAGE, State
from chatsupport.core.session import Link

from .harness import Recorder, make_chat, moderator, person

FAST = {"msg_rate": 1e6, "msg_burst": 1e6, "probation_seconds": 0}


class SlowPeer(Recorder):
    """A peer whose outbox fills every `room` events until it is drained."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room, self.since_drained = room, 0

    def send(self, event: ev.Event) -> None:
        super().send(event)
        self.since_drained += 1
        self.backlogged = self.since_drained >= self.room

    async def drain(self) -> None:
        self.since_drained = 0
        await super().drain()


async def away_with_backlog(chat: Chat, count: int) -> tuple[str, Link, int]:
    """A person who left while someone else said `count` messages in the lobby: their
    token, the talker, and the lobby's id when they left."""
    sink = Recorder()
    link = await chat.open(sink, "address-a")
    welcome = next(e for e in sink.events if isinstance(e, ev.Welcome))
    talker, _ = await person(chat, "address-b")
    base = next(e.last or 0 for e in sink.events if isinstance(e, ev.Joined))
    await chat.close(link, "disconnected")
    for n in range(count):
        await chat.handle(talker, rq.Say(text=f"missed {n}"))
    return welcome.session, talker, base


async def resuming(chat: Chat, token: str, last: dict[str, int], peer: SlowPeer) -> Link:
    link = await chat.open(peer, "address-c", resume=token)
    peer.take()
    peer.since_drained = 0  # `welcome` and `joined` were read
    await chat.handle(link, rq.Resume(session=token, last=last, ref="back"))
    return link


def state(link: Link) -> State:
    return link.session.life.state


def texts(events: list[ev.Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, ev.Message)]


async def test_a_replay_goes_at_the_pace_the_peer_drains_then_releases_what_was_held() -> None:
    chat, _ = await make_chat(**FAST)
    count = 3 * REPLAY_PAGE + 7  # several pages of history
    token, talker, base = await away_with_backlog(chat, count)
    peer = SlowPeer(room=10)
    link = await resuming(chat, token, {"lobby": base}, peer)
    assert len(peer.events) == 10 and len(peer.waiting) == 1  # no more until it drains
    await chat.handle(talker, rq.Say(text="live"))  # held behind the replay
    assert state(link) is State.RESUMING
    for _ in range(count):  # bounded: one step per drain
        if not peer.waiting:
            break
        await peer.drain()
    assert not peer.waiting
    events = peer.take()
    assert texts(events) == [f"missed {n}" for n in range(count)] + ["live"]
    assert events[-1] == ev.Resumed(missed=count, complete=True, ref="back")
    assert state(link) is State.CONNECTED
    await chat.handle(talker, rq.Say(text="after"))
    assert texts(peer.take()) == ["after"]  # live from here, nothing held


async def test_past_the_held_bound_the_replay_ends_incomplete_and_live_goes_on() -> None:
    chat, _ = await make_chat(resume_held_limit=3, **FAST)
    mod, _ = await moderator(chat)
    token, talker, base = await away_with_backlog(chat, 2 * REPLAY_PAGE)
    peer = SlowPeer(room=5)
    link = await resuming(chat, token, {"lobby": base}, peer)
    uid = link.session.uid
    await chat.handle(mod, rq.Mute(uid=uid, minutes=1))  # for them alone: never dropped
    for n in range(3):  # the third passes the bound of 3 held: the replay is cut
        await chat.handle(talker, rq.Say(text=f"live {n}"))
    events = peer.take()
    assert texts(events) == [f"missed {n}" for n in range(5)]  # what it had taken
    assert isinstance(events[-2], ev.Notice) and events[-2].kind == "mute"
    assert events[-1] == ev.Resumed(missed=5, complete=False, reason="overtaken", ref="back")
    assert state(link) is State.CONNECTED and chat.counters["resumes_overtaken"] == 1
    await chat.handle(talker, rq.Say(text="live 3"))
    assert texts(peer.take()) == ["live 3"]  # live from the cut on
    await peer.drain()  # the step left waiting finds the replay over: nothing more
    assert peer.take() == []


async def test_a_replay_whose_connection_closed_stops() -> None:
    chat, _ = await make_chat(**FAST)
    token, _, base = await away_with_backlog(chat, REPLAY_PAGE)
    peer = SlowPeer(room=5)
    link = await resuming(chat, token, {"lobby": base}, peer)
    await chat.close(link, "disconnected")
    peer.take()
    await peer.drain()
    assert peer.take() == [] and state(link) is State.AWAY
