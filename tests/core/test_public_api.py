import subprocess
import sys
from pathlib import Path

import pytest

import sdfl_core


def test_public_names_resolve():
    for name in sdfl_core.__all__:
        assert getattr(sdfl_core, name) is not None, name
    assert set(sdfl_core.__all__) <= set(dir(sdfl_core))
    assert sdfl_core.Pipeline.__module__ == "sdfl_core.pipeline"


@pytest.mark.slow
def test_import_loads_nothing_heavy():
    code = ("import sys, sdfl_core\n"
            "print(sorted(m for m in ('torch', 'cv2', 'numpy', 'mediapipe', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_wheel_lists_every_package_of_the_repo():
    """A subpackage missing from [tool.setuptools] packages is left out of `pip install .` (sdfl_core.cli
    was, once): every folder with an __init__.py must be listed, under its installed name."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    repo = Path(__file__).resolve().parents[2]
    tool = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed_as = {folder: name for name, folder in tool["package-dir"].items()}
    found = set()
    for init in (i for top in ("sdfl_core", "app", "training", "assets") for i in (repo / top).rglob("__init__.py")):
        parts = init.parent.relative_to(repo).parts
        found.add(".".join((installed_as.get(parts[0], parts[0]), *parts[1:])))
    assert found and found == set(tool["packages"])
