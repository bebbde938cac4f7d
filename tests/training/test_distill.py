"""Distillation towards a frozen model's mean over the test-time crops (``distill.*``)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdfl_core.crops import CROP_SHIFT, crop_affine, crop_steps, shifted_affines, warp  # noqa: E402
from training.train import CropMeanTeacher, make_teacher, moved_crops  # noqa: E402

SIZE = 100  # 5 % of 100 px is a whole 5 px, so the moved windows are exact pixel copies


def _moves() -> torch.Tensor:
    return torch.tensor(crop_steps(5), dtype=torch.float32) * CROP_SHIFT


def test_moved_crops_are_what_the_test_time_windows_see():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    affine = crop_affine(np.array([160.0, 120.0]), 150.0, SIZE)
    crop = torch.from_numpy(warp(image, affine, SIZE)).permute(2, 0, 1)[None].float()
    moved = moved_crops(crop, _moves())
    margin = int(CROP_SHIFT * SIZE)
    for k, shifted in enumerate(shifted_affines(affine, SIZE, 5)):
        expected = torch.from_numpy(warp(image, shifted, SIZE)).permute(2, 0, 1).float()
        inner = (slice(None), slice(margin, SIZE - margin), slice(margin, SIZE - margin))
        # Inside the part both windows share, the moved crop is the shifted window's crop (up to resampling).
        assert (moved[k][inner] - expected[inner]).abs().max() <= 2.0, k
    assert not torch.equal(moved[1], moved[0])


class BrightestPoint(torch.nn.Module):
    """A stand-in model: one 'landmark' at the soft-argmax of the first channel, in crop units."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(50.0))

    def forward(self, x):
        _, _, h, w = x.shape
        prob = torch.softmax(self.scale * x[:, 0].reshape(len(x), -1), dim=1).reshape(len(x), h, w)
        us = (torch.arange(w, dtype=torch.float32) + 0.5) / w
        vs = (torch.arange(h, dtype=torch.float32) + 0.5) / h
        u = (prob.sum(1) * us).sum(1)
        v = (prob.sum(2) * vs).sum(1)
        return (torch.stack([u, v], dim=1)[:, None, :],)


def _blob(u: float, v: float) -> torch.Tensor:
    vs, us = torch.meshgrid((torch.arange(SIZE) + 0.5) / SIZE, (torch.arange(SIZE) + 0.5) / SIZE, indexing="ij")
    blob = torch.exp(-((us - u) ** 2 + (vs - v) ** 2) / (2 * 0.02 ** 2))
    return blob.expand(3, SIZE, SIZE)


def test_teacher_moves_each_crops_points_back_before_the_mean():
    x = torch.stack([_blob(0.4, 0.6), _blob(0.55, 0.35)])
    model = BrightestPoint()
    teacher = CropMeanTeacher(model, 5, torch.device("cpu"))
    # Each moved window sees the point elsewhere ...
    seen = model(moved_crops(x, teacher.moves))[0].reshape(5, 2, 2)
    assert (seen - seen[0]).abs().amax() > 0.04
    # ... and the teacher puts every view back where the point is in the crop it was given.
    np.testing.assert_allclose(teacher(x)[:, 0].numpy(), [[0.4, 0.6], [0.55, 0.35]], atol=2e-3)
    # The five moves cancel in the mean; one-sided moves show that each view is moved back, the right way.
    teacher.moves = teacher.moves[:2]
    np.testing.assert_allclose(teacher(x)[:, 0].numpy(), [[0.4, 0.6], [0.55, 0.35]], atol=2e-3)
    assert not any(p.requires_grad for p in model.parameters())


