"""Crisis help lines: the packaged file, region fallback, operator files, bad files."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from chatsupport.core.resources import INTERNATIONAL, Resource, Resources, ResourcesError

PACKAGED = Resources.load()

MINIMAL = """
version = 1
updated = "2026-11"

[regions]
GB = "United Kingdom"

[aliases]
UK = "GB"

[[resource]]
region = "INT"
name = "Directory"
url = "https://example.org/help"

[[resource]]
region = "GB"
name = "Line A"
phone = "116 123"
hours = "24/7"

[[resource]]
region = "GB"
name = "Line B"
sms = "SHOUT to 85258"
"""


# ---------------------------------------------------------------------------
# The packaged file
# ---------------------------------------------------------------------------


def test_packaged_file_loads_and_covers_the_promised_regions() -> None:
    assert PACKAGED.updated == "2026-11"
    regions = PACKAGED.regions()
    for code in ["US", "GB", "IE", "CA", "AU", "NZ", "DE", "FR", "IN"]:
        assert code in regions, code
    assert INTERNATIONAL not in regions
    assert regions == sorted(regions)


def test_packaged_international_directory() -> None:
    names = [r.name for r in PACKAGED.international()]
    assert "Find A Helpline" in names
    assert "Befrienders Worldwide" in names
    urls = {r.url for r in PACKAGED.international()}
    assert "https://findahelpline.com" in urls
    assert "https://befrienders.org" in urls


@pytest.mark.parametrize(
    ("region", "name", "number"),
    [
        ("US", "988 Suicide & Crisis Lifeline", "988"),
        ("CA", "9-8-8 Suicide Crisis Helpline", "988"),
        ("GB", "Samaritans", "116 123"),
        ("IE", "Samaritans Ireland", "116 123"),
        ("AU", "Lifeline", "13 11 14"),
        ("NZ", "1737, Need to talk?", "1737"),
        ("DE", "TelefonSeelsorge", "0800 111 0 111 or 0800 111 0 222"),
        ("FR", "3114, numéro national de prévention du suicide", "3114"),
        ("IN", "Tele-MANAS", "14416 or 1-800-891-4416"),
    ],
)
def test_packaged_key_lines(region: str, name: str, number: str) -> None:
    lines = {r.name: r for r in PACKAGED.for_region(region)}
    assert lines[name].phone == number
    assert lines[name].region == region


def test_every_packaged_region_has_a_name_and_a_reachable_line() -> None:
    for code in PACKAGED.regions():
        assert PACKAGED.region_name(code), code
        own = [r for r in PACKAGED.for_region(code) if r.region == code]
        assert any(r.phone or r.sms for r in own), code


def test_packaged_lines_are_https_and_single_line() -> None:
    for code in [*PACKAGED.regions(), INTERNATIONAL]:
        for r in PACKAGED.for_region(code):
            assert r.url is None or r.url.startswith("https://"), r
            assert "\n" not in r.to_line()


# ---------------------------------------------------------------------------
# Region selection and fallback
# ---------------------------------------------------------------------------


def test_region_lines_come_first_then_international() -> None:
    res = Resources.loads(MINIMAL)
    assert [r.name for r in res.for_region("GB")] == ["Line A", "Line B", "Directory"]


@pytest.mark.parametrize("region", ["gb", " GB ", "uk", "Uk"])
def test_region_codes_are_case_insensitive_and_aliased(region: str) -> None:
    res = Resources.loads(MINIMAL)
    assert [r.name for r in res.for_region(region)] == ["Line A", "Line B", "Directory"]
    assert res.normalise_region(region) == "GB"
    assert res.region_name(region) == "United Kingdom"


@pytest.mark.parametrize("region", [None, "", "ZZ", "XX", "INT", "int", "United Kingdom", "G"])
def test_unknown_or_missing_region_gives_international_only(region: str | None) -> None:
    res = Resources.loads(MINIMAL)
    assert [r.name for r in res.for_region(region)] == ["Directory"]


def test_unknown_region_has_no_name() -> None:
    res = Resources.loads(MINIMAL)
    assert res.region_name("ZZ") is None
    assert res.normalise_region("ZZ") is None


def test_returned_lists_are_copies() -> None:
    res = Resources.loads(MINIMAL)
    res.for_region("GB").clear()
    res.international().clear()
    assert len(res.for_region("GB")) == 3
    assert len(res) == 3


def test_regions_lists_only_regions_with_lines() -> None:
    assert Resources.loads(MINIMAL).regions() == ["GB"]


# ---------------------------------------------------------------------------
# Resource
# ---------------------------------------------------------------------------


def test_resource_to_dict_is_json_ready_and_complete() -> None:
    r = Resource(name="Samaritans", region="GB", phone="116 123", hours="24/7")
    d = r.to_dict()
    assert d == {
        "name": "Samaritans",
        "region": "GB",
        "phone": "116 123",
        "sms": None,
        "url": None,
        "hours": "24/7",
        "notes": None,
    }
    assert json.loads(json.dumps(d)) == d


def test_resource_to_line() -> None:
    full = Resource(
        name="Lifeline",
        region="AU",
        phone="13 11 14",
        sms="0477 13 11 14",
        url="https://www.lifeline.org.au",
        hours="24/7",
        notes="Call, text or chat",
    )
    assert full.to_line() == (
        "Lifeline: call 13 11 14; text 0477 13 11 14; 24/7; https://www.lifeline.org.au"
        " (Call, text or chat)"
    )
    assert Resource(name="Dir", region="INT", url="https://x.org").to_line() == (
        "Dir: https://x.org"
    )
    assert Resource(name="Shout", region="GB", sms="SHOUT to 85258").to_line() == (
        "Shout: text SHOUT to 85258"
    )


def test_resource_is_frozen_and_slotted() -> None:
    r = Resource(name="A", region="GB", phone="1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.name = "B"  # type: ignore[misc]
    assert not hasattr(r, "__dict__")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "A", "region": "GB"}, "at least one of phone, sms, url"),
        ({"name": "A", "region": "gb", "phone": "1"}, "region"),
        ({"name": "A", "region": "GBR", "phone": "1"}, "region"),
        ({"name": "", "region": "GB", "phone": "1"}, "name is empty"),
        ({"name": "A", "region": "GB", "phone": "1\n<mod> hi"}, "control"),
        ({"name": "A\u202e", "region": "GB", "phone": "1"}, "control or invisible"),
        ({"name": "A", "region": "GB", "url": "javascript:alert(1)"}, "http"),
        ({"name": "A", "region": "GB", "url": "https://x.org/a b"}, "http"),
        ({"name": "A", "region": "GB", "phone": "1" * 201}, "longer than"),
        ({"name": "A", "region": "GB", "phone": 988}, "must be a string"),
    ],
)
def test_resource_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Resource(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Operator files and bad files
# ---------------------------------------------------------------------------


def test_operator_file_replaces_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL, "utf-8")
    res = Resources.load(path)
    assert res.regions() == ["GB"]
    assert res.source == str(path)
    assert Resources.load(str(path)).regions() == ["GB"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ResourcesError, match="cannot read resources file") as info:
        Resources.load(path)
    assert str(path) in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(MINIMAL.replace("Line A", "Ligne \u00e9").encode("latin-1"))
    with pytest.raises(ResourcesError, match="not UTF-8"):
        Resources.load(path)


def test_bad_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('version = 1\n[[resource]\nname = "x"\n', "utf-8")
    with pytest.raises(ResourcesError, match="not valid TOML") as info:
        Resources.load(path)
    assert str(path) in str(info.value)


def _without(text: str, line: str) -> str:
    assert line in text
    return text.replace(line, "", 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_without(MINIMAL, "version = 1\n"), "'version' must be 1"),
        (MINIMAL.replace("version = 1", "version = 2"), "'version' must be 1"),
        (MINIMAL.replace('updated = "2026-11"', "updated = 2026"), "'updated' must be a string"),
        ("extra = 1\n" + MINIMAL, "unknown top-level keys: extra"),
        ("version = 1\n", "no [[resource]] entries"),
        (
            MINIMAL.replace('region = "INT"', 'region = "FR"'),
            "no international ('INT') entry",
        ),
        (MINIMAL.replace('name = "Line A"', 'name = "Line A"\nfax = "1"'), "unknown keys: fax"),
        (MINIMAL.replace('phone = "116 123"', "phone = 116123"), "phone must be a string"),
        (MINIMAL.replace('region = "GB"', 'region = "Britain"', 1), "region 'Britain'"),
        (_without(MINIMAL, 'name = "Line B"\n'), "resource 3: 'name' is missing"),
        (_without(MINIMAL, 'sms = "SHOUT to 85258"\n'), "resource 3 (Line B): needs at least"),
        (MINIMAL.replace('UK = "GB"', 'UK = "Great Britain"'), "[aliases]"),
        (MINIMAL.replace('GB = "United Kingdom"', "GB = 1"), "[regions] GB must be a string"),
        (MINIMAL.replace('GB = "United Kingdom"', 'Britain = "UK"'), "[regions] 'Britain'"),
        (
            MINIMAL.replace('url = "https://example.org/help"', 'url = "ftp://example.org"'),
            "resource 1 (Directory): url",
        ),
        ("version = 1\nresource = 3\n", "no [[resource]] entries"),
        ("version = 1\nresource = [1]\n", "resource 1: must be a table"),
        ("version = 1\nregions = 3\n", "[regions] must be a table"),
    ],
)
def test_bad_contents_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ResourcesError, match=re.escape(message)):
        Resources.loads(text, source="test.toml")


def test_errors_name_the_source_and_are_value_errors() -> None:
    with pytest.raises(ResourcesError, match=r"^test\.toml: ") as info:
        Resources.loads("version = 1\n", source="test.toml")
    assert isinstance(info.value, ValueError)


def test_constructing_directly() -> None:
    res = Resources(
        [Resource(name="Dir", region="INT", url="https://x.org")],
        region_names={"INT": "International"},
    )
    assert res.regions() == []
    assert [r.name for r in res.for_region("US")] == ["Dir"]
    with pytest.raises(ResourcesError, match="international"):
        Resources([Resource(name="A", region="GB", phone="1")])
