"""Crisis help lines: a TOML file shipped with the package, replaceable by the operator.

``Resources.loads(text)`` parses and checks one; chatsupport/loading.py reads the
packaged ``data/resources.toml`` or the operator's file. Either is validated whole when
loaded, so a broken file stops the server at start with a ``ResourcesError`` that
names the file and the entry, instead of failing when someone needs help.

``for_region(region)`` gives the lines of the person's region followed by the
international ones; an unknown or missing region gives the international ones only.
The region is whatever the person chose (``/resources GB``), never guessed from a
network address. The file format is described at the top of data/resources.toml
and in docs/crisis-resources.md.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["CONTACT_KINDS", "INTERNATIONAL", "Contact", "Resource", "Resources", "ResourcesError"]

#: Region code of lines meant for everyone, shown after the region's own.
INTERNATIONAL = "INT"

#: How a person can reach a line: call or text a number, open a web page or a web chat.
CONTACT_KINDS = ("call", "text", "web", "chat")


_FORMAT_VERSION = 2
_MAX_FIELD_LEN = 200
_MAX_BODY_LEN = 40
_REGION_CODE = re.compile(r"^(?:[A-Z]{2}|INT)$")
_ALIAS_CODE = re.compile(r"^[A-Z]{2,8}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
# One number exactly as dialled: digits, an optional leading + (then a full international
# number), and * or # where a real line needs them. No spaces, no words: "999 or 112"
# can never be one value, so no client ever has to pick numbers out of text.
_DIALLABLE = re.compile(r"^(?:\+[1-9][0-9]{5,14}|[*#]?[0-9][0-9*#]{1,19})$")
# A number as people write it: digit groups joined by a space, dot, dash or brackets.
_NUMBER_IN_TEXT = re.compile(r"\+?[0-9*#]+(?:[ .\-()]{1,2}[0-9*#]+)*")
_TOP_LEVEL_KEYS = frozenset({"version", "updated", "regions", "aliases", "resource"})
_VERSION_1_KEYS = frozenset({"phone", "sms", "url"})


class ResourcesError(ValueError):
    """A resources file that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Contact:
    """One way to reach a line: ``call``/``text`` a number, or a ``web``/``chat`` address.

    ``value`` is exactly what is dialled or opened (``"116123"``, ``"+33145394000"``,
    ``"https://..."``); ``label`` is how it is shown (``"116 123"``) and, for a number,
    must show that same number and no other. ``body`` is the keyword a text line asks
    for (text SHOUT to 85258: value ``"85258"``, body ``"SHOUT"``).
    """

    kind: str
    value: str
    label: str = ""  # empty: shown as the value (a web address without its scheme)
    body: str | None = None
    hours: str | None = None
    languages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in CONTACT_KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(CONTACT_KINDS)}")
        _check_text("value", self.value)
        if not self.label:
            object.__setattr__(self, "label", _default_label(self.kind, self.value))
        _check_text("label", self.label)
        _check_optional("hours", self.hours)
        _check_languages(self.languages)
        if self.kind in ("call", "text"):
            self._check_number()
        else:
            self._check_address()

    def _check_number(self) -> None:
        if not _DIALLABLE.match(self.value):
            raise ValueError(
                f"value {self.value!r} is not one number as dialled "
                "(digits only, an optional leading +; one number per contact)"
            )
        shown = _NUMBER_IN_TEXT.findall(self.label)
        if len(shown) != 1 or _dialled(shown[0]) != self.value:
            raise ValueError(
                f"label {self.label!r} must show the number {self.value!r} and no other"
            )
        if self.body is not None:
            if self.kind != "text":
                raise ValueError("body is only for text lines")
            _check_text("body", self.body)
            if len(self.body) > _MAX_BODY_LEN:
                raise ValueError(f"body is longer than {_MAX_BODY_LEN} characters")

    def _check_address(self) -> None:
        if not _URL.match(self.value):
            raise ValueError(f"value {self.value!r} is not an http(s) address")
        if self.body is not None:
            raise ValueError("body is only for text lines")

    def href(self) -> str:
        """The link that reaches this contact: tel:, sms: (with the keyword), or the URL."""
        number = self.value.replace("#", "%23")  # a bare # would start a URL fragment
        if self.kind == "call":
            return f"tel:{number}"
        if self.kind == "text":
            body = f"?body={quote(self.body, safe='')}" if self.body else ""
            return f"sms:{number}{body}"
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (absent ones as ``None``)."""
        return {
            "kind": self.kind,
            "value": self.value,
            "label": self.label,
            "body": self.body,
            "hours": self.hours,
            "languages": list(self.languages),
        }

    def to_text(self) -> str:
        """How it reads in a line of text: ``call 116 123``, ``text SHOUT to 85258``."""
        if self.kind == "call":
            text = f"call {self.label}"
        elif self.kind == "text":
            text = f"text {self.body} to {self.label}" if self.body else f"text {self.label}"
        elif self.kind == "chat":
            text = f"chat {self.value}"
        else:
            text = self.value  # the address itself: on a terminal it is what one copies
        extra = [x for x in (self.hours, ", ".join(self.languages)) if x]
        return f"{text} ({'; '.join(extra)})" if extra else text


def _dialled(shown: str) -> str:
    return "".join(ch for ch in shown if ch.isdigit() or ch in "+*#")


def _default_label(kind: str, value: str) -> str:
    if kind in ("web", "chat"):
        return re.sub(r"^https?://", "", value, flags=re.IGNORECASE).rstrip("/") or value
    return value


@dataclass(frozen=True, slots=True)
class Resource:
    """One help line and the ways to reach it (at least one contact)."""

    name: str
    region: str
    contacts: tuple[Contact, ...]
    hours: str | None = None
    languages: tuple[str, ...] = ()
    notes: str | None = None

    def __post_init__(self) -> None:
        _check_text("name", self.name)
        _check_text("region", self.region)
        _check_optional("hours", self.hours)
        _check_optional("notes", self.notes)
        _check_languages(self.languages)
        if not _REGION_CODE.match(self.region):
            raise ValueError(
                f"region {self.region!r} is not a two-letter code or {INTERNATIONAL!r}"
            )
        if not self.contacts:
            raise ValueError("needs at least one contact (call, text, web or chat)")
        if not all(isinstance(c, Contact) for c in self.contacts):
            raise ValueError("contacts must be Contact objects")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (absent ones as ``None``)."""
        return {
            "name": self.name,
            "region": self.region,
            "contacts": [c.to_dict() for c in self.contacts],
            "hours": self.hours,
            "languages": list(self.languages),
            "notes": self.notes,
        }

    def to_line(self) -> str:
        """One plain-text line: ``Samaritans: call 116 123 · 24/7 · https://... (notes)``."""
        # Numbers, then when and in which languages, then addresses (as the old free text read).
        parts = [c.to_text() for c in self.contacts if c.kind in ("call", "text")]
        parts += [x for x in (self.hours, ", ".join(self.languages)) if x]
        parts += [c.to_text() for c in self.contacts if c.kind in ("web", "chat")]
        line = f"{self.name}: {' · '.join(parts)}"
        return line if self.notes is None else f"{line} ({self.notes})"


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{field} is empty")
    if len(value) > _MAX_FIELD_LEN:
        raise ValueError(f"{field} is longer than {_MAX_FIELD_LEN} characters")
    # No line breaks or escapes: a field must not be able to forge a chat line.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise ValueError(f"{field} contains control or invisible characters")


