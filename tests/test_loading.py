"""Files at the edge (chatsupport/loading.py): the operator's crisis phrases, help lines and
tokens, or the packaged ones; a broken file is refused with its name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatsupport import loading
from chatsupport.core.crisis import PhraseListError
from chatsupport.core.resources import ResourcesError
from chatsupport.core.roles import hash_line

from .core.test_resources import MINIMAL


def test_the_packaged_files_load() -> None:
    assert loading.crisis_matcher().matches("I want to die")
    assert loading.crisis_matcher("").matches("I want to die")  # an empty setting: packaged
    assert loading.resources().international()  # the packaged lines, checked whole
    assert loading.resources().source == "chatsupport/data/resources.toml"


def test_tokens_file(tmp_path: Path) -> None:
    assert loading.tokens(None) == [] and loading.tokens("") == []
    path = tmp_path / "tokens"
    path.write_text(hash_line("mod", "secret") + "\n# a comment\n", "utf-8")
    (entry,) = loading.tokens(path)
    assert entry.role == "mod" and entry.matches("secret")
    path.write_text("admin sha256$ab$cd\n", "utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}:1")):
        loading.tokens(str(path))


def test_a_phrase_file_replaces_the_packaged_list(tmp_path: Path) -> None:
    path = tmp_path / "phrases.txt"
    path.write_text("# mine\nich will nicht mehr leben\n!nicht mehr leben in berlin\n", "utf-8")
    matcher = loading.crisis_matcher(path)
    assert matcher.matches("Ich will NICHT mehr leben.")
    assert not matcher.matches("I want to die")  # replaced, not added to
    assert loading.crisis_matcher(str(path)).matches("ich will nicht mehr leben")


def test_a_phrase_file_keeps_accents_out_of_the_way(tmp_path: Path) -> None:
    path = tmp_path / "fr.txt"
    path.write_text("me suicider\nenvie de mourir\n", "utf-8")
    matcher = loading.crisis_matcher(path)
    assert matcher.matches("J'ai envie de mourir")
    assert matcher.matches("je veux me suicider")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no (positive) phrases"),
        ("# only comments\n\n", "no (positive) phrases"),
        ("!only negatives\n", "no (positive) phrases"),
        ("fine\n!\n", "has no words"),
        ("fine\n...\n", "has no words"),
    ],
)
def test_bad_phrase_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content, "utf-8")
    with pytest.raises(PhraseListError, match=re.escape(message)) as info:
        loading.crisis_matcher(path)
    assert str(path) in str(info.value)


def test_missing_or_undecodable_file(tmp_path: Path) -> None:
    with pytest.raises(PhraseListError, match="cannot read"):
        loading.crisis_matcher(tmp_path / "missing.txt")
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(PhraseListError, match="cannot read"):
        loading.crisis_matcher(path)


def test_operator_file_replaces_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL, "utf-8")
    res = loading.resources(path)
    assert res.regions() == ["GB"]
    assert res.source == str(path)
    assert loading.resources(str(path)).regions() == ["GB"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ResourcesError, match="cannot read resources file") as info:
        loading.resources(path)
    assert str(path) in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(MINIMAL.replace("Line A", "Ligne \u00e9").encode("latin-1"))
    with pytest.raises(ResourcesError, match="not UTF-8"):
        loading.resources(path)


def test_bad_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('version = 2\n[[resource]\nname = "x"\n', "utf-8")
    with pytest.raises(ResourcesError, match="not valid TOML") as info:
        loading.resources(path)
    assert str(path) in str(info.value)
