"""The core knows nothing of sockets: no transport, broker implementation or I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "src" / "chatsupport" / "core"
FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "websockets",
    "redis",
    "http",
    "urllib",
    "prometheus_client",
    "chatsupport.transport",
    "chatsupport.broker",
    "chatsupport.server",
    "chatsupport.cli",
    "chatsupport.client",
    "subprocess",
}
# Pure text functions inside a forbidden package: no I/O (quote() builds an sms: link).
ALLOWED = {"urllib.parse"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against chatsupport.core
                base = ["chatsupport", "core"][: 3 - node.level] if node.level <= 2 else []
                found.add(".".join([*base, node.module or ""]).strip("."))
            elif node.module:
                found.add(node.module)
    return found


def test_core_imports_no_io() -> None:
    offenders = {}
    for path in sorted(CORE.glob("*.py")):
        bad = {
            name
            for name in _imports(path) - ALLOWED
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
        }
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}
    assert len(list(CORE.glob("*.py"))) > 10  # the walk really saw the core


REGISTERING = {"append", "extend", "add", "update", "insert", "setdefault"}


def _registers_at_import(path: Path) -> list[str]:
    """Module-level statements that fill a container (`HOOKS.append(f)`, `TABLE[k] = f`):
    registration by import, which the feature list in server wiring replaced."""
    found = []
    for node in ast.parse(path.read_text(), str(path)).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in REGISTERING
        ):
            found.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Subscript) for t in node.targets):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_core_has_no_import_time_registration() -> None:
    offenders = [
        where for path in sorted(CORE.glob("*.py")) for where in _registers_at_import(path)
    ]
    assert offenders == []
