"""The repository's own checks, run by the README's test command (so CI runs nothing a newcomer does not):
the code is lint-clean, its types check, its imports keep their layers, and CI runs the README's test
command verbatim."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parent.parent


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Run the tests.**", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()  # type: ignore[union-attr]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = readme_test_command()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines(), f"{command!r} is not a line of .ci/run"
    assert "pip install --upgrade pip" not in ci and "--upgrade pip" not in ci  # no set-up a newcomer would not do


def test_the_code_is_lint_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter]: the server's eight floors (nothing imports upwards, every module
    has its floor), the server without the client, the client without the server but for the CLI."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache", "--no-logo"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def longest_chain(graph: nx.DiGraph) -> list[str]:
    return [str(node) for node in nx.dag_longest_path(graph)]


def import_graph(unit: Callable[[str], str]) -> nx.DiGraph:
    """tarjama's imports (those under TYPE_CHECKING too: a type is a dependency), each module named by
    `unit` (itself, or the package it belongs to); imports within one unit are left out."""
    graph = grimp.build_graph("tarjama", cache_dir=None)  # no cache written into the work tree
    units = nx.DiGraph()
    for module in graph.modules:
        units.add_node(unit(module))
        for imported in graph.find_modules_directly_imported_by(module):
            if unit(imported) != unit(module):
                units.add_edge(unit(module), unit(imported))
    return units


def server_unit(module: str) -> str:
    """A module of tarjama.server as its floor knows it: the top-level module or subpackage."""
    return ".".join(module.split(".")[:3])


# The longest chain of server modules importing one another (issue 18: 12, after settings stopped importing
# the engines' registry). Eight floors allow more than eight modules, since a floor's modules may import each
# other (text.names -> text.rules -> text.glossary): this bound only stops the chain growing.
MAX_MODULE_CHAIN = 12


def test_no_import_cycles_and_a_short_longest_chain() -> None:
    """No cycle among tarjama's modules, nor among the server's floors' units (a subpackage counted as one,
    so that markup.html -> pipeline -> markup.x would count); the longest chain of units is at most 8 (the
    floors), that of modules at most MAX_MODULE_CHAIN. The chains are printed when a bound fails."""
    modules = import_graph(lambda module: module)
    cycles = [sorted(c) for c in nx.strongly_connected_components(modules) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"
    by_unit = import_graph(server_unit)
    server = by_unit.subgraph(unit for unit in by_unit if unit.startswith("tarjama.server."))
    cycles = [sorted(c) for c in nx.strongly_connected_components(server) if len(c) > 1]
    assert not cycles, f"import cycles between the server's modules and subpackages: {cycles}"
    units = longest_chain(server)
    assert len(units) <= 8, f"{len(units)} floors: " + " -> ".join(units)
    chain = longest_chain(modules.subgraph(m for m in modules if m.startswith("tarjama.server.")))
    assert len(chain) <= MAX_MODULE_CHAIN, f"{len(chain)} modules: " + " -> ".join(chain)


def test_the_types_check() -> None:
    """mypy as pyproject.toml's [tool.mypy] says: strict on tarjama.server, mypy's defaults elsewhere."""
    done = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_names_every_server_module() -> None:
    """The module table in "How it works" names every module of the server in its package (a module named
    only by its file name counts for its package's row, as `text/` lists `segmentation.py`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## How it works", 1)[1].split("\n\n| package / module |", 1)[1].split("\n\n", 1)[0]
    rows = {row.split("|")[1]: row for row in table.splitlines() if row.startswith("| `")}
    server = ROOT / "src" / "tarjama" / "server"
    missing = []
    for path in sorted(server.rglob("*.py")):
        relative = path.relative_to(server)
        if relative.name in ("__init__.py", "__main__.py"):
            continue
        package = relative.parts[0] + "/" if len(relative.parts) > 1 else None
        named = f"`{relative.as_posix()}`" in table or (
            package is not None
            and any(f"`{package}" in cell and f"`{relative.name}`" in row for cell, row in rows.items())
        )
        if not named:
            missing.append(relative.as_posix())
    assert not missing, f"modules the README's module table does not name: {missing}"
