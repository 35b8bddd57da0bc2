"""draft/chathistory: parsing queries and picking the messages that answer them."""

from __future__ import annotations

import pytest

from chatsupport.transport.ircproto.history import (
    MsgRef,
    QueryError,
    parse_query,
    select,
    targets,
)
from chatsupport.transport.ircproto.render import irc_time

from .helpers import NOW, message

MESSAGES = [message(i) for i in range(1, 11)]  # ids 1..10, ts NOW+id


def ids(query: list[str]) -> list[int]:
    parsed = parse_query(query, {"lobby"}, 100)
    return [m.id for m in select(parsed, MESSAGES)]


def test_latest() -> None:
    assert ids(["LATEST", "#lobby", "*", "3"]) == [8, 9, 10]
    assert ids(["LATEST", "#lobby", "msgid=lobby.8", "10"]) == [9, 10]
    assert ids(["LATEST", "#lobby", f"timestamp={irc_time(NOW + 8.5)}", "10"]) == [9, 10]


def test_before_after_around() -> None:
    assert ids(["BEFORE", "#lobby", "msgid=lobby.4", "2"]) == [2, 3]
    assert ids(["AFTER", "#lobby", "msgid=lobby.4", "2"]) == [5, 6]
    assert ids(["AFTER", "#lobby", "msgid=lobby.4.2", "2"]) == [5, 6]  # a later line of 4
    assert ids(["AROUND", "#lobby", "msgid=lobby.5", "4"]) == [3, 4, 5, 6]
    assert ids(["AFTER", "#lobby", f"timestamp={irc_time(NOW)}", "100"]) == list(range(1, 11))


def test_between_both_directions() -> None:
    assert ids(["BETWEEN", "#lobby", "msgid=lobby.2", "msgid=lobby.9", "3"]) == [3, 4, 5]
    assert ids(["BETWEEN", "#lobby", "msgid=lobby.9", "msgid=lobby.2", "3"]) == [6, 7, 8]


def test_limit_is_capped() -> None:
    query = parse_query(["LATEST", "#lobby", "*", "1000"], {"lobby"}, 5)
    assert query.limit == 5


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (["LATEST", "#elsewhere", "*", "5"], "INVALID_TARGET"),
        (["LATEST", "lobby", "*", "5"], "INVALID_TARGET"),
        (["BEFORE", "#lobby", "*", "5"], "INVALID_PARAMS"),
        (["AFTER", "#lobby", "msgid=other.3", "5"], "INVALID_PARAMS"),
        (["AFTER", "#lobby", "timestamp=yesterday", "5"], "INVALID_PARAMS"),
        (["AFTER", "#lobby", "msgid=lobby.3", "0"], "INVALID_PARAMS"),
        (["AFTER", "#lobby"], "NEED_MORE_PARAMS"),
        (["SIDEWAYS", "#lobby", "*", "5"], "INVALID_PARAMS"),
    ],
)
def test_bad_queries(params: list[str], code: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(params, {"lobby"}, 100)
    assert caught.value.code == code


def test_targets() -> None:
    query = parse_query(
        ["TARGETS", f"timestamp={irc_time(NOW)}", f"timestamp={irc_time(NOW + 100)}", "10"],
        {"lobby", "help"},
        100,
    )
    assert query.rooms == ("help", "lobby")
    found = targets(query, {"lobby": MESSAGES, "help": []})
    assert found == [("lobby", NOW + 10)]


def test_msgref_of_time() -> None:
    assert MsgRef(ts=5.0).value == 5.0
    assert MsgRef(id=3).value == 3
