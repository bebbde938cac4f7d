import numpy as np
import pytest

from sdfl_core.visibility import track_through_occlusion, visibility_auroc


def test_visibility_auroc_known_values():
    visible = [np.array([True, True, False]), np.array([True, False])]
    assert visibility_auroc([np.array([0.9, 0.8, 0.1]), np.array([0.7, 0.2])], visible) == 1.0
    assert visibility_auroc([np.array([0.1, 0.2, 0.9]), np.array([0.3, 0.8])], visible) == 0.0
    # 3 visible x 2 covered pairs; the covered 0.75 beats the visible 0.7 once: 5 of 6 pairs ranked right.
    assert visibility_auroc([np.array([0.9, 0.8, 0.1]), np.array([0.7, 0.75])], visible) == pytest.approx(5 / 6)
    assert np.isnan(visibility_auroc([np.zeros(0), np.zeros(0)], visible))  # a model without the output
    assert np.isnan(visibility_auroc([np.array([0.5, 0.6])], [np.array([True, True])]))  # nothing covered


def test_a_covered_point_the_model_cannot_see_stays_near_its_clean_track():
    clean = np.array([[10.0, 10.0], [50.0, 10.0], [30.0, 40.0]])
    occluded = clean + [[0.0, 0.0], [0.0, 0.0], [8.0, 6.0]]  # point 2 jumps under the occluder
    sure = track_through_occlusion(clean, np.ones(3), occluded, np.array([1.0, 1.0, 0.005]), scale=100.0)
    blind = track_through_occlusion(clean, np.ones(3), occluded, np.ones(3), scale=100.0)
    jump = np.linalg.norm(occluded[2] - clean[2])
    assert np.linalg.norm(sure[2] - clean[2]) < 0.5 * jump  # leans on the track
    assert np.linalg.norm(blind[2] - occluded[2]) < 0.2 * jump  # all visible: follows the measurement (a
    # constant-velocity filter overshoots a step a little)
    np.testing.assert_allclose(sure[:2], clean[:2], atol=1e-4)
