"""Settings: defaults here, overridden by a TOML file, then CHATSUPPORT_* variables, then flags.

Every setting is declared once, below, with its default, unit and help. `chatsupport serve
--help`, the environment variables, the TOML file and docs/configuration.md are all made
from these declarations (`scripts/config-doc`, `make config-doc`, writes the doc).

Every limit is a named, typed field with a safe default for the public; operators of a
trusted test or load setup raise them.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from .core.vocabulary import BAN_SCOPES
from .units import size

T = TypeVar("T")
ENV_PREFIX = "CHATSUPPORT_"


@dataclass(frozen=True, slots=True)
class About:
    """What `--help` and docs/configuration.md say about one setting."""

    help: str
    unit: str = ""  # what the number counts: "seconds", "bytes", ...
    metavar: str = ""  # the flag's placeholder; by type when empty
    unset: str = ""  # what no value (None or an empty list) means
    heading: str = ""  # the first setting of a group names the group
    secret: bool = False  # never a flag (other users see a command line) and never printed


def setting(
    default: T,
    help: str,
    *,
    unit: str = "",
    metavar: str = "",
    unset: str = "",
    heading: str = "",
    secret: bool = False,
) -> T:
    """A `Config` field with its documentation: the one place a setting is described."""
    about = {"about": About(help, unit, metavar, unset, heading, secret)}
    if isinstance(default, list):  # a fresh list for every Config
        return field(default_factory=lambda: copy.copy(default), metadata=about)
    return field(default=default, metadata=about, repr=not secret)


@dataclass(slots=True)
class Config:
    host: str = setting(
        "127.0.0.1",
        "address to listen on (0.0.0.0: every IPv4 interface)",
        metavar="ADDRESS",
        heading="Listeners",
    )
    http_port: int = setting(
        8080, "HTTP port: the web page and WebSocket /ws; 0 = any free port", metavar="PORT"
    )
    tcp_port: int = setting(
        7777, "plain-text TCP port for nc and telnet; 0 = any free port", metavar="PORT"
    )
    irc_port: int = setting(
        6667, "IRC port for any IRC client (docs/irc.md); 0 = any free port", metavar="PORT"
    )
    irc_tls_port: int | None = setting(
        None,
        "IRC over TLS (6697 is usual) with the --tls-cert files; 0 = any free port",
        metavar="PORT",
        unset="no IRC over TLS",
    )
    broker: str = setting(
        "memory",
        "'memory' (one process) or redis://host:port/db (processes sharing the same rooms)",
        metavar="URL",
    )
    workers: int = setting(
        1,
        "processes serving the same ports (SO_REUSEPORT), up to one per core; more than 1 "
        "needs --broker redis://... (docs/deploy.md)",
        metavar="N",
    )
    metrics_port: int | None = setting(
        None,
        "serve /metrics (Prometheus) on this port, on --metrics-host; 0 = any free port; "
        "with --workers N, worker k on PORT+k-1 (each its own scrape target)",
        metavar="PORT",
        unset="no /metrics (it is never on the public HTTP port)",
    )
    metrics_host: str = setting("127.0.0.1", "address of the /metrics listener", metavar="ADDRESS")
    tls_cert: str | None = setting(
        None,
        "certificate chain (PEM): serve https://, wss:// and TLS on the text port",
        metavar="FILE",
        unset="no TLS",
    )
    tls_key: str | None = setting(
        None, "private key (PEM) of --tls-cert", metavar="FILE", unset="in the --tls-cert file"
    )
    tokens_file: str | None = setting(
        None,
        "listener and moderator token hashes (see `chatsupport token add`)",
        metavar="FILE",
        unset="no staff",
    )
    address_key_file: str | None = setting(
        None,
        "file holding the secret that keys the hashes of network addresses; the same on "
        "every node (docs/privacy.md)",
        metavar="FILE",
        unset="$CHATSUPPORT_ADDRESS_KEY; with the memory broker a random one",
    )
    address_key: str | None = setting(
        None,
        "the secret of --address-key-file itself, at least 32 characters; an environment "
        "variable or the TOML file only",
        unset="a random one with the memory broker; required with Redis",
        secret=True,
    )
    address_key_rotation: float = setting(
        86400.0,
        "how often the address hashes kept in shared state change (bans are carried over)",
        unit="seconds",
    )
    allowed_origins: list[str] = setting(
        [],
        "web origins besides the server's own that may open /ws, comma-separated, exact "
        "(https://chat.example.org)",
        metavar="ORIGINS",
        unset="same origin only",
    )
    trusted_proxies: list[str] = setting(
        [],
        "proxy addresses whose X-Forwarded-For is believed, comma-separated",
        metavar="ADDRESSES",
        unset="none",
    )
    max_text: int = setting(2000, "longest message", unit="characters", heading="Input limits")
    max_name: int = setting(24, "longest name", unit="characters")
    max_line_bytes: int = setting(
        4096, "longest text-interface line; a longer one is refused", unit="bytes"
    )
    max_partial_line: int = setting(
        65536,
        "text-interface input without an end of line that closes the connection",
        unit="bytes",
    )
    max_frame_bytes: int = setting(65536, "largest WebSocket frame (message)", unit="bytes")
    msg_rate: float = setting(1.0, "messages a connection may send, sustained", unit="per second")
    msg_burst: float = setting(8.0, "messages a connection may send at once", unit="messages")
    tcp_backlog_lines: int = setting(
        100, "text-interface lines waiting to be read; further ones are refused", unit="lines"
    )
    half_close_seconds: float = setting(
        60.0,
        "how long lines sent before a text or IRC peer closed its side (nc -N) are still "
        "handled at its pace; the rest are refused in one line",
        unit="seconds",
    )
    max_conns_per_address: int = setting(
        16,
        "concurrent connections per network (an IPv4 address, an IPv6 /64); a school, an "
        "office or a carrier's NAT can put hundreds behind one: raise it for such audiences",
        unit="connections",
    )
    new_conns_per_address: int = setting(
        32,
        "new connections per network within --new-conns-window; raise it with the one above",
        unit="connections",
    )
    new_conns_window: float = setting(
        600.0, "the window of --new-conns-per-address", unit="seconds"
    )
    max_rooms_per_session: int = setting(10, "rooms one person may be in at once", unit="rooms")
    new_rooms_per_person: int = setting(
        20,
        "rooms one person may open (be the first in) within --retention-seconds",
        unit="rooms",
    )
    max_rooms_per_node: int = setting(
        2000, "rooms with people on this node; joining one more is refused", unit="rooms"
    )
    outbox_limit: int = setting(
        512 * 1024,
        "output waiting for a peer before it is disconnected as too slow",
        unit="bytes",
        heading="Delivery",
    )
    ws_deflate: bool = setting(
        True,
        "compress WebSocket messages for clients that offer permessage-deflate (each message "
        "is compressed once for all of them)",
    )
    retention_seconds: float = setting(
        600.0,
        "how long room history, and a dropped WebSocket session, are kept for resuming",
        unit="seconds",
    )
    retention_messages: int = setting(500, "history kept per room for resuming", unit="messages")
    resume_grace: float = setting(
        60.0, "how long a dropped WebSocket person stays in their rooms, shown away", unit="seconds"
    )
    resume_held_limit: int = setting(
        1000,
        "live events held for one person while their resume replays; past it the replay "
        "ends incomplete (`resumed.reason` overtaken) and live delivery goes on",
        unit="events",
    )
    page_size: int = setting(
        100,
        "entries in one page of a `who` or `rooms` answer (`more: true` if there are more)",
        unit="entries",
    )
    presence_limit: int = setting(
        100,
        "rooms with more people than this do not announce joins, leaves, away and back",
        unit="people",
    )
    handshake_timeout: float = setting(
        10.0,
        "time to finish the HTTP request or WebSocket upgrade",
        unit="seconds",
        heading="Liveness",
    )
    ping_interval: float = setting(
        20.0, "silence on a WebSocket after which the server pings it", unit="seconds"
    )
    ping_timeout: float = setting(
        20.0, "time to answer that ping before the connection is closed", unit="seconds"
    )
    default_room: str = setting(
        "lobby", "the room everyone starts in", metavar="ROOM", heading="Product"
    )
    public_url: str | None = setting(
        None,
        "the web page's address as people reach it (https://chat.example.org), for links in "
        "text such as the help page's in the netcat greeting",
        metavar="URL",
        unset="made from --host and --http-port (none when listening on every interface)",
    )
    exit_url: str = setting(
        "https://www.wikipedia.org/",
        "the neutral page the web page's Quick exit leaves for",
        metavar="URL",
    )
    resources_file: str | None = setting(
        None,
        "crisis help lines, TOML (docs/crisis-resources.md)",
        metavar="FILE",
        unset="the packaged file",
    )
    crisis_phrases_file: str | None = setting(
        None,
        "crisis phrases, one per line (docs/crisis-resources.md)",
        metavar="FILE",
        unset="the packaged English list",
    )
    crisis_repeat_seconds: float = setting(
        300.0,
        "least time between two help-line notices (and staff alerts) for one person",
        unit="seconds",
    )
    probation_seconds: float = setting(
        300.0,
        "how long newcomers have a smaller message budget in group rooms (never less help)",
        unit="seconds",
        heading="Moderation and flood control",
    )
    probation_share: float = setting(
        0.5, "newcomers' share of the message budget (rate and burst)", metavar="SHARE"
    )
    ban_scope: str = setting(
        "address",
        "what a moderator's ban covers unless they choose: 'address' (the person and the keyed "
        "hash of their network, as the contract says) or 'person' (their session and client "
        "id only: for audiences behind shared networks, docs/moderation.md)",
        metavar="SCOPE",
    )
    address_ban_max: float | None = setting(
        None,
        "the longest a ban may also cover the person's whole network (everyone else behind "
        "that address is shut out too)",
        unit="seconds",
        unset="as long as the ban",
    )
    flood_strikes: int = setting(
        5, "times over the message budget within --flood-window that mute a person automatically"
    )
    flood_window: float = setting(60.0, "the window of --flood-strikes", unit="seconds")
    flood_mute_seconds: float = setting(
        120.0, "how long an automatic flood mute lasts", unit="seconds"
    )
    report_retention: float = setting(
        86400.0, "how long reports and their evidence are kept", unit="seconds"
    )
    report_evidence: int = setting(
        5, "messages before the reported one kept as evidence", unit="messages"
    )
    max_reports: int = setting(
        1000,
        "reports kept at once; the oldest handled go first, then the oldest open",
        unit="reports",
    )
    reports_per_hour: int = setting(
        20, "report attempts one person may make per hour (refused ones count)", unit="reports"
    )
    open_reports_per_reporter: int = setting(
        5,
        "open reports one reporter may have at once (reports of one person merge)",
        unit="reports",
    )
    reports_alert_after: int = setting(
        3,
        "open reports about one person that alert the moderators; again at every multiple "
        "(0: never)",
        unit="reports",
    )
    listener_capacity: int = setting(
        1, "one-to-one chats a listener holds at once", unit="chats", heading="One-to-one chats"
    )
    crisis_cooldown: float = setting(
        120.0,
        "after a chat with someone flagged for crisis, how long its listener is not offered "
        "a new one (0: at once)",
        unit="seconds",
    )
    talk_requests: int = setting(
        6,
        "times one person may join the queue for a listener within --talk-window "
        "(never limited for someone flagged for crisis)",
        unit="requests",
    )
    talk_window: float = setting(600.0, "the window of --talk-requests", unit="seconds")
    log_level: str = setting(
        "INFO",
        "DEBUG, INFO, WARNING or ERROR, on standard error",
        metavar="LEVEL",
        heading="Logging",
    )

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be 1 or more, not {self.workers}")
        if self.ban_scope not in BAN_SCOPES:
            scopes = " or ".join(repr(s) for s in BAN_SCOPES)
            raise ValueError(f"ban_scope must be {scopes}, not {self.ban_scope!r}")

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Setting:
    """One `Config` field as the outside world names and reads it."""

    name: str
    kind: str  # "int", "float", "bool", "str" or "list"
    default: Any
    about: About

    @property
    def flag(self) -> str:
        """The `serve` flag; none for a secret."""
        return "" if self.about.secret else "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def metavar(self) -> str:
        if self.about.metavar:
            return self.about.metavar
        if self.about.unit in ("seconds", "bytes"):
            return self.about.unit.upper()
        return {"str": "TEXT", "list": "LIST", "bool": "on/off"}.get(self.kind, "N")

    def shown_default(self) -> str:
        """The default as --help and the doc print it: `65536 bytes = 64 KiB`, `600 seconds`."""
        value = self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if value is None or value == []:
            return self.about.unset or "none"
        whole = isinstance(value, float) and value.is_integer()
        text = str(int(value)) if whole else str(value)  # 600.0 -> "600", 0.5 -> "0.5"
        unit = self.about.unit
        if unit == "bytes" and size(value) != f"{value} bytes":
            return f"{text} bytes = {size(value)}"
        if value == 1 and unit.endswith("s") and " " not in unit:
            unit = unit[:-1]  # "1 chat"
        return f"{text} {unit}" if unit else text

    def parse(self, value: Any) -> Any:
        """A value from TOML, the environment or a flag, as this setting's type."""
        if isinstance(value, str):
            return self._from_text(value)
        kind = self.kind
        if kind == "list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{self.name} must be {_EXPECTED[kind]}, not {value!r}")

    def _from_text(self, text: str) -> Any:
        if self.kind == "list":
            return [v.strip() for v in text.split(",") if v.strip()]
        if self.kind == "bool":
            answer = _SWITCH.get(text.strip().lower())
            if answer is None:
                raise ValueError(f"{self.name} must be {_EXPECTED['bool']}, not {text!r}")
            return answer
        number = {"int": int, "float": float}.get(self.kind)
        try:
            return number(text) if number else text
        except ValueError:
            raise ValueError(f"{self.name} must be {_EXPECTED[self.kind]}, not {text!r}") from None


