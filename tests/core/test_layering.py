"""The core knows nothing of sockets or files: no transport, broker implementation, I/O
library, file or OS access. Files are read at the edge (chatsupport/loading.py, cli.py)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "chatsupport" / "core"
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
    "subprocess",
    # files and the OS: the loading module reads files, the CLI writes them
    "os",
    "pathlib",
    "shutil",
    "tempfile",
    "glob",
    "io",
    "importlib",
    "sys",
}
# Pure text functions inside a forbidden package: no I/O (quote() builds an sms: link).
ALLOWED = {"urllib.parse"}
# What the core may use from the rest of chatsupport: the settings (values, read at the
# edge). Anything else outside core (transport, broker, server, cli, client, loading)
# is not the core's to import, relatively (`from .. import transport`) or not.
OUTSIDE_ALLOWED = {"chatsupport.config"}
# Calls that read or write files: `open(...)`, `tomllib.load(file)` (`loads` parses text).
FILE_CALLS = {"open", "tomllib.load"}


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, relative ones resolved against chatsupport.core, with
    `from X import name` also giving `X.name` (the name may be a module)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = ["chatsupport", "core"]
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, packages: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _offences(path: Path) -> set[str]:
    offences = set()
    for name in _imports(path):
        if _within(name, FORBIDDEN) and not _within(name, ALLOWED):
            offences.add(name)
        # `from .. import x` names the package itself; its `chatsupport.x` is what counts.
        outside = _within(name, {"chatsupport"}) and name != "chatsupport"
        if outside and not _within(name, {"chatsupport.core", *OUTSIDE_ALLOWED}):
            offences.add(name)
    return offences


def _file_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in FILE_CALLS:
            found.append(f"{ast.unparse(node.func)}() at line {node.lineno}")
    return found


def test_core_imports_no_io() -> None:
    offenders = {path.name: sorted(bad) for path in _core() if (bad := _offences(path))}
    assert offenders == {}


def test_core_opens_no_file() -> None:
    offenders = {path.name: calls for path in _core() if (calls := _file_calls(path))}
    assert offenders == {}


def _core() -> list[Path]:
    paths = sorted(CORE.glob("*.py"))
    assert len(paths) > 10  # the walk really sees the core
    return paths


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """Each way out of the core that the rules name is caught (and the allowed ones not)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from .. import transport\n"
        "from ..broker import memory\n"
        "from ..loading import tokens\n"
        "import chatsupport.server\n"
        "import os.path\n"
        "from pathlib import Path\n"
        "from importlib import resources\n"
        "from . import events\n"
        "from ..config import Config\n"
        "from urllib.parse import quote\n"
        "import tomllib\n"
        "tomllib.loads('a = 1')\n"
        "open('x')\n"
        "tomllib.load(f)\n"
    )
    assert _offences(bad) == {
        "chatsupport.transport",
        "chatsupport.broker",
        "chatsupport.broker.memory",
        "chatsupport.loading",
        "chatsupport.loading.tokens",
        "chatsupport.server",
        "os.path",
        "pathlib",
        "pathlib.Path",
        "importlib",
        "importlib.resources",
    }
    assert _file_calls(bad) == ["open() at line 13", "tomllib.load() at line 14"]


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
    offenders = [where for path in _core() for where in _registers_at_import(path)]
    assert offenders == []
