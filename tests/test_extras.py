"""The optional parts are extras: the core (what `make demo` installs) imports and runs without
them, and a command that needs one says which in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIO = ("fastapi", "uvicorn", "starlette", "pydantic")

# A stand-in for an environment without the studio extra: importing its packages fails as it
# would there (ModuleNotFoundError naming the package).
WITHOUT_STUDIO = f"""
import importlib.abc, sys
class NoStudio(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {STUDIO!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NoStudio())
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_the_core_never_imports_the_studio_packages():
    r = _python("import sys, gankit, gankit.cli, gankit.api\n"
                "assert gankit.cli.main(['list', 'configs']) == 0\n"
                f"print(sorted(m for m in sys.modules if m.split('.')[0] in {STUDIO!r}))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_serve_without_the_studio_extra_is_one_line(tmp_path):
    r = _python(WITHOUT_STUDIO + f"import gankit.cli\nraise SystemExit(gankit.cli.main(['serve', {str(tmp_path)!r}]))")
    assert r.returncode == 2
    assert r.stderr == "error: gankit serve needs the studio extra: pip install 'gankit[studio]'\n"


def test_extras_in_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[ ;]", d)[0].lower() for d in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert not names & {"fastapi", "uvicorn", "pydantic", "pytest", "torchvision"}
    assert {"studio", "speech", "export", "dev"} <= set(extras)
    assert "gankit[studio,export]" in extras["dev"]
    assert not any("torchvision" in d for ds in extras.values() for d in ds)


def test_make_demo_installs_the_core_only():
    make = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo:(.*)$", make, re.M).group(1).split()
    core = make[make.index("$(BIN)/gankit: "):].split("\n\n")[0]
    assert demo == ["$(BIN)/gankit"]  # no espeak, no browser, no [dev]
    assert "pip install -q -e .\n" in core and "apt" not in core and "[" not in core.split("\n", 1)[1]
