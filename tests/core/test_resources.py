"""Crisis help lines: the packaged file, region fallback, operator files, bad files."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import pytest

from chatsupport import loading
from chatsupport.core.resources import (
    INTERNATIONAL,
    Contact,
    Resource,
    Resources,
    ResourcesError,
)

PACKAGED = loading.resources()  # the packaged file

MINIMAL = """
version = 2
updated = "2026-11"

[regions]
GB = "United Kingdom"

[aliases]
UK = "GB"

[[resource]]
region = "INT"
name = "Directory"
contacts = [{ kind = "web", value = "https://example.org/help" }]

[[resource]]
region = "GB"
name = "Line A"
contacts = [{ kind = "call", value = "116123", label = "116 123" }]
hours = "24/7"

[[resource]]
region = "GB"
name = "Line B"
contacts = [{ kind = "text", value = "85258", body = "SHOUT" }]
"""

PACKAGED_TEXT = (
    Path(__file__).parents[2] / "src" / "chatsupport" / "data" / "resources.toml"
).read_text("utf-8")

# Every number of the packaged file, region by region, in file order, as (kind, value, body).
# Written out by hand: a number that changes, disappears or is glued to another fails here.
PACKAGED_NUMBERS: dict[str, list[tuple[str, str, str | None]]] = {
    "INT": [("call", "112", None)],
    "US": [
        ("call", "988", None),
        ("text", "988", None),
        ("text", "741741", "HOME"),
        ("call", "911", None),
    ],
    "CA": [
        ("call", "988", None),
        ("text", "988", None),
        ("call", "18006686868", None),
        ("text", "686868", "CONNECT"),
        ("call", "911", None),
    ],
    "GB": [
        ("call", "116123", None),
        ("text", "85258", "SHOUT"),
        ("call", "999", None),
        ("call", "112", None),
    ],
    "IE": [
        ("call", "116123", None),
        ("call", "1800247247", None),
        ("text", "51444", "HELP"),
        ("text", "50808", "HELLO"),
        ("call", "112", None),
        ("call", "999", None),
    ],
    "AU": [
        ("call", "131114", None),
        ("text", "0477131114", None),
        ("call", "1800551800", None),
        ("call", "1300224636", None),
        ("call", "000", None),
    ],
    "NZ": [
        ("call", "1737", None),
        ("text", "1737", None),
        ("call", "0800543354", None),
        ("text", "4357", "HELP"),
        ("call", "111", None),
    ],
    "DE": [("call", "08001110111", None), ("call", "08001110222", None), ("call", "112", None)],
    "AT": [("call", "142", None), ("call", "112", None)],
    "CH": [("call", "143", None), ("call", "112", None)],
    "FR": [
        ("call", "3114", None),
        ("call", "0972394050", None),
        ("call", "112", None),
        ("call", "15", None),
    ],
    "BE": [("call", "1813", None), ("call", "080032123", None), ("call", "112", None)],
    "NL": [("call", "113", None), ("call", "08000113", None), ("call", "112", None)],
    "ES": [("call", "024", None), ("call", "717003717", None), ("call", "112", None)],
    "IN": [("call", "14416", None), ("call", "18008914416", None), ("call", "112", None)],
    "BR": [("call", "188", None), ("call", "192", None)],
}
ONE_NUMBER = re.compile(r"^\+?[0-9*#]{2,20}$")


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
    urls = {c.value for r in PACKAGED.international() for c in r.contacts if c.kind == "web"}
    assert "https://findahelpline.com" in urls
    assert "https://befrienders.org" in urls


@pytest.mark.parametrize(
    ("region", "name", "numbers"),
    [
        ("US", "988 Suicide & Crisis Lifeline", ["988"]),
        ("CA", "9-8-8 Suicide Crisis Helpline", ["988"]),
        ("GB", "Samaritans", ["116123"]),
        ("GB", "Emergency services", ["999", "112"]),
        ("IE", "Samaritans Ireland", ["116123"]),
        ("IE", "Emergency services", ["112", "999"]),
        ("AU", "Lifeline", ["131114"]),
        ("NZ", "1737, Need to talk?", ["1737"]),
        ("DE", "TelefonSeelsorge", ["08001110111", "08001110222"]),
        ("FR", "3114, numéro national de prévention du suicide", ["3114"]),
        ("FR", "Emergency services", ["112", "15"]),
        ("NL", "113 Zelfmoordpreventie", ["113", "08000113"]),
        ("IN", "Tele-MANAS", ["14416", "18008914416"]),
    ],
)
def test_packaged_key_lines(region: str, name: str, numbers: list[str]) -> None:
    lines = {r.name: r for r in PACKAGED.for_region(region) if r.region == region}
    calls = [c.value for c in lines[name].contacts if c.kind == "call"]
    assert calls == numbers
    assert [f"tel:{n}" for n in numbers] == [
        c.href() for c in lines[name].contacts if c.kind == "call"
    ]


def _own(code: str) -> list[Resource]:
    return [r for r in PACKAGED.for_region(code) if r.region == code]


def test_every_packaged_number_is_kept_one_per_contact() -> None:
    """The bug this guards: "999 or 112" became tel:999112. Each number is its own contact."""
    assert sorted(PACKAGED_NUMBERS) == sorted([*PACKAGED.regions(), INTERNATIONAL])
    for code, expected in PACKAGED_NUMBERS.items():
        found = [(c.kind, c.value, c.body) for r in _own(code) for c in r.contacts]
        assert [x for x in found if x[0] in ("call", "text")] == expected, code


def test_every_packaged_number_is_dialable_and_written_in_the_file_as_dialled() -> None:
    for code in [*PACKAGED.regions(), INTERNATIONAL]:
        for entry in _own(code):
            assert entry.contacts, entry.name
            for c in entry.contacts:
                if c.kind in ("web", "chat"):
                    assert c.value.startswith("https://") and c.href() == c.value, c
                    continue
                assert ONE_NUMBER.match(c.value), (code, entry.name, c)
                assert f'value = "{c.value}"' in PACKAGED_TEXT, (code, entry.name, c)
                digits = "".join(ch for ch in c.label if ch.isdigit() or ch in "+*#")
                assert digits == c.value, (code, entry.name, c)  # shown = dialled
                scheme = "tel" if c.kind == "call" else "sms"
                body = f"?body={c.body}" if c.body else ""
                assert c.href() == f"{scheme}:{c.value}{body}"


def test_no_packaged_number_is_two_others_joined() -> None:
    for code in [*PACKAGED.regions(), INTERNATIONAL]:
        values = {c.value for r in PACKAGED.for_region(code) for c in r.contacts}
        for a in values:
            for b in values:
                assert a + b not in values, (code, a, b)


def test_the_raw_file_lists_no_number_outside_contacts() -> None:
    # Read without the loader: every entry has contacts and no version 1 free-text field.
    data = tomllib.loads(PACKAGED_TEXT)
    assert data["version"] == 2
    for entry in data["resource"]:
        assert entry["contacts"], entry["name"]
        assert not {"phone", "sms", "url"} & set(entry), entry["name"]


def test_every_packaged_region_has_a_name_and_a_reachable_line() -> None:
    for code in PACKAGED.regions():
        assert PACKAGED.region_name(code), code
        kinds = {c.kind for r in _own(code) for c in r.contacts}
        assert kinds & {"call", "text"}, code


def test_packaged_lines_are_https_and_single_line() -> None:
    for code in [*PACKAGED.regions(), INTERNATIONAL]:
        for r in PACKAGED.for_region(code):
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


SAMARITANS = Contact("call", "116123", "116 123")


def test_resource_to_dict_is_json_ready_and_complete() -> None:
    r = Resource(name="Samaritans", region="GB", contacts=(SAMARITANS,), hours="24/7")
    d = r.to_dict()
    assert d == {
        "name": "Samaritans",
        "region": "GB",
        "contacts": [
            {
                "kind": "call",
                "value": "116123",
                "label": "116 123",
                "body": None,
                "hours": None,
                "languages": [],
            }
        ],
        "hours": "24/7",
        "languages": [],
        "notes": None,
    }
    assert json.loads(json.dumps(d)) == d


def test_resource_to_line() -> None:
    full = Resource(
        name="Lifeline",
        region="AU",
        contacts=(
            Contact("call", "131114", "13 11 14"),
            Contact("text", "0477131114", "0477 13 11 14", hours="noon to 2am"),
            Contact("web", "https://www.lifeline.org.au"),
        ),
        hours="24/7",
        languages=("English",),
        notes="Call, text or chat",
    )
    assert full.to_line() == (
        "Lifeline: call 13 11 14 · text 0477 13 11 14 (noon to 2am) · 24/7 · English"
        " · https://www.lifeline.org.au (Call, text or chat)"
    )
    web = Contact("web", "https://x.org/")
    assert web.label == "x.org"
    assert Resource(name="Dir", region="INT", contacts=(web,)).to_line() == "Dir: https://x.org/"
    shout = Contact("text", "85258", body="SHOUT")
    assert Resource(name="Shout", region="GB", contacts=(shout,)).to_line() == (
        "Shout: text SHOUT to 85258"
    )


@pytest.mark.parametrize(
    ("contact", "href"),
    [
        (Contact("call", "116123", "116 123"), "tel:116123"),
        (Contact("call", "+33145394000", "+33 1 45 39 40 00"), "tel:+33145394000"),
        (Contact("text", "85258", body="SHOUT"), "sms:85258?body=SHOUT"),
        (
            Contact("text", "85258", body="Hi there & more"),
            "sms:85258?body=Hi%20there%20%26%20more",
        ),
        (Contact("text", "988"), "sms:988"),
        (Contact("chat", "https://x.org/chat", "Chat online"), "https://x.org/chat"),
    ],
)
def test_contact_href_is_the_value_exactly(contact: Contact, href: str) -> None:
    assert contact.href() == href


def test_resource_is_frozen_and_slotted() -> None:
    r = Resource(name="A", region="GB", contacts=(SAMARITANS,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.name = "B"  # type: ignore[misc]
    assert not hasattr(r, "__dict__")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "A", "region": "GB", "contacts": ()}, "at least one contact"),
        ({"name": "A", "region": "gb", "contacts": (SAMARITANS,)}, "region"),
        ({"name": "A", "region": "GBR", "contacts": (SAMARITANS,)}, "region"),
        ({"name": "", "region": "GB", "contacts": (SAMARITANS,)}, "name is empty"),
        ({"name": "A\u202e", "region": "GB", "contacts": (SAMARITANS,)}, "control or invisible"),
        (
            {"name": "A", "region": "GB", "contacts": (SAMARITANS,), "notes": "x\n<mod> hi"},
            "control",
        ),
        (
            {"name": "A", "region": "GB", "contacts": (SAMARITANS,), "hours": "1" * 201},
            "longer than",
        ),
        ({"name": "A", "region": "GB", "contacts": ("116123",)}, "Contact objects"),
    ],
)
def test_resource_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Resource(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("fax", "116123"), {}, "kind 'fax' is not one of call, text, web, chat"),
        (("call", "999 or 112"), {}, "not one number as dialled"),
        (("call", "999/112"), {}, "not one number as dialled"),
        (("call", "116 123"), {}, "not one number as dialled"),
        (("call", "1-800-668-6868"), {}, "not one number as dialled"),
        (("call", "your local emergency number"), {}, "not one number as dialled"),
        (("call", "+0123456"), {}, "not one number as dialled"),
        (("call", "9"), {}, "not one number as dialled"),
        (("call", "999112"), {"label": "999 or 112"}, "must show the number '999112' and no"),
        (("call", "116123"), {"label": "116 124"}, "must show the number '116123'"),
        (("call", "116123"), {"label": "Samaritans"}, "must show the number"),
        (("call", "116123"), {"body": "HI"}, "body is only for text lines"),
        (("text", "85258"), {"body": "X" * 41}, "body is longer than 40"),
        (("text", "85258"), {"body": "A\nB"}, "control"),
        (("web", "javascript:alert(1)"), {}, "http"),
        (("web", "https://x.org/a b"), {}, "http"),
        (("chat", "116123"), {}, "http"),
        (("web", "https://x.org"), {"body": "HI"}, "body is only for text lines"),
        (("call", 988), {}, "value must be a string"),
        (("call", "988"), {"languages": "English"}, "languages must be a list"),
    ],
)
def test_contact_validation(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Contact(*args, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Bad files (reading them: tests/test_loading.py)
# ---------------------------------------------------------------------------


def _without(text: str, line: str) -> str:
    assert line in text
    return text.replace(line, "", 1)


LINE_A = '{ kind = "call", value = "116123", label = "116 123" }'


def _contact_a(replacement: str) -> str:
    assert LINE_A in MINIMAL
    return MINIMAL.replace(LINE_A, replacement, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_without(MINIMAL, "version = 2\n"), "'version' must be 2"),
        (MINIMAL.replace("version = 2", "version = 3"), "'version' must be 2, found 3"),
        (MINIMAL.replace("version = 2", "version = 1"), "this is a version 1 file"),
        (MINIMAL.replace('updated = "2026-11"', "updated = 2026"), "'updated' must be a string"),
        ("extra = 1\n" + MINIMAL, "unknown top-level keys: extra"),
        ("version = 2\n", "no [[resource]] entries"),
        (
            MINIMAL.replace('region = "INT"', 'region = "FR"'),
            "no international ('INT') entry",
        ),
        (MINIMAL.replace('name = "Line A"', 'name = "Line A"\nfax = "1"'), "unknown keys: fax"),
        (
            MINIMAL.replace('name = "Line A"', 'name = "Line A"\nphone = "116 123"'),
            "resource 2 (Line A): unknown keys: phone (phone, sms and url are version 1 keys",
        ),
        (MINIMAL.replace('region = "GB"', 'region = "Britain"', 1), "region 'Britain'"),
        (_without(MINIMAL, 'name = "Line B"\n'), "resource 3: 'name' is missing"),
        (_contact_a(""), "resource 2 (Line A): needs at least one contact"),
        (
            MINIMAL.replace(f"contacts = [{LINE_A}]\n", ""),
            "resource 2 (Line A): 'contacts' is missing",
        ),
        (
            MINIMAL.replace(f"contacts = [{LINE_A}]", f"contacts = {LINE_A}"),
            "resource 2 (Line A): contacts must be a list of tables",
        ),
        (
            _contact_a('{ kind = "call", value = "999 or 112" }'),
            "resource 2 (Line A): contact 1: value '999 or 112' is not one number as dialled",
        ),
        (
            _contact_a(f'{LINE_A}, {{ kind = "call", value = "999112", label = "999 or 112" }}'),
            "resource 2 (Line A): contact 2: label '999 or 112' must show the number",
        ),
        (
            _contact_a('{ kind = "call", value = 116123 }'),
            "resource 2 (Line A): contact 1: value must be a string",
        ),
        (
            _contact_a('{ kind = "call", label = "116 123" }'),
            "resource 2 (Line A): contact 1: 'value' is missing",
        ),
        (
            _contact_a('{ kind = "call", value = "116123", fax = "1" }'),
            "resource 2 (Line A): contact 1: unknown keys: fax",
        ),
        (_contact_a('"116123"'), "resource 2 (Line A): contact 1: must be a table"),
        (
            _contact_a('{ kind = "web", value = "www.example.org" }'),
            "resource 2 (Line A): contact 1: value 'www.example.org' is not an http(s) address",
        ),
        (
            _contact_a(f'{LINE_A}, {{ kind = "chat", value = "ftp://example.org" }}'),
            "resource 2 (Line A): contact 2: value 'ftp://example.org' is not an http(s)",
        ),
        (
            MINIMAL.replace('hours = "24/7"', 'languages = "English"'),
            "resource 2 (Line A): languages must be a list of strings",
        ),
        (MINIMAL.replace('UK = "GB"', 'UK = "Great Britain"'), "[aliases]"),
        (MINIMAL.replace('GB = "United Kingdom"', "GB = 1"), "[regions] GB must be a string"),
        (MINIMAL.replace('GB = "United Kingdom"', 'Britain = "UK"'), "[regions] 'Britain'"),
        ("version = 2\nresource = 3\n", "no [[resource]] entries"),
        ("version = 2\nresource = [1]\n", "resource 1: must be a table"),
        ("version = 2\nregions = 3\n", "[regions] must be a table"),
    ],
)
def test_bad_contents_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ResourcesError, match=re.escape(message)):
        Resources.loads(text, source="test.toml")


def test_a_version_1_file_is_refused_with_how_to_convert() -> None:
    old = 'version = 1\n[[resource]]\nregion = "INT"\nname = "A"\nphone = "999 or 112"\n'
    with pytest.raises(ResourcesError) as info:
        Resources.loads(old, source="old.toml")
    message = str(info.value)
    assert message.startswith("old.toml: this is a version 1 file")
    assert "version = 2" in message and "contacts" in message
    assert "docs/crisis-resources.md" in message


def test_errors_name_the_source_and_are_value_errors() -> None:
    with pytest.raises(ResourcesError, match=r"^test\.toml: ") as info:
        Resources.loads("version = 2\n", source="test.toml")
    assert isinstance(info.value, ValueError)


def test_constructing_directly() -> None:
    res = Resources(
        [Resource(name="Dir", region="INT", contacts=(Contact("web", "https://x.org"),))],
        region_names={"INT": "International"},
    )
    assert res.regions() == []
    assert [r.name for r in res.for_region("US")] == ["Dir"]
    with pytest.raises(ResourcesError, match="international"):
        Resources([Resource(name="A", region="GB", contacts=(SAMARITANS,))])
