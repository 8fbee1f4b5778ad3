"""The install as a newcomer meets it: a server extra that is missing or broken is one line naming the
module and why, never a traceback, and never a server that starts and later says "needs X" for an X that
is installed. The test suite itself skips only what is not installed (conftest.needs). And the wheel holds
every module and file of the source tree: each imports from it, installed alone in a fresh venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
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


# -- the wheel ------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tarjama"
# What setuptools reads besides the package itself (pyproject's readme and license files).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "MANIFEST.in")

# Run in the fresh venv: every module named on stdin is imported (a `__main__` is only found: importing it
# runs the program), and each must come from that venv's site-packages, not from the source tree.
IMPORT_EVERY_MODULE = """
import importlib, importlib.util, json, sys, sysconfig, traceback
site = sysconfig.get_paths()["purelib"]
problems = {}
for name in sys.stdin.read().split():
    try:
        if name.endswith(".__main__"):
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec else None
        else:
            origin = importlib.import_module(name).__file__
    except Exception:
        problems[name] = traceback.format_exc(limit=-3)
        continue
    if not origin or not origin.startswith(site):
        problems[name] = f"imported from {origin}, not from the wheel in {site}"
print(json.dumps(problems))
"""


def source_modules(package: Path) -> list[str]:
    """Every module the source tree has, as dotted names."""
    root = package.parent
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def package_data(package: Path) -> list[str]:
    """The files of the package that are not Python source: static pages, .pyi stubs, py.typed."""
    root = package.parent
    return sorted(
        path.relative_to(root).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def build_wheel(source: Path, out: Path) -> Path:
    """The wheel of a copy of `source` (an in-tree build would reuse build/lib, where a module that discovery
    lost can linger from an earlier build). No build isolation, so no download: the test extra's
    setuptools (>= 77, for the SPDX license) builds it, as a fresh `python3 -m venv` with pip 23.2 does."""
    tree = out / "tree"
    tree.mkdir(parents=True)
    for name in BUILD_INPUTS:
        if (source / name).exists():
            shutil.copy2(source / name, tree / name)
    shutil.copytree(source / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = out / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    done = subprocess.run([*build, str(tree)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = wheels.glob("tarjama-*.whl")
    return wheel


def installed_problems(wheel: Path, venv_dir: Path, modules: list[str]) -> dict[str, str]:
    """Install `wheel` alone (--no-deps) into a fresh venv whose dependencies are this test venv's
    site-packages, by a .pth path (whose own .pth files, the editable install's among them, are not run);
    import every module there. Returns {module: what went wrong}."""
    import json
    import sysconfig
    import venv

    venv.EnvBuilder(with_pip=False).create(venv_dir)
    python = venv_dir / "bin" / "python"
    site = subprocess.run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(site, "test-venv-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    # -I: no PYTHONPATH, no user site, and neither the current directory nor a script's on the path.
    done = subprocess.run([str(python), "-I", "-c", IMPORT_EVERY_MODULE], input="\n".join(modules),
                          capture_output=True, text=True, timeout=600, cwd=venv_dir, env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_wheel_holds_every_module_and_file_of_the_source_tree(tmp_path: Path) -> None:
    """A package that setuptools' discovery misses (a subpackage without its entry) is a server that works from
    the repository and not from `pip install`: every module of src/tarjama must import from the installed
    wheel, and every static page, stub and marker file be in it."""
    needs("setuptools", "test")
    wheel = build_wheel(ROOT, tmp_path / "build")
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    missing = [name for name in package_data(PACKAGE) if name not in packed]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert {"tarjama/py.typed", "tarjama/v1/tarjama_pb2.pyi", "tarjama/server/static/index.html"} <= packed
    modules = source_modules(PACKAGE)
    assert "tarjama.server.text.segmentation" in modules and "tarjama.server.__main__" in modules
    problems = installed_problems(wheel, tmp_path / "venv", modules)
    assert not problems, "\n".join(f"{name}: {why}" for name, why in problems.items())