class SizedBrightestPoint(BrightestPoint):
    """``BrightestPoint`` that, like an SDFL model, takes one input size only."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x):
        assert tuple(x.shape[-2:]) == (self.size, self.size), x.shape
        return super().forward(x)


def test_teacher_of_another_input_size_sees_the_crops_resampled_to_its_own():
    x = torch.stack([_blob(0.4, 0.6), _blob(0.55, 0.35)])  # SIZE px
    teacher = CropMeanTeacher(SizedBrightestPoint(2 * SIZE), 5, torch.device("cpu"), size=2 * SIZE)
    # Crop units do not depend on the size: the points come back where they are in the student's crop.
    np.testing.assert_allclose(teacher(x)[:, 0].numpy(), [[0.4, 0.6], [0.55, 0.35]], atol=3e-3)
    with pytest.raises(AssertionError):  # without its size, the teacher would get the student's crops
        CropMeanTeacher(SizedBrightestPoint(2 * SIZE), 5, torch.device("cpu"))(x)


class OffsetPoints(torch.nn.Module):
    """Two stand-in 'landmarks': the brightest point moved by fixed offsets (2, 2) in crop units."""

    def __init__(self, offsets) -> None:
        super().__init__()
        self.point, self.offsets = BrightestPoint(), torch.tensor(offsets, dtype=torch.float32)

    def forward(self, x):
        return (self.point(x)[0] + self.offsets,)


def test_flip_teacher_mirrors_each_view_back_and_renames_its_points():
    x = torch.stack([_blob(0.4, 0.6), _blob(0.55, 0.35)])
    true = np.array([[0.4, 0.6], [0.55, 0.35]])
    cpu = torch.device("cpu")
    # A left/right pair that a mirror image swaps, seen consistently: mirroring adds nothing, if (and only if)
    # each mirrored view's points are moved back (x -> 1 - x) and renamed to their mirror images.
    pair = OffsetPoints([[-0.05, 0.0], [0.05, 0.0]])
    flipped = CropMeanTeacher(pair, 5, cpu, mirror=[1, 0])(x).numpy()
    np.testing.assert_allclose(flipped, CropMeanTeacher(pair, 5, cpu)(x).numpy(), atol=2e-3)
    np.testing.assert_allclose(flipped[:, 0], true + [-0.05, 0.0], atol=2e-3)
    # Not renamed (a wrong mirror), the pair would collapse onto the blob.
    np.testing.assert_allclose(CropMeanTeacher(pair, 5, cpu, mirror=[0, 1])(x)[:, 0].numpy(), true, atol=2e-3)
    # A model biased to one side: the mirrored views cancel the bias in the mean; the plain teacher keeps it.
    biased = OffsetPoints([[0.05, 0.02], [0.05, 0.02]])
    np.testing.assert_allclose(CropMeanTeacher(biased, 5, cpu, mirror=[1, 0])(x)[:, 1].numpy(), true + [0.0, 0.02],
                               atol=2e-3)
    np.testing.assert_allclose(CropMeanTeacher(biased, 1, cpu)(x)[:, 1].numpy(), true + [0.05, 0.02], atol=2e-3)


def test_make_teacher_is_off_at_weight_zero_and_checks_its_settings(tmp_path):
    cpu = torch.device("cpu")
    assert make_teacher({"weight": 0.0, "teacher": "", "crops": 5}, "", cpu, 68) == (None, {})
    with pytest.raises(ValueError, match=r"distill.weight must be 0 \(off\) or in \(0, 1\]"):
        make_teacher({"weight": 1.5, "teacher": "", "crops": 5}, "", cpu, 68)
    with pytest.raises(ValueError, match="needs a teacher"):
        make_teacher({"weight": 0.5, "teacher": "", "crops": 5}, "", cpu, 68)
    with pytest.raises(FileNotFoundError):
        make_teacher({"weight": 0.5, "teacher": str(tmp_path / "missing.pt"), "crops": 5}, "", cpu, 68)
    with pytest.raises(ValueError, match="distill.clean needs a teacher"):
        make_teacher({"weight": 0.0, "teacher": "", "crops": 5, "clean": True}, "", cpu, 68)
