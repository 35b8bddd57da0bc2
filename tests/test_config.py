"""Settings: one declaration per setting (config.py) makes --help, the environment variables,
the TOML file and docs/configuration.md (CONTRACT §2: `--help` lists every setting, with its
default)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from chatsupport import config as settings
from chatsupport.cli import main
from chatsupport.config import SETTINGS, Config

from .helpers import ROOT, ServerProcess, TextClient

DOC = ROOT / "docs" / "configuration.md"


def _serve_help() -> str:
    """`chatsupport serve --help` as a person sees it, with the wrapping undone."""
    done = subprocess.run(
        [sys.executable, "-m", "chatsupport", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT / "src"), "COLUMNS": "100"},
        check=True,
    )
    return " ".join(done.stdout.split())


def test_the_configuration_doc_is_generated_from_the_settings() -> None:
    assert DOC.read_text() == settings.markdown(), (
        "docs/configuration.md is stale: regenerate it with `.venv/bin/python scripts/config-doc`"
    )


def test_serve_help_lists_every_setting_with_its_help_and_default() -> None:
    shown = _serve_help()
    assert len(SETTINGS) == len(fields(Config)) > 40
    for item in SETTINGS:
        if item.about.secret:  # never a flag: see the test below
            continue
        line = f"{item.flag} {item.metavar} {item.about.help} (default: {item.shown_default()})"
        assert line in shown, line


def test_the_defaults_in_help_are_the_configs() -> None:
    shown = _serve_help()
    defaults = Config()
    for item in SETTINGS:
        if item.about.secret:
            continue
        value = getattr(defaults, item.name)
        option = rf"{item.flag} {item.metavar} .*?\(default: (.*?)\)(?= --|$)"
        default = re.search(option, shown)
        assert default, item.flag
        if isinstance(value, bool):  # a switch, as the operator would type it
            assert default[1] == ("on" if value else "off"), (item.name, default[1])
        elif isinstance(value, int | float):  # the number itself, as the operator would type it
            assert float(default[1].split()[0]) == value, (item.name, default[1])
        elif value:
            assert default[1] == str(value), (item.name, default[1])


def test_a_secret_setting_is_never_a_flag_nor_printed() -> None:
    secret = settings.BY_NAME["address_key"]
    assert secret.about.secret and secret.flag == ""
    assert "--address-key " not in _serve_help() and "--address-key-file FILE" in _serve_help()
    with pytest.raises(SystemExit):
        main(["serve", "--address-key", "x" * 40])
    loaded = settings.load({}, None, {"CHATSUPPORT_ADDRESS_KEY": "s3cret" * 8})
    assert loaded.address_key == "s3cret" * 8 and "s3cret" not in repr(loaded)


def test_the_settings_help_used_to_hide_are_shown_with_their_units() -> None:
    shown = _serve_help()
    for expected in (
        "--tls-cert FILE",
        "--tls-key FILE",
        "--exit-url URL",
        "--log-level LEVEL",
        "--trusted-proxies ADDRESSES",
        "--allowed-origins ORIGINS",
        "--max-partial-line BYTES text-interface input without an end of line that closes the "
        "connection (default: 65536 bytes = 64 KiB)",
        "--new-conns-per-address N new connections per network within "
        "--new-conns-window; raise it with the one above (default: 32 connections)",
        "--new-conns-window SECONDS the window of --new-conns-per-address (default: 600 seconds)",
        "--config FILE",
    ):
        assert expected in shown, expected
    assert "10 minutes" not in shown  # the window is a setting, not a phrase


def test_toml_then_environment_then_flags(tmp_path: Path) -> None:
    toml = tmp_path / "chat.toml"
    toml.write_text('max_text = 100\nmax_name = 10\ntrusted_proxies = ["10.0.0.1"]\n')
    env = {"CHATSUPPORT_MAX_NAME": "12", "CHATSUPPORT_MSG_RATE": "2", "CHATSUPPORT_MAX_TXT": "1"}
    loaded = settings.load({"msg_rate": "3", "tls_cert": None}, str(toml), env)
    assert (loaded.max_text, loaded.max_name, loaded.msg_rate) == (100, 12, 3.0)
    assert loaded.trusted_proxies == ["10.0.0.1"]
    assert loaded.tls_cert is None
    from_env = settings.load({}, None, {"CHATSUPPORT_CONFIG": str(toml)})
    assert from_env.max_text == 100


def test_every_setting_is_read_from_toml_and_from_its_variable(tmp_path: Path) -> None:
    defaults = Config()
    toml_lines, env = [], {}
    for item in SETTINGS:
        value = getattr(defaults, item.name)
        if value is None:
            continue
        toml_lines.append(f"{item.name} = {json.dumps(value)}")  # JSON scalars/arrays are TOML
        env[item.env] = ",".join(value) if isinstance(value, list) else str(value)
    toml = tmp_path / "every.toml"
    toml.write_text("\n".join(toml_lines) + "\n")
    assert settings.load({}, str(toml), {}) == defaults
    assert settings.load({}, None, env) == defaults
    assert settings.from_env({"CHATSUPPORT_TLS_CERT": "c.pem"}) == {"tls_cert": "c.pem"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_text": 1.5}, "max_text must be a whole number, not 1.5"),
        ({"max_text": "lots"}, "max_text must be a whole number, not 'lots'"),
        ({"max_text": True}, "max_text must be a whole number, not True"),
        ({"msg_rate": "fast"}, "msg_rate must be a number, not 'fast'"),
        ({"exit_url": 5}, "exit_url must be text, not 5"),
        ({"trusted_proxies": [1]}, "trusted_proxies must be a list of text"),
        ({"max_txt": 1}, "unknown setting 'max_txt'"),
        ({"ban_scope": "everyone"}, "ban_scope must be 'address' or 'person', not 'everyone'"),
    ],
)
def test_a_wrong_value_is_named_in_the_error(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        settings.from_mapping(values)


def test_a_bad_flag_value_stops_serve_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--max-text", "lots"]) == 2
    assert "bad configuration: max_text must be a whole number, not 'lots'" in (
        capsys.readouterr().err
    )


def _get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
        return json.load(reply)


async def test_a_real_server_takes_the_formerly_hidden_flags_and_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "chat.toml"
    toml.write_text("max_text = 10\n")
    process = ServerProcess(
        *("--tcp-port", "0", "--http-port", "0", "--config", str(toml)),
        *("--exit-url", "https://example.org/leave", "--log-level", "warning"),
        env={"CHATSUPPORT_MAX_TEXT": "12"},
    ).start()
    try:
        page = await asyncio.to_thread(_get_json, process.port("http"), "/config.json")
        assert page["exit_url"] == "https://example.org/leave"
        person = await TextClient.open(process.port("tcp"))
        await person.send("x" * 13)
        assert await person.expect(lambda s: s.startswith("!!")) == (
            "!! messages are at most 12 characters"
        )
    finally:
        process.stop()


def test_a_switch_reads_on_and_off_everywhere() -> None:
    assert settings.load({"ws_deflate": "off"}, env={}).ws_deflate is False
    assert settings.load({}, env={"CHATSUPPORT_WS_DEFLATE": "on"}).ws_deflate is True
    with pytest.raises(ValueError, match="ws_deflate must be on or off, not 'maybe'"):
        settings.load({"ws_deflate": "maybe"}, env={})
