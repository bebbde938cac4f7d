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
    clean = np.random.default_rng(0).uniform(0, 100, size=(20, 2))
    occluded = clean.copy()
    occluded[2] += [8.0, 6.0]  # point 2 jumps under the occluder
    covered = np.ones(20)
    covered[2] = 0.005
    sure = track_through_occlusion(clean, np.ones(20), occluded, covered, scale=100.0)
    blind = track_through_occlusion(clean, np.ones(20), occluded, np.ones(20), scale=100.0)
    jump = np.linalg.norm(occluded[2] - clean[2])
    assert np.linalg.norm(sure[2] - clean[2]) < 0.5 * jump  # leans on the face
    assert np.linalg.norm(blind[2] - occluded[2]) < 0.3 * jump  # all visible: follows the measurement
    # The other points stay put: one point's jump barely moves the face they share.
    assert np.abs(np.delete(sure, 2, axis=0) - np.delete(clean, 2, axis=0)).max() < 0.05 * jump
