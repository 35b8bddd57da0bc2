"""Encode once per interface: fan-out hands the same event object to every recipient, so
a one-entry cache per variant turns N encodes into one."""

from __future__ import annotations

import msgspec

from ..core import events as ev
from .render_text import render
from .wsframe import Deflater, text_frame


class TextCodec:
    __slots__ = ("_cache", "help_url")

    def __init__(self, help_url: str | None = None) -> None:
        self._cache: dict[str, tuple[ev.Event, bytes | None]] = {}
        self.help_url = help_url  # the web help page, named in the greeting

    def encode(self, event: ev.Event, room_tag: str = "") -> bytes | None:
        hit = self._cache.get(room_tag)
        if hit is not None and hit[0] is event:
            return hit[1]
        return self._encode(event, room_tag)

    def _encode(self, event: ev.Event, room_tag: str) -> bytes | None:
        text = render(event, room_tag, self.help_url)
        data = text.encode() if text is not None else None
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[room_tag] = (event, data)
        return data


class JsonCodec:
    """Events as complete WebSocket text frames (server frames are unmasked: shareable), and
    the compressed variant for connections that agreed to permessage-deflate, made the first
    time one of them asks, once per event however many of them there are."""

    __slots__ = ("_deflated", "_deflater", "_encoder", "_event", "_frame", "_payload")

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._deflater = Deflater()
        self._event: ev.Event | None = None
        self._payload = b""
        self._frame = b""
        self._deflated: bytes | None = None

    def encode(self, event: ev.Event, deflate: bool = False) -> bytes:
        if event is not self._event:
            self._payload = self._encoder.encode(event)
            self._frame = text_frame(self._payload)
            self._deflated = None
            self._event = event
        if not deflate:
            return self._frame
        if self._deflated is None:
            self._deflated = self._deflater.frame(self._payload, self._frame)
        return self._deflated