def _check_optional(field: str, value: object) -> None:
    if value is not None:
        _check_text(field, value)


def _check_languages(value: object) -> None:
    if not isinstance(value, tuple):
        raise ValueError("languages must be a list of strings")
    for language in value:
        _check_text("languages", language)


class Resources:
    """A validated set of help lines, by region."""

    __slots__ = ("_aliases", "_by_region", "_names", "source", "updated")

    def __init__(
        self,
        entries: Iterable[Resource],
        *,
        region_names: Mapping[str, str] | None = None,
        aliases: Mapping[str, str] | None = None,
        updated: str | None = None,
        source: str = "<memory>",
    ) -> None:
        by_region: dict[str, list[Resource]] = {}
        for entry in entries:
            by_region.setdefault(entry.region, []).append(entry)
        if INTERNATIONAL not in by_region:
            raise ResourcesError(f"{source}: no international ({INTERNATIONAL!r}) entry")
        self._by_region = {k: tuple(v) for k, v in by_region.items()}
        self._names = dict(region_names or {})
        self._aliases = {k.upper(): v for k, v in (aliases or {}).items()}
        self.updated = updated
        self.source = source

    # -- loading ------------------------------------------------------------

    @classmethod
    def loads(cls, text: str, *, source: str = "<string>") -> Resources:
        """Parse and validate resources from TOML text."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ResourcesError(f"{source}: not valid TOML: {exc}") from exc
        return cls._from_data(data, source)

    @classmethod
    def _from_data(cls, data: dict[str, Any], source: str) -> Resources:
        unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
        if unknown:
            raise ResourcesError(f"{source}: unknown top-level keys: {', '.join(unknown)}")
        version = data.get("version")
        if version == 1:
            raise ResourcesError(
                f"{source}: this is a version 1 file, whose phone, sms and url were free text; "
                "version 2 lists each number on its own: set version = 2 and replace them "
                'with contacts = [{ kind = "call", value = "116123", label = "116 123" }, '
                '{ kind = "text", value = "85258", body = "SHOUT" }, '
                '{ kind = "web", value = "https://..." }] (see docs/crisis-resources.md)'
            )
        if version != _FORMAT_VERSION:
            raise ResourcesError(
                f"{source}: 'version' must be {_FORMAT_VERSION}, found {version!r}"
            )
        updated = data.get("updated")
        if updated is not None and not isinstance(updated, str):
            raise ResourcesError(f"{source}: 'updated' must be a string")
        names = _string_table(data.get("regions", {}), "regions", source)
        for code in names:
            if not _REGION_CODE.match(code):
                raise ResourcesError(f"{source}: [regions] {code!r} is not a region code")
        aliases = _string_table(data.get("aliases", {}), "aliases", source)
        for alias, code in aliases.items():
            if not _ALIAS_CODE.match(alias) or not _REGION_CODE.match(code):
                raise ResourcesError(f"{source}: [aliases] {alias} = {code!r} is not valid")
        raw_entries = data.get("resource")
        if not isinstance(raw_entries, list) or not raw_entries:
            raise ResourcesError(f"{source}: no [[resource]] entries")
        entries = [_entry(raw, i, source) for i, raw in enumerate(raw_entries, start=1)]
        return cls(entries, region_names=names, aliases=aliases, updated=updated, source=source)

    # -- queries ------------------------------------------------------------

    def regions(self) -> list[str]:
        """Region codes that have their own lines, sorted (``INT`` not included)."""
        return sorted(code for code in self._by_region if code != INTERNATIONAL)

    def region_name(self, region: str) -> str | None:
        """The display name of a region code or alias, if the file gives one."""
        code = self.normalise_region(region)
        return self._names.get(code) if code is not None else None

    def normalise_region(self, region: str | None) -> str | None:
        """The code of *region* (any case, aliases resolved) if known, else None."""
        if region is None:
            return None
        code = region.strip().upper()
        code = self._aliases.get(code, code)
        return code if code in self._by_region else None

    def international(self) -> list[Resource]:
        """The lines for everyone."""
        return list(self._by_region[INTERNATIONAL])

    def for_region(self, region: str | None) -> list[Resource]:
        """The region's own lines, then the international ones.

        ``None`` or an unknown region gives the international lines only.
        """
        code = self.normalise_region(region)
        if code is None or code == INTERNATIONAL:
            return self.international()
        return [*self._by_region[code], *self._by_region[INTERNATIONAL]]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_region.values())

    def __repr__(self) -> str:
        return f"<Resources {len(self)} lines, {len(self.regions())} regions from {self.source}>"


def _string_table(value: object, name: str, source: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ResourcesError(f"{source}: [{name}] must be a table")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ResourcesError(f"{source}: [{name}] {key} must be a string")
    return dict(value)


_ENTRY_KEYS = frozenset({"name", "region", "contacts", "hours", "languages", "notes"})
_CONTACT_KEYS = frozenset({"kind", "value", "label", "body", "hours", "languages"})


def _entry(raw: object, index: int, source: str) -> Resource:
    where = f"{source}: resource {index}"
    if not isinstance(raw, dict):
        raise ResourcesError(f"{where}: must be a table")
    name = raw.get("name")
    if isinstance(name, str):
        where += f" ({name})"
    _check_keys(raw, _ENTRY_KEYS, where)
    for required in ("name", "region", "contacts"):
        if required not in raw:
            raise ResourcesError(f"{where}: '{required}' is missing")
    contacts = raw["contacts"]
    if not isinstance(contacts, list):
        raise ResourcesError(f"{where}: contacts must be a list of tables")
    fields = {**raw, "languages": _languages(raw.get("languages", []), where)}
    fields["contacts"] = tuple(
        _contact(c, f"{where}: contact {i}") for i, c in enumerate(contacts, 1)
    )
    try:
        return Resource(**fields)
    except (TypeError, ValueError) as exc:
        raise ResourcesError(f"{where}: {exc}") from exc


def _contact(raw: object, where: str) -> Contact:
    if not isinstance(raw, dict):
        raise ResourcesError(f"{where}: must be a table")
    _check_keys(raw, _CONTACT_KEYS, where)
    for required in ("kind", "value"):
        if required not in raw:
            raise ResourcesError(f"{where}: '{required}' is missing")
    fields = {**raw, "languages": _languages(raw.get("languages", []), where)}
    try:
        return Contact(**fields)
    except (TypeError, ValueError) as exc:
        raise ResourcesError(f"{where}: {exc}") from exc


def _check_keys(raw: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if not unknown:
        return
    hint = ""
    if _VERSION_1_KEYS & set(unknown):
        hint = " (phone, sms and url are version 1 keys: list each number in contacts)"
    raise ResourcesError(f"{where}: unknown keys: {', '.join(unknown)}{hint}")


def _languages(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ResourcesError(f"{where}: languages must be a list of strings")
    return tuple(value)
