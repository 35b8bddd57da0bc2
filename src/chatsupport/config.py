"""Settings: defaults here, overridden by a TOML file, then CHATSUPPORT_* variables, then flags.

Every limit is a named, typed field with a safe default for the public; operators of a
trusted test or load setup raise them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Config:
    # --- listeners
    host: str = "127.0.0.1"
    http_port: int = 8080
    tcp_port: int = 7777
    broker: str = "memory"
    tls_cert: str | None = None
    tls_key: str | None = None
    tokens_file: str | None = None
    allowed_origins: list[str] = field(default_factory=list)
    trusted_proxies: list[str] = field(default_factory=list)
    # --- input limits
    max_text: int = 2000
    max_name: int = 24
    max_line_bytes: int = 4096
    max_partial_line: int = 65536
    max_frame_bytes: int = 65536
    msg_rate: float = 1.0
    msg_burst: float = 8.0
    tcp_backlog_lines: int = 100
    max_conns_per_address: int = 16
    new_conns_per_address: int = 32
    new_conns_window: float = 600.0
    max_rooms_per_session: int = 10
    # --- delivery
    outbox_limit: int = 512 * 1024
    retention_seconds: float = 600.0
    retention_messages: int = 500
    resume_grace: float = 60.0
    presence_limit: int = 100  # rooms larger than this do not announce joins and leaves
    # --- liveness
    handshake_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    # --- product
    default_room: str = "lobby"
    exit_url: str = "https://www.wikipedia.org/"
    resources_file: str | None = None
    crisis_phrases_file: str | None = None
    crisis_repeat_seconds: float = 300.0  # one resources notice/alert per person per this
    # --- moderation and flood control
    probation_seconds: float = 300.0  # newcomers: smaller budget, never less help
    probation_share: float = 0.5  # their share of the message budget (rate and burst)
    flood_strikes: int = 5  # this many `rate_limited` within `flood_window` ...
    flood_window: float = 60.0
    flood_mute_seconds: float = 120.0  # ... mute the person automatically for this long
    report_retention: float = 86400.0  # reports (with their evidence) are forgotten after this
    report_evidence: int = 5  # messages before the reported one kept as evidence
    max_reports: int = 1000  # kept at once; the oldest go first
    reports_per_hour: int = 20  # per reporter
    # --- one-to-one chats
    listener_capacity: int = 1  # one-to-one chats a listener holds at once
    log_level: str = "INFO"

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(Config)}


def _coerce(name: str, value: Any) -> Any:
    kind = FIELD_TYPES[name]
    if isinstance(value, str):
        if kind.startswith("list"):
            return [v.strip() for v in value.split(",") if v.strip()]
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    if kind == "float" and isinstance(value, int):
        return float(value)
    return value


def from_mapping(values: Mapping[str, Any], base: Config | None = None) -> Config:
    """Apply `values` (names as fields, `-` or `_`) on `base`; unknown names are an error."""
    changes: dict[str, Any] = {}
    for raw_name, value in values.items():
        name = raw_name.replace("-", "_")
        if name not in FIELD_TYPES:
            raise ValueError(f"unknown setting {raw_name!r}")
        if value is not None:
            changes[name] = _coerce(name, value)
    return (base or Config()).replace(**changes)


def from_env(env: Mapping[str, str]) -> dict[str, str]:
    prefix = "CHATSUPPORT_"
    return {
        k[len(prefix) :].lower(): v
        for k, v in env.items()
        if k.startswith(prefix) and k[len(prefix) :].lower() in FIELD_TYPES
    }


def load(
    flags: Mapping[str, Any], config_file: str | None = None, env: Mapping[str, str] | None = None
) -> Config:
    config = Config()
    env = os.environ if env is None else env
    config_file = config_file or env.get("CHATSUPPORT_CONFIG")
    if config_file:
        with Path(config_file).open("rb") as handle:
            config = from_mapping(tomllib.load(handle), config)
    config = from_mapping(from_env(env), config)
    return from_mapping({k: v for k, v in flags.items() if v is not None}, config)