_SWITCH = {"on": True, "true": True, "yes": True, "1": True}
_SWITCH |= {"off": False, "false": False, "no": False, "0": False}
_EXPECTED = {
    "bool": "on or off",
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "list": "a list of text (comma-separated in a flag or variable)",
}


def _kind(annotation: Any) -> str:
    text = str(annotation)
    return "list" if text.startswith("list") else text.split(" ")[0]


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def _setting(item: dataclasses.Field[Any]) -> Setting:
    if "about" not in item.metadata:
        raise TypeError(f"Config.{item.name}: declare it with setting(default, help, ...)")
    return Setting(item.name, _kind(item.type), _default(item), item.metadata["about"])


SETTINGS: tuple[Setting, ...] = tuple(_setting(f) for f in fields(Config))
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def from_mapping(values: Mapping[str, Any], base: Config | None = None) -> Config:
    """Apply `values` (names as fields, `-` or `_`) on `base`; unknown names are an error."""
    changes: dict[str, Any] = {}
    for raw_name, value in values.items():
        name = raw_name.replace("-", "_")
        if name not in BY_NAME:
            raise ValueError(f"unknown setting {raw_name!r}")
        if value is not None:
            changes[name] = BY_NAME[name].parse(value)
    return (base or Config()).replace(**changes)


