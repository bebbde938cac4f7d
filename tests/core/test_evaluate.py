"""`sdfl eval`'s visibility_auroc: reported where the data flags occluded points and the model has the output."""
import numpy as np
from model_factory import make_checkpoint

from sdfl_core.datasets import Sample
from sdfl_core.evaluate import evaluate
from sdfl_core.landmarker import load_landmarker


def _samples(count: int, flags: bool) -> list[Sample]:
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 29, endpoint=False)
    out = []
    for i in range(count):
        image = rng.integers(0, 256, size=(120, 120, 3), dtype=np.uint8)
        points = np.stack([60 + 30 * np.cos(angles), 60 + 35 * np.sin(angles)], 1) + rng.normal(size=(29, 2))
        occluded = rng.uniform(size=29) < 0.3 if flags else None
        out.append(Sample(f"face{i}", points, image=image, occluded=occluded))
    return out


def test_visibility_auroc_only_with_flags_and_the_output(tmp_path):
    vis = load_landmarker(make_checkpoint(tmp_path / "vis29.pt", num_points=29, visibility=True), device="cpu")
    plain = load_landmarker(make_checkpoint(tmp_path / "plain29.pt", num_points=29), device="cpu")
    report, _ = evaluate(vis, _samples(4, flags=True))
    assert 0.0 <= report["visibility_auroc"] <= 1.0
    assert "visibility_auroc" not in evaluate(vis, _samples(4, flags=False))[0]
    assert "visibility_auroc" not in evaluate(plain, _samples(4, flags=True))[0]
