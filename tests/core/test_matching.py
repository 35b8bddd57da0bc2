"""One-to-one support: queue, listeners, private rooms, endings, handoff (CONTRACT §8).

Black-box over real sockets. The one thing set from inside is `session.crisis`, which the
safety work sets when a person's words match the crisis list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from chatsupport import ChatServer
from chatsupport.core.roles import hash_line

from ..helpers import TextClient, WsClient, start_server
from .test_resume import cut, resume, texts

TOKENS = (("listener", "lis-1"), ("listener", "lis-2"), ("mod", "mod-1"))


@asynccontextmanager
async def serving(tmp_path: Path, **overrides: Any) -> AsyncIterator[ChatServer]:
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(hash_line(role, token) + "\n" for role, token in TOKENS))
    server = await start_server(tokens_file=str(tokens), **overrides)
    try:
        yield server
    finally:
        await server.stop()


async def listener(server: ChatServer, token: str = "lis-1", on: bool = True) -> WsClient:
    ws = await WsClient.open(server.http_port)
    await ws.request({"type": "auth", "token": token}, "notice")
    if on:
        await ws.request({"type": "listen", "on": True}, "notice")
    return ws


async def seeker(server: ChatServer, position: int | None = None) -> WsClient:
    ws = await WsClient.open(server.http_port)
    queued = await ws.request({"type": "talk"}, "queue")
    if position is not None:
        assert queued["position"] == position
    return ws


async def tcp_listener(server: ChatServer, token: str = "lis-1") -> TextClient:
    tcp = await TextClient.open(server.tcp_port)
    await tcp.send(f"/auth {token}")
    await tcp.expect("-- you are signed in as a listener")
    await tcp.send("/listen on")
    await tcp.expect(lambda s: s.startswith("-- you are available"))
    return tcp


async def say(ws: WsClient, room: str, text: str) -> None:
    """Say and wait for the echo: by then every member has been handed the message."""
    await ws.request({"type": "say", "room": room, "text": text}, "message")


async def nothing_more(ws: WsClient, kind: str, **fields: Any) -> None:
    """A ping/pong sync point, then no frame of `kind` with these fields has arrived."""
    await ws.request({"type": "ping"}, "pong")
    assert not [
        f for f in ws.backlog if f["type"] == kind and all(f.get(k) == v for k, v in fields.items())
    ]


async def test_match_and_chat_privately_over_websocket(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        lis = await listener(server)
        seek = await seeker(server, position=1)
        matched = await seek.expect("matched")
        room = matched["room"]
        assert room.startswith("dm-")
        assert matched["partner"] == {"uid": lis.uid, "name": lis.name, "role": "listener"}
        assert await lis.expect("matched", room=room, partner={"uid": seek.uid, "name": seek.name})

        await say(seek, room, "i have had a hard week")
        got = await lis.expect("message", room=room)
        assert (got["text"], got["uid"]) == ("i have had a hard week", seek.uid)
        await say(lis, room, "i am here, tell me about it")
        got = await seek.expect("message", room=room)
        assert (got["text"], got["role"]) == ("i am here, tell me about it", "listener")


async def test_a_third_peer_cannot_join_list_or_look_into_the_room(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        lis = await listener(server)
        seek = await seeker(server)
        room = (await seek.expect("matched"))["room"]
        await lis.expect("matched")
        other = await WsClient.open(server.http_port)
        refused = await other.request({"type": "join", "room": room}, "error")
        assert refused["code"] == "forbidden"
        refused = await other.request({"type": "who", "room": room}, "error")
        assert refused["code"] == "forbidden"
        listed = await other.request({"type": "rooms"}, "rooms")
        assert [r["name"] for r in listed["rooms"]] == ["lobby"]
        refused = await other.request({"type": "say", "room": room, "text": "hi"}, "error")
        assert refused["code"] == "not_in_room"
        mod = await WsClient.open(server.http_port)  # not even a moderator
        await mod.request({"type": "auth", "token": "mod-1"}, "notice")
        assert (await mod.request({"type": "join", "room": room}, "error"))["code"] == "forbidden"

        tcp = await TextClient.open(server.tcp_port)
        await tcp.send(f"/join {room}")
        assert await tcp.expect(lambda s: s.startswith("!!")) == "!! that room is private"
        await tcp.send(f"/who {room}")
        assert await tcp.expect(lambda s: s.startswith("!!")) == "!! that room is private"
        await tcp.send("/rooms")
        assert await tcp.expect(lambda s: s.startswith("-- rooms:")) == "-- rooms: #lobby (5)"
        await say(seek, room, "only for my listener")
        await nothing_more(other, "message", text="only for my listener")
        await nothing_more(mod, "message", text="only for my listener")


async def test_three_seekers_one_listener_served_in_order(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        seekers = [await seeker(server, position=n) for n in (1, 2, 3)]
        lis = await listener(server)
        first = await seekers[0].expect("matched")
        assert await seekers[1].expect("queue", position=1)
        assert await seekers[2].expect("queue", position=2)

        await seekers[0].request({"type": "leave", "room": first["room"]}, "left")
        ended = await lis.expect("ended", room=first["room"])
        assert ended["reason"] == "partner_left"
        second = await seekers[1].expect("matched")
        assert second["partner"]["uid"] == lis.uid
        assert await seekers[2].expect("queue", position=1)

        await lis.request({"type": "leave", "room": second["room"]}, "left")
        ended = await seekers[1].expect("ended", room=second["room"])
        assert ended["reason"] == "partner_left"
        third = await seekers[2].expect("matched")
        assert await lis.expect("matched", room=third["room"])
        await nothing_more(seekers[0], "matched")


async def test_a_seeker_in_crisis_moves_ahead_behind_earlier_crisis(tmp_path: Path) -> None:
    async with serving(tmp_path, crisis_cooldown=0) as server:  # one listener serves them all
        assert server.chat is not None
        calm = [await seeker(server, position=n) for n in (1, 2)]
        urgent = await seeker(server, position=3)
        # The safety work sets this flag when someone's words match the crisis list; the
        # next message they send moves them ahead.
        server.chat.sessions[urgent.uid].crisis = True
        await say(urgent, "lobby", "i do not want to go on")
        assert await urgent.expect("queue", position=1)
        assert await calm[0].expect("queue", position=2)
        assert await calm[1].expect("queue", position=3)

        later = await WsClient.open(server.http_port)
        server.chat.sessions[later.uid].crisis = True
        assert (await later.request({"type": "talk"}, "queue"))["position"] == 2
        assert await calm[0].expect("queue", position=3)

        lis = await listener(server)
        order = []
        for _ in range(4):
            matched = await lis.expect("matched")
            order.append(matched["partner"]["uid"])
            await lis.request({"type": "leave", "room": matched["room"]}, "left")
        assert order == [urgent.uid, later.uid, calm[0].uid, calm[1].uid]


async def test_disconnect_not_resumed_ends_the_chat_and_frees_the_listener(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, resume_grace=0.5) as server:
        lis = await listener(server)
        gone = await seeker(server)
        room = (await gone.expect("matched"))["room"]
        waiting = await seeker(server, position=1)
        await gone.close()
        # Housekeeping runs every second; the grace is half a second.
        ended = await lis.expect("ended", room=room, timeout=10)
        assert ended["reason"] == "partner_disconnected"
        matched = await waiting.expect("matched", timeout=10)
        assert matched["partner"]["uid"] == lis.uid
        assert await lis.expect("matched", room=matched["room"])
        # Coming back later (within retention, past the grace) does not reopen the chat.
        back = await WsClient.open(server.http_port)
        await back.request({"type": "resume", "session": gone.welcome["session"]}, "resumed")
        refused = await back.request({"type": "say", "room": room, "text": "hello?"}, "error")
        assert refused["code"] == "not_in_room"
        assert (await back.request({"type": "who", "room": room}, "error"))["code"] == "forbidden"


async def talking(server: ChatServer) -> tuple[WsClient, WsClient, str, dict[str, Any]]:
    """A listener and a seeker matched, and the seeker's first words as the listener got them."""
    lis = await listener(server)
    seek = await seeker(server)
    room = (await seek.expect("matched"))["room"]
    await say(seek, room, "one moment, my train")
    return lis, seek, room, await lis.expect("message", room=room)