def from_env(env: Mapping[str, str]) -> dict[str, str]:
    return {s.name: env[s.env] for s in SETTINGS if s.env in env}


def load(
    flags: Mapping[str, Any], config_file: str | None = None, env: Mapping[str, str] | None = None
) -> Config:
    config = Config()
    env = os.environ if env is None else env
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG")
    if config_file:
        with Path(config_file).open("rb") as handle:
            config = from_mapping(tomllib.load(handle), config)
    config = from_mapping(from_env(env), config)
    return from_mapping({k: v for k, v in flags.items() if v is not None}, config)


def markdown() -> str:
    """docs/configuration.md: every setting, grouped, with its flag, variable and default."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from src/chatsupport/config.py; do not edit. Regenerate with:",
        "     .venv/bin/python scripts/config-doc -->",
        "",
        "Every setting has a default (below), and can be set, each overriding the one before:",
        "",
        "1. in a TOML file given by `--config FILE` (or `CHATSUPPORT_CONFIG=FILE`), under",
        '   the setting\'s name: `http_port = 8080`, `trusted_proxies = ["127.0.0.1"]`;',
        "2. by an environment variable, `CHATSUPPORT_` and the name in capitals:",
        "   `CHATSUPPORT_HTTP_PORT=8080`, `CHATSUPPORT_TRUSTED_PROXIES=127.0.0.1,::1`;",
        "3. by a flag of `chatsupport serve`, the name with dashes: `--http-port 8080`.",
        "",
        "Lists are TOML arrays, or comma-separated in a variable or flag. `chatsupport serve",
        "--help` prints the same list.",
    ]
    for item in SETTINGS:
        if item.about.heading:
            lines += ["", f"## {item.about.heading}", ""]
            lines += ["| Setting | Flag | Variable | Default | Meaning |", "|---|---|---|---|---|"]
        flag = f"`{item.flag}`" if item.flag else "(none: a secret)"
        cells = [f"`{item.name}`", flag, f"`{item.env}`"]
        cells += [item.shown_default().replace("|", "\\|"), item.about.help.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
