"""The layers docs/architecture.md describes, enforced on the source.

Every module's imports are read with `ast`, at any depth: function-level imports, imports under
`if TYPE_CHECKING:` and inside try/except count like the ones at the top (a dependency is a
dependency, whenever it is loaded). Imports done by name at run time (`importlib`, the voice
model's `module:factory`) are not seen. The rules:

- the sans-IO part of `reference_server` (every module outside `reference_server.shell`), and
  likewise of the probe peer (`toolkit.peer` outside `toolkit.peer.shell`), imports neither its
  shell nor a module that does I/O or runs an event loop, a thread or a process
  (`SANS_IO_FORBIDDEN`); from `socket` it may take only the address conversions
  (`SOCKET_CONVERSIONS`), which open no socket;
- `reference_server` imports nothing from `toolkit` (the judged does not lean on the judge);
- in `toolkit`, only `fuzz` and the serve, relay and worker commands import `reference_server`
  (principle 3: the judge decides with its own code);
- the command modules share code through `toolkit.commands.arguments` only, never by importing
  one another;
- no import cycle among the modules of `reference_server` and `toolkit.commands`;
- docs/architecture.md's table of shell modules names every module of the shell, and no other.

The last tests feed the same checker a small fake tree with one violation of each kind, so a
checker that stopped seeing them would fail here rather than pass silently.
"""
from __future__ import annotations

import ast
import graphlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SERVER = "reference_server"
SHELL = "reference_server.shell"
PEER = "toolkit.peer"
PEER_SHELL = "toolkit.peer.shell"
SANS_IO_PACKAGES = {SERVER: SHELL, PEER: PEER_SHELL}
"""Each package with a sans-IO part, and the subpackage that holds its I/O."""
COMMANDS = "toolkit.commands"
SHARED_ARGUMENTS = "toolkit.commands.arguments"
SERVER_IMPORTERS = ("toolkit.fuzz", "toolkit.commands.serve", "toolkit.commands.relay", "toolkit.commands.worker")
"""The toolkit modules (or packages) that may import reference_server."""

