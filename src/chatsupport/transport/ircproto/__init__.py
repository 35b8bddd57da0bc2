"""The IRC protocol, without I/O: parsing, registration, nicks, replies, history.

`connection.IrcConnection` is the whole of it as the transport sees it (bytes and core
events in, lines and actions out); `transport/irc.py` is the thin I/O layer around it.
docs/irc.md describes what maps to what.
"""