async def test_a_resumed_seeker_keeps_the_chat(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace=60) as server:
        lis, seek, room, first = await talking(server)
        await seek.close()
        await say(lis, room, "take your time")
        back = await WsClient.open(server.http_port)
        await back.send(
            {"type": "resume", "session": seek.welcome["session"], "last": {room: first["id"]}}
        )
        assert (await back.expect("message", room=room))["text"] == "take your time"
        assert (await back.expect("resumed"))["complete"] is True
        await say(back, room, "back again")
        assert (await lis.expect("message", room=room))["text"] == "back again"
        await nothing_more(lis, "ended")


async def test_a_chat_ended_while_away_is_told_after_its_last_words(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace=60) as server:
        lis, seek, room, first = await talking(server)
        await cut(seek)
        words = ["take your time", "I have to go now; take care"]
        for text in words:
            await say(lis, room, text)
        await lis.request({"type": "leave", "room": room}, "left")
        back, frames = await resume(
            server.http_port, seek.welcome["session"], {"lobby": 0, room: first["id"]}
        )
        assert [f["type"] for f in frames] == [
            "welcome",
            "joined",
            "message",
            "message",
            "ended",
            "notice",  # did it help? (anonymous)
            "resumed",
        ]
        assert frames[0]["uid"] == seek.uid and frames[0]["rooms"] == ["lobby"]
        assert texts(frames) == words  # what was said before the end, then the end
        assert frames[-3] == {"type": "ended", "room": room, "reason": "partner_left"}
        assert frames[-2]["kind"] == "feedback"
        assert frames[-1] == {"type": "resumed", "missed": 2, "complete": True, "ref": "back"}
        refused = await back.request({"type": "say", "room": room, "text": "hello?"}, "error")
        assert refused["code"] == "not_in_room"
        await nothing_more(back, "ended")  # told once


