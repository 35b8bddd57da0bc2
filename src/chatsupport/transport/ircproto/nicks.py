"""ChatSupport names <-> IRC nicks: one reversible mapping, the same for every client.

ChatSupport names may contain spaces and `. ' _ -` besides letters and digits ("Quiet
Otter", "Dr. O'Neil"); IRC nicks may contain none of space, `.` or `'`, and may not start
with a digit or `-`. Each character that cannot stand in a nick maps to one that never
occurs in a name:

    space -> _     _ -> ^     . -> |     ' -> `

and a name starting with a digit or `-` gets a leading `_` (a name never starts with a
space, so a leading `_` is never a mapped space). Letters (any alphabet), digits and `-`
stay as they are. So "Quiet Otter" is `Quiet_Otter`, "Dr. O'Neil" is `Dr|_O`Neil`,
"2cool" is `_2cool`.

The mapping is a bijection between valid names and their nicks: two different names
never share a nick, and `to_name(to_nick(n)) == n`. Names are unique by their look-alike
key in the core, so nicks are unique too (the core decides what is taken; this module
only translates). A nick a client asks for is translated back with `to_name`; whatever
is not a valid name after that is refused by the core's own name rules.
"""

from __future__ import annotations

_TO_NICK = str.maketrans({" ": "_", "_": "^", ".": "|", "'": "`"})
_TO_NAME = str.maketrans({"_": " ", "^": "_", "|": ".", "`": "'"})
LEAD = "_"  # marks a name that starts with a digit or `-`
SERVICE = "ChatSupport"  # the nick product notices come from (a reserved name in the core)


def to_nick(name: str) -> str:
    nick = name.translate(_TO_NICK)
    if nick[:1].isdigit() or nick.startswith("-"):
        nick = LEAD + nick
    return nick


def to_name(nick: str) -> str:
    """The name a nick stands for. Lenient for nicks a client asks for: the result is
    checked by the core like any name typed elsewhere."""
    if nick.startswith(LEAD) and (nick[1:2].isdigit() or nick[1:2] == "-"):
        nick = nick[1:]
    return nick.translate(_TO_NAME)


def same_nick(a: str, b: str) -> bool:
    """Nicks compare without case (the casemapping this server announces is `ascii`)."""
    return a.lower() == b.lower()
