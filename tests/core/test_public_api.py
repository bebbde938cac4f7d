import subprocess
import sys

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