async def test_quit_and_forget_end_the_chat(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        lis = await tcp_listener(server)
        seek = await TextClient.open(server.tcp_port)
        await seek.send("/talk")
        await seek.expect(lambda s: s.startswith("-- you are now talking privately"))
        await seek.send("/quit")
        line = await lis.expect(lambda s: "ended" in s)
        assert line.startswith("-- the private chat #dm-") and line.endswith(
            "ended (partner disconnected)"
        )
        ws = await seeker(server)
        await ws.expect("matched")  # the listener is free again
        await ws.request({"type": "forget"}, "bye")
        assert (await lis.expect(lambda s: "ended" in s)).endswith("(partner disconnected)")


async def test_listener_gone_ends_the_chat_for_the_seeker(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        lis = await tcp_listener(server)
        seek = await seeker(server)
        room = (await seek.expect("matched"))["room"]
        await lis.close()
        ended = await seek.expect("ended", room=room)
        assert ended["reason"] == "partner_disconnected"
        refused = await seek.request({"type": "say", "room": room, "text": "hello?"}, "error")
        assert refused["code"] == "not_in_room"
        assert (await seek.request({"type": "talk"}, "queue"))["position"] == 1


async def test_talk_again_or_leaving_cancels(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        first = await seeker(server, position=1)
        second = await seeker(server, position=2)
        third = await seeker(server, position=3)
        cancelled = await first.request({"type": "talk"}, "notice")
        assert cancelled["kind"] == "talk" and "left the queue" in cancelled["text"]
        assert await second.expect("queue", position=1)
        assert await third.expect("queue", position=2)
        await second.request({"type": "quit"}, "bye")  # leaving the server cancels too
        assert await third.expect("queue", position=1)
        lis = await listener(server)
        matched = await third.expect("matched")
        assert matched["partner"]["uid"] == lis.uid
        await nothing_more(first, "matched")


async def test_an_ignoring_or_reporting_listener_is_skipped(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        assert server.chat is not None
        ignored = await seeker(server, position=1)
        reported = await seeker(server, position=2)
        other = await seeker(server, position=3)
        lis = await listener(server, on=False)
        await lis.request({"type": "ignore", "uid": ignored.uid}, "notice")
        server.chat.reported(lis.uid, reported.uid)
        await lis.request({"type": "listen", "on": True}, "notice")
        matched = await lis.expect("matched")
        assert matched["partner"]["uid"] == other.uid
        await nothing_more(ignored, "matched")
        await nothing_more(reported, "matched")
        assert await other.expect("matched", room=matched["room"])

        second = await listener(server, token="lis-2")
        got = await ignored.expect("matched")
        assert got["partner"]["uid"] == second.uid
        await second.request({"type": "leave", "room": got["room"]}, "left")
        assert (await reported.expect("matched"))["partner"]["uid"] == second.uid


async def test_warm_handoff_keeps_the_conversation(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        old = await listener(server)
        seek = await seeker(server)
        room = (await seek.expect("matched"))["room"]
        await say(seek, room, "it started last spring")
        await say(old, room, "what happened then?")
        refused = await old.request({"type": "handoff", "room": room}, "error")
        assert refused["code"] == "unavailable"  # nobody else is listening yet

        new = await listener(server, token="lis-2")
        ended = await old.request({"type": "handoff", "room": room}, "ended")
        assert ended["reason"] == "handed_over"
        matched = await new.expect("matched", room=room)
        assert matched["partner"]["uid"] == seek.uid
        history = [(await new.expect("message", room=room))["text"] for _ in range(2)]
        assert history == ["it started last spring", "what happened then?"]
        notice = await seek.expect("notice", name=new.name)  # (`kind` is expect's own argument)
        assert notice["kind"] == "handoff" and "no need to start again" in notice["text"]
        await nothing_more(seek, "ended")

        await say(seek, room, "thank you for staying")
        assert (await new.expect("message", room=room))["text"] == "thank you for staying"
        await nothing_more(old, "message", text="thank you for staying")
        refused = await old.request({"type": "join", "room": room}, "error")
        assert refused["code"] == "forbidden"
        # The old listener is free again and takes the next seeker.
        nxt = await seeker(server)
        assert (await nxt.expect("matched"))["partner"]["uid"] == old.uid


async def test_a_listener_can_hold_two_chats(tmp_path: Path) -> None:
    async with serving(tmp_path, listener_capacity=2) as server:
        lis = await listener(server)
        one, two = await seeker(server), await seeker(server)
        rooms = [(await s.expect("matched"))["room"] for s in (one, two)]
        assert len(set(rooms)) == 2
        three = await seeker(server, position=1)
        await say(one, rooms[0], "to the first room")
        await say(two, rooms[1], "to the second room")
        assert (await lis.expect("message", room=rooms[0]))["text"] == "to the first room"
        assert (await lis.expect("message", room=rooms[1]))["text"] == "to the second room"
        await nothing_more(two, "message", text="to the first room")
        await one.request({"type": "leave", "room": rooms[0]}, "left")
        assert (await three.expect("matched"))["partner"]["uid"] == lis.uid


async def test_who_may_listen_talk_and_see_the_queue(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        anyone = await WsClient.open(server.http_port)
        refused = await anyone.request({"type": "listen", "on": True}, "error")
        assert refused["code"] == "forbidden"
        refused = await anyone.request({"type": "queue"}, "error")
        assert refused["code"] == "forbidden"
        tcp = await TextClient.open(server.tcp_port)
        await tcp.send("/listen on")
        assert await tcp.expect(lambda s: s.startswith("!!")) == "!! /listen is for listeners"

        lis = await listener(server)
        await seeker(server)
        await seeker(server)
        mod = await WsClient.open(server.http_port)
        await mod.request({"type": "auth", "token": "mod-1"}, "notice")
        status = await mod.request({"type": "say", "text": "/queue"}, "notice")
        assert status["kind"] == "queue"
        assert status["text"] == (
            "1 waiting for a listener (0 flagged for crisis); "
            "1 one-to-one chats active; 0 listeners free"
        )
        off = await lis.request({"type": "listen", "on": False}, "notice")
        assert "current chat(s) go on" in off["text"]


async def test_a_listener_who_needs_a_listener_is_one_seeker_not_both(tmp_path: Path) -> None:
    """A volunteer on shift asks for a listener: they stop being offered chats (told so,
    before their place in line), are never told that someone (they) waits, and another
    listener is matched with them."""
    async with serving(tmp_path) as server:
        tired = await listener(server, "lis-1")
        queued = await tired.request({"type": "talk"}, "queue")
        # read before the reply came: told first
        stopped = next(f for f in tired.backlog if f["type"] == "notice" and f["kind"] == "listen")
        assert "not be offered new chats" in stopped["text"] and "ref" not in stopped
        assert queued["listeners"] == 0  # not counting themselves
        await nothing_more(tired, "alert")  # "someone is waiting": not to the one waiting
        other = await listener(server, "lis-2")
        matched = await tired.expect("matched")
        assert matched["partner"]["uid"] == other.uid


async def test_one_to_one_through_netcat(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        first = await TextClient.open(server.tcp_port)
        second = await TextClient.open(server.tcp_port)
        bystander = await TextClient.open(server.tcp_port)
        await first.send("/talk")
        assert await first.expect(lambda s: "queue" in s) == (
            "-- you are number 1 in the queue for a listener"
        )
        await second.send("/talk")
        await second.expect("-- you are number 2 in the queue for a listener")

        lis = await tcp_listener(server)
        line = await first.expect(lambda s: s.startswith("-- you are now talking privately"))
        room = line.split("#", 1)[1].split(";", 1)[0]
        assert room.startswith("dm-") and lis.name in line
        await lis.expect(
            lambda s: s.startswith(f"-- you are now talking privately with {first.name}")
        )
        await second.expect("-- you are number 1 in the queue for a listener")

        await first.send("can we talk about my exams")  # a plain line goes to the private room
        assert (
            await lis.expect(lambda s: "exams" in s) == f"<{first.name}> can we talk about my exams"
        )
        await lis.send("of course")
        assert (
            await first.expect(lambda s: "of course" in s) == f"<{lis.name} (listener)> of course"
        )
        await bystander.send(f"/who {room}")
        assert await bystander.expect(lambda s: s.startswith("!!")) == "!! that room is private"
        assert not any("exams" in s or "of course" in s for s in await bystander.until_barrier())

        await first.send("/leave")
        await first.expect(f"-- you left #{room}")
        assert (
            await lis.expect(lambda s: "ended" in s)
            == f"-- the private chat #{room} ended (partner left)"
        )
        await lis.expect(
            lambda s: s.startswith(f"-- you are now talking privately with {second.name}")
        )
        await second.expect(lambda s: s.startswith("-- you are now talking privately"))
        await first.send("back in the lobby")  # the current room is the lobby again
        assert (
            await bystander.expect(lambda s: "back in" in s) == f"<{first.name}> back in the lobby"
        )

        await second.send("/talk")  # already talking: says so, nothing else
        assert (await second.expect(lambda s: s.startswith("!!"))).startswith(
            "!! you are already talking with a listener"
        )
        helper = await tcp_listener(server, token="lis-2")
        await lis.send("/handoff")
        assert (await lis.expect(lambda s: "ended" in s)).endswith("ended (handed over)")
        await helper.expect(
            lambda s: s.startswith(f"-- you are now talking privately with {second.name}")
        )
        assert (await second.expect(lambda s: "taking over" in s)).startswith(
            f"-- {helper.name} is taking over"
        )

        await first.send("/talk")
        await first.expect("-- you are number 1 in the queue for a listener")
        await first.expect(
            lambda s: s.startswith(f"-- you are now talking privately with {lis.name}")
        )


async def test_a_newcomer_in_distress_reaches_a_listener_at_once(tmp_path: Path) -> None:
    """Probation shrinks a newcomer's budget in group rooms, never their access to help."""
    async with serving(tmp_path, probation_seconds=3600) as server:
        lis = await listener(server)
        newcomer = await WsClient.open(server.http_port)
        await newcomer.request(
            {"type": "say", "room": "lobby", "text": "i just want to die"}, "message"
        )
        queued = await newcomer.request({"type": "talk"}, "queue")
        assert queued["position"] == 1
        matched = await newcomer.expect("matched")
        assert matched["partner"]["uid"] == lis.uid
        await lis.expect("matched")

        tcp = await TextClient.open(server.tcp_port)  # the same on netcat
        await tcp.send("/talk")
        assert await tcp.expect(lambda s: "queue" in s) == (
            "-- you are number 1 in the queue for a listener"
        )
