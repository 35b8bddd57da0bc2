"""Files at the edge: the operator's tokens, crisis phrases and help lines, read here.

The core never opens a file: these functions read one (or the copy packaged with
chatsupport), hand the text to the core's parsers and return what the features take in
their constructors (server wiring calls them, `server.features`). Each file is read and
checked whole at start, so a broken one stops the start with a message naming it.
"""

from __future__ import annotations

import os
from importlib import resources as packaged
from pathlib import Path

from .core.crisis import CrisisMatcher, PhraseListError
from .core.resources import Resources, ResourcesError
from .core.roles import TokenEntry, parse_tokens

PACKAGE_DATA = "data"
DEFAULT_PHRASES = "crisis_phrases.txt"
DEFAULT_RESOURCES = "resources.toml"

Where = str | os.PathLike[str]


def _packaged(name: str) -> str:
    return (packaged.files("chatsupport") / PACKAGE_DATA / name).read_text(encoding="utf-8")


def tokens(path: Where | None) -> list[TokenEntry]:
    """The tokens file's entries (`chatsupport token add` writes it); none without one."""
    if not path:
        return []
    return parse_tokens(Path(path).read_text(encoding="utf-8"), os.fspath(path))


def crisis_matcher(path: Where | None = None) -> CrisisMatcher:
    """A phrase list (UTF-8, one phrase a line, `#` comments) or, without one, the English
    list shipped with the package (data/crisis_phrases.txt)."""
    if not path:
        return CrisisMatcher(_packaged(DEFAULT_PHRASES).splitlines())
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PhraseListError(f"cannot read phrase list {os.fspath(path)!r}: {exc}") from exc
    try:
        return CrisisMatcher(lines)
    except PhraseListError as exc:
        raise PhraseListError(f"{os.fspath(path)}: {exc}") from exc


def resources(path: Where | None = None) -> Resources:
    """A help lines file (TOML, docs/crisis-resources.md) or, without one, the packaged
    data/resources.toml; validated whole."""
    if path is None:
        text = _packaged(DEFAULT_RESOURCES)
        return Resources.loads(text, source=f"chatsupport/{PACKAGE_DATA}/{DEFAULT_RESOURCES}")
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ResourcesError(f"cannot read resources file {source!r}: {exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResourcesError(f"{source}: not UTF-8: {exc}") from exc
    return Resources.loads(text, source=source)
