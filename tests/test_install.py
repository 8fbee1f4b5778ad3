"""The install as a newcomer meets it: a server extra that is missing or broken is one line naming the
module and why, never a traceback, and never a server that starts and later says "needs X" for an X that
is installed. The test suite itself skips only what is not installed (conftest.needs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs

# Runs the CLI with `module` hidden, as a client-only install (`pip install .`) lacks it.
HIDDEN = "import sys; sys.modules[{module!r}] = None; from tarjama.client.cli import main; sys.exit(main({argv!r}))"


def tarjama_without(module: str, *argv: str) -> subprocess.CompletedProcess[str]:
    code = HIDDEN.format(module=module, argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["models", "download"]])
def test_a_client_only_install_gets_one_line_not_a_traceback(command: list[str]) -> None:
    """Regression: `tarjama serve` and `models download` ended in ModuleNotFoundError: prometheus_client
    (app.py imported the metrics module before the dependency check)."""
    result = tarjama_without("prometheus_client", *command)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert "prometheus_client" in result.stderr and "pip install -c constraints.txt '.[server]'" in result.stderr


def test_bulk_without_its_extra_is_one_line() -> None:
    result = tarjama_without("pyarrow", "bulk", "in.jsonl", "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "pyarrow" in result.stderr and "'.[server,bulk]'" in result.stderr


def broken_module(tmp_path: Path, name: str) -> dict[str, str]:
    """A package `name` that is installed (importable by path) but raises on import, as lxml_html_clean's
    absence made trafilatura do; the environment that puts it first on the path."""
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('simulated: a dependency of it is missing')\n")
    import os

    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_a_server_module_that_does_not_import_stops_the_server_with_its_reason(tmp_path: Path) -> None:
    """Regression: with pip 23.2, trafilatura was installed but did not import; the server started without a
    word and --extract answered FAILED_PRECONDITION 'needs trafilatura … pip install', the real error dropped."""
    env = broken_module(tmp_path, "trafilatura")
    result = subprocess.run([sys.executable, "-m", "tarjama.client.cli", "serve", "--port", "0"],
                            capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in line, line
    assert "trafilatura is installed but does not import" in line and "simulated: a dependency" in line


def test_the_extraction_error_says_why_trafilatura_does_not_import(tmp_path: Path) -> None:
    env = broken_module(tmp_path, "trafilatura")
    code = (
        "from tarjama.server.markup.extraction import extract_article\n"
        "from tarjama.server.errors import FeatureUnavailable\n"
        "try:\n    extract_article('<p>x</p>')\nexcept FeatureUnavailable as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert "simulated: a dependency of it is missing" in result.stdout, result.stdout + result.stderr


def test_needs_skips_only_what_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(pytest.skip.Exception):
        needs("tarjama_no_such_module", "server")
    package = tmp_path / "tarjama_broken_module"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="broken"):  # a broken install fails, it is not skipped
        needs("tarjama_broken_module", "server")