SANS_IO_FORBIDDEN = frozenset({
    "asyncio", "uvloop", "aiohttp", "aiortc", "selectors", "select", "socket", "ssl", "signal", "threading",
    "subprocess", "multiprocessing", "concurrent", "http", "urllib", "prometheus_client",
})
"""Top-level modules a sans-IO module must not import: sockets, event loops, threads, processes,
HTTP, and the metrics exposition (the core only counts)."""
SOCKET_CONVERSIONS = frozenset({"inet_pton", "inet_ntop", "AF_INET", "AF_INET6"})
"""What `from socket import ...` may name in a sans-IO module: text ⇄ bytes address conversions."""


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    """The module imported: for `from a import b`, `a.b` when that is a module of the tree, else `a`."""
    names: tuple[str, ...]
    """What `from ... import` named; empty for `import a`."""
    path: Path
    line: int

    @property
    def top(self) -> str:
        return self.target.partition(".")[0]

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def modules_under(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of `packages` below `root` by dotted name; a package is its `__init__.py`."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: Iterable[str]) -> Iterator[Import]:
    """Every import statement in the module `name` (at `path`), at any depth."""
    known = set(known)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names = tuple(alias.name for alias in node.names)
            submodules = [f"{module}.{alias}" for alias in names if f"{module}.{alias}" in known]
            for target in submodules:
                yield Import(name, target, names, path, node.lineno)
            if len(submodules) < len(names):
                yield Import(name, module, names, path, node.lineno)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it (the first repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as error:
        cycle = error.args[1]
        return list(reversed(cycle))  # graphlib lists it against the arrows
    return None


def violations(root: Path) -> list[str]:
    """What in the tree under `root` breaks the rules of this module's docstring, one line each."""
    modules = modules_under(root, (SERVER, "toolkit"))
    found: list[str] = []
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        in_server = _within(name, SERVER)
        shell = next((shell for package, shell in SANS_IO_PACKAGES.items() if _within(name, package)), None)
        for imported in imports_of(name, path, modules):
            target = imported.target
            if shell is not None and not _within(name, shell):
                if _within(target, shell):
                    found.append(f"{imported.where(root)}: {name} (sans-IO) imports the shell, {target}")
                elif imported.top in SANS_IO_FORBIDDEN and not (
                        target == "socket" and imported.names and set(imported.names) <= SOCKET_CONVERSIONS):
                    what = f"{target} ({', '.join(imported.names)})" if imported.names else target
                    found.append(f"{imported.where(root)}: {name} (sans-IO) imports {what}, which only {shell} may")
            if in_server and imported.top == "toolkit":
                found.append(f"{imported.where(root)}: {name} imports {target}; reference_server imports nothing "
                             "from toolkit")
            if (_within(name, "toolkit") and _within(target, SERVER)
                    and not any(_within(name, allowed) for allowed in SERVER_IMPORTERS)):
                found.append(f"{imported.where(root)}: {name} imports {target}; only {', '.join(SERVER_IMPORTERS)} "
                             "may import reference_server (principle 3)")
            if (_within(name, COMMANDS) and _within(target, COMMANDS) and target not in (COMMANDS, SHARED_ARGUMENTS)
                    and name != target):
                found.append(f"{imported.where(root)}: {name} imports the command module {target}; commands share "
                             f"code through {SHARED_ARGUMENTS} only")
            graphed = (SERVER, COMMANDS)
            if any(_within(name, p) for p in graphed) and any(_within(target, p) for p in graphed) and target in modules:
                edges.setdefault(name, set()).add(target)
    cycle = find_cycle(edges)
    if cycle is not None:
        found.append(f"import cycle: {' -> '.join(cycle)}")
    return found


# -- the repository -----------------------------------------------------------------------------


def test_the_repository_keeps_its_layers():
    assert violations(ROOT) == []


def test_the_shell_is_where_the_io_is():
    """The split is real: the shell holds the sockets, loops and HTTP the sans-IO part may not."""
    modules = modules_under(ROOT, (SHELL,))
    tops = {imported.top for name, path in modules.items() for imported in imports_of(name, path, modules)}
    assert {"asyncio", "socket", "aiohttp", "aiortc", "subprocess", "threading"} <= tops


def test_the_peers_shell_is_where_its_io_is():
    """The probe peer's socket, WHIP client and data channels, and nothing sans-IO, sit in its shell."""
    modules = modules_under(ROOT, (PEER_SHELL,))
    assert set(modules) == {PEER_SHELL, f"{PEER_SHELL}.udp", f"{PEER_SHELL}.whip", f"{PEER_SHELL}.datachannel"}
    tops = {imported.top for name, path in modules.items() for imported in imports_of(name, path, modules)}
    assert {"asyncio", "aiohttp", "aiortc"} <= tops
    peer = modules_under(ROOT, (PEER,))
    for name in ("core", "ice", "dtls", "srtp", "phase", "events", "offer"):
        assert f"{PEER}.{name}" in peer


def test_the_sans_io_part_is_the_core_and_its_codecs():
    """The modules docs/architecture.md names as sans-IO are outside the shell (and exist)."""
    modules = modules_under(ROOT, (SERVER,))
    for name in ("core", "sessions", "dtls", "stun", "srtp", "rtp", "sdp", "demux", "events", "reasons", "metrics",
                 "reception", "outbound", "ratelimit", "credentials", "certificate", "voice.conversation",
                 "voice.endpoint", "voice.model", "voice.tones", "voice.turn", "voice.vad", "relay.routing",
                 "relay.protocol"):
        assert f"{SERVER}.{name}" in modules
    assert not any(_within(name, SHELL) for name in modules if name.startswith(f"{SERVER}.voice")
                   or name.startswith(f"{SERVER}.relay"))


def test_the_architecture_page_lists_every_shell_module_and_no_other():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = page[page.index("| shell module |"):]
    table = table[:table.index("\n\n")]
    listed = set(re.findall(r"`shell/(\w+)\.py`", table))
    present = {name.rpartition(".")[2] for name in modules_under(ROOT, (SHELL,)) if name != SHELL}
    assert listed == present


# -- the checker, on a fake tree ----------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "reference_server/__init__.py": "",
    "reference_server/codec.py": "from socket import AF_INET, inet_pton\nimport struct\n",
    "reference_server/core.py": "from . import codec\nfrom .codec import inet_pton\n",
    "reference_server/shell/__init__.py": "",
    "reference_server/shell/server.py": "import asyncio\nimport socket\nfrom ..core import codec\n",
    "toolkit/__init__.py": "",
    "toolkit/fuzz/__init__.py": "",
    "toolkit/fuzz/targets.py": "from reference_server import core\n",
    "toolkit/commands/__init__.py": "",
    "toolkit/commands/arguments.py": "import argparse\n",
    "toolkit/commands/serve.py": ("from toolkit.commands.arguments import port\n"
                                  "def run():\n    from reference_server.shell.server import run\n"),
    "toolkit/peer/__init__.py": "",
    "toolkit/peer/core.py": "from toolkit.peer import ice\n",
    "toolkit/peer/ice.py": "import struct\n",
    "toolkit/peer/shell/__init__.py": "",
    "toolkit/peer/shell/udp.py": "import asyncio\nfrom toolkit.peer.core import ProbePeer\n",
}


def test_a_clean_tree_has_no_violations(tmp_path):
    assert violations(_tree(tmp_path, CLEAN)) == []


def test_it_sees_the_sans_io_part_import_the_shell_even_inside_a_function(tmp_path):
    found = violations(_tree(tmp_path, {**CLEAN, "reference_server/core.py": (
        "from . import codec\n\n\ndef later():\n    from .shell import server\n")}))
    assert found[0] == ("reference_server/core.py:5: reference_server.core (sans-IO) imports the shell, "
                        "reference_server.shell.server")
    assert found[1:] and found[1].startswith("import cycle: ")  # the shell imports the core, too


def test_it_sees_io_modules_in_the_sans_io_part_but_lets_address_conversions_through(tmp_path):
    found = violations(_tree(tmp_path, {**CLEAN, "reference_server/codec.py": (
        "from socket import AF_INET, inet_pton\nimport asyncio.subprocess\nfrom socket import socket\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import aiohttp\n"
        "try:\n    import threading\nexcept ImportError:\n    pass\n")}))
    assert [line.split(": ", 1)[0] for line in found] == [
        "reference_server/codec.py:2", "reference_server/codec.py:3", "reference_server/codec.py:6",
        "reference_server/codec.py:8"]
    assert "imports socket (socket), which only reference_server.shell may" in found[1]


def test_it_sees_the_sans_io_peer_import_its_shell_or_a_loop(tmp_path):
    found = violations(_tree(tmp_path, {**CLEAN, "toolkit/peer/core.py": (
        "from toolkit.peer import ice\nfrom toolkit.peer.shell import udp\nimport asyncio\n")}))
    assert found == [
        "toolkit/peer/core.py:2: toolkit.peer.core (sans-IO) imports the shell, toolkit.peer.shell.udp",
        "toolkit/peer/core.py:3: toolkit.peer.core (sans-IO) imports asyncio, which only toolkit.peer.shell may"]


def test_it_sees_the_server_import_the_toolkit(tmp_path):
    found = violations(_tree(tmp_path, {**CLEAN, "reference_server/shell/server.py": "from toolkit.peer import udp\n"}))
    assert found == ["reference_server/shell/server.py:1: reference_server.shell.server imports toolkit.peer; "
                     "reference_server imports nothing from toolkit"]


def test_it_sees_the_judge_borrow_the_judged(tmp_path):
    found = violations(_tree(tmp_path, {**CLEAN, "toolkit/peer/core.py": "from reference_server import codec\n"}))
    assert len(found) == 1 and found[0].startswith("toolkit/peer/core.py:1: toolkit.peer.core imports "
                                                   "reference_server.codec; only toolkit.fuzz,")


def test_it_sees_an_import_cycle_and_a_command_importing_another(tmp_path):
    found = violations(_tree(tmp_path, {
        **CLEAN,
        "toolkit/commands/relay.py": "from toolkit.commands.serve import DEFAULT\n",
        "toolkit/commands/serve.py": "def run():\n    from toolkit.commands.relay import run_with_workers\n",
    }))
    assert "toolkit/commands/relay.py:1: toolkit.commands.relay imports the command module toolkit.commands.serve; " \
           "commands share code through toolkit.commands.arguments only" in found
    cycle = found[-1]
    assert cycle in ("import cycle: toolkit.commands.relay -> toolkit.commands.serve -> toolkit.commands.relay",
                     "import cycle: toolkit.commands.serve -> toolkit.commands.relay -> toolkit.commands.serve")


def test_it_reports_a_cycle_inside_the_server_along_its_arrows(tmp_path):
    found = violations(_tree(tmp_path, {
        **CLEAN,
        "reference_server/a.py": "from . import b\n",
        "reference_server/b.py": "from .c import thing\n",
        "reference_server/c.py": "from reference_server import a\n",
    }))
    assert len(found) == 1
    cycle = found[0].removeprefix("import cycle: ").split(" -> ")
    assert cycle[0] == cycle[-1] and len(cycle) == 4
    order = ["reference_server.a", "reference_server.b", "reference_server.c"] * 2
    start = order.index(cycle[0])
    assert cycle[:3] == order[start:start + 3]  # a -> b -> c -> a, from wherever it starts
