"""Crisis help lines: a TOML file shipped with the package, replaceable by the operator.

``Resources.load()`` reads the packaged ``data/resources.toml``;
``Resources.load(path)`` reads the operator's file. Either is validated whole when
loaded, so a broken file stops the server at start with a ``ResourcesError`` that
names the file and the entry, instead of failing when someone needs help.

``for_region(region)`` gives the lines of the person's region followed by the
international ones; an unknown or missing region gives the international ones only.
The region is whatever the person chose (``/resources GB``), never guessed from a
network address. The file format is described at the top of data/resources.toml
and in docs/crisis-resources.md.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from importlib import resources as importlib_resources
from typing import Any

__all__ = ["INTERNATIONAL", "Resource", "Resources", "ResourcesError"]

#: Region code of lines meant for everyone, shown after the region's own.
INTERNATIONAL = "INT"

DEFAULT_RESOURCES_RESOURCE = "resources.toml"

_FORMAT_VERSION = 1
_MAX_FIELD_LEN = 200
_REGION_CODE = re.compile(r"^(?:[A-Z]{2}|INT)$")
_ALIAS_CODE = re.compile(r"^[A-Z]{2,8}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_TOP_LEVEL_KEYS = frozenset({"version", "updated", "regions", "aliases", "resource"})


class ResourcesError(ValueError):
    """A resources file that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Resource:
    """One help line. At least one of ``phone``, ``sms`` and ``url`` is set.

    ``sms`` is what to text, shown after the word "text": ``"988"`` or
    ``"SHOUT to 85258"``.
    """

    name: str
    region: str
    phone: str | None = None
    sms: str | None = None
    url: str | None = None
    hours: str | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name not in ("name", "region"):
                continue
            _check_text(f.name, value)
        if not _REGION_CODE.match(self.region):
            raise ValueError(
                f"region {self.region!r} is not a two-letter code or {INTERNATIONAL!r}"
            )
        if self.phone is None and self.sms is None and self.url is None:
            raise ValueError("needs at least one of phone, sms, url")
        if self.url is not None and not _URL.match(self.url):
            raise ValueError(f"url {self.url!r} is not an http(s) address")

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready dict with every field (absent ones as ``None``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_line(self) -> str:
        """One plain-text line: ``Samaritans: call 116 123; 24/7; https://... (notes)``."""
        parts: list[str] = []
        if self.phone is not None:
            parts.append(f"call {self.phone}")
        if self.sms is not None:
            parts.append(f"text {self.sms}")
        if self.hours is not None:
            parts.append(self.hours)
        if self.url is not None:
            parts.append(self.url)
        line = f"{self.name}: {'; '.join(parts)}"
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
    def load(cls, path: str | os.PathLike[str] | None = None) -> Resources:
        """Read and validate a resources file; ``None`` reads the packaged one."""
        if path is None:
            ref = importlib_resources.files("chatsupport") / "data" / DEFAULT_RESOURCES_RESOURCE
            return cls.loads(
                ref.read_text(encoding="utf-8"), source="chatsupport/data/resources.toml"
            )
        source = os.fspath(path)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise ResourcesError(f"cannot read resources file {source!r}: {exc}") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResourcesError(f"{source}: not UTF-8: {exc}") from exc
        return cls.loads(text, source=source)

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


def _entry(raw: object, index: int, source: str) -> Resource:
    where = f"{source}: resource {index}"
    if not isinstance(raw, dict):
        raise ResourcesError(f"{where}: must be a table")
    name = raw.get("name")
    if isinstance(name, str):
        where += f" ({name})"
    allowed = {f.name for f in fields(Resource)}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ResourcesError(f"{where}: unknown keys: {', '.join(unknown)}")
    for required in ("name", "region"):
        if required not in raw:
            raise ResourcesError(f"{where}: '{required}' is missing")
    try:
        return Resource(**raw)
    except (TypeError, ValueError) as exc:
        raise ResourcesError(f"{where}: {exc}") from exc
