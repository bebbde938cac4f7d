import numpy as np
import pytest

from sdfl_core.metrics import auc, ced, failure_rate, nme, nme_io, nme_ip, summarize
from sdfl_core.schemas import W300


def face(seed=0) -> np.ndarray:
    """A 68-point 300W shape with outer eye corners 60 px apart and pupils 40 px apart."""
    pts = np.random.default_rng(seed).uniform(0, 100, size=(68, 2))
    pts[36:42] = [100, 100]  # right pupil mean (100, 100)
    pts[42:48] = [140, 100]  # left pupil mean (140, 100)
    pts[36], pts[39] = [90, 100], [110, 100]  # outer / inner corners keep the means
    pts[45], pts[42] = [150, 100], [130, 100]
    return pts


def test_nme_hand_computed():
    gt = np.zeros((2, 2, 2))
    pred = gt.copy()
    pred[0, 0] = [3, 4]  # errors 5 and 0 -> mean 2.5
    pred[1] = [[1, 0], [0, 3]]  # errors 1 and 3 -> mean 2
    np.testing.assert_allclose(nme(pred, gt, np.array([5.0, 4.0])), [0.5, 0.5])


def test_nme_io_and_ip_hand_computed():
    gt = face()[None]
    pred = gt + np.array([3.0, 4.0])  # every point off by 5 px
    assert W300.ocular_distance(gt)[0] == pytest.approx(60)
    assert W300.pupil_distance(gt)[0] == pytest.approx(40)
    np.testing.assert_allclose(nme_io(pred, gt, W300), [5 / 60])
    np.testing.assert_allclose(nme_ip(pred, gt, W300), [5 / 40])


def test_nme_normalises_with_ground_truth_not_prediction():
    gt = face()[None]
    pred = gt.copy()
    pred[0, 36] += [-30, 0]  # widens the predicted eye distance; norm must stay 60
    np.testing.assert_allclose(nme_io(pred, gt, W300), [30 / 68 / 60])


def test_point_mask_visible_only_and_nan_when_empty():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[:, 0] = [6, 8]  # error 10 on point 0
    pred[:, 1] = [0, 2]  # error 2 on point 1
    mask = np.array([[False, True, True], [False, False, False]])
    out = nme(pred, gt, np.array([2.0, 2.0]), point_mask=mask)
    assert out[0] == pytest.approx((2 + 0) / 2 / 2)
    assert np.isnan(out[1])


def test_nme_errors():
    with pytest.raises(ValueError, match=r"\(M, N, 2\)"):
        nme(np.zeros((2, 3, 2)), np.zeros((2, 4, 2)), np.ones(2))
    with pytest.raises(ValueError, match=r"norm must be \(2,\)"):
        nme(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        nme(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.array([1.0, 0.0]))


def test_failure_rate():
    errors = np.array([0.05, 0.1, 0.11, 0.3])
    assert failure_rate(errors) == 0.5  # strictly above the threshold fails
    assert failure_rate(errors, 0.08) == 0.75
    with pytest.raises(ValueError, match="no errors"):
        failure_rate(np.array([]))


def test_auc_extremes():
    assert auc(np.zeros(10)) == pytest.approx(1.0)
    assert auc(np.array([0.1, 0.2, 5.0])) == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="no errors"):
        auc(np.array([]))


def test_auc_single_error_halfway():
    assert auc(np.array([0.05])) == pytest.approx(0.5, abs=1e-3)


def test_auc_uniform_errors():
    errors = np.linspace(0, 0.1, 1001)  # CED is the line y = x / 0.1 -> area 0.5
    assert auc(errors) == pytest.approx(0.5, abs=1e-3)


def test_auc_matches_independent_integration():
    errors = np.random.default_rng(0).gamma(2.0, 0.03, size=300)
    xs = np.linspace(0, 0.1, 200001)
    ys = (errors[None, :] <= xs[:, None]).mean(axis=1)
    reference = float(((ys[1:] + ys[:-1]) / 2 * np.diff(xs)).sum() / 0.1)
    # Exact area: each image below the threshold contributes (threshold - e) / threshold.
    exact = float(np.clip(0.1 - errors, 0, None).sum() / errors.size / 0.1)
    assert auc(errors) == pytest.approx(reference, abs=1e-3)
    assert auc(errors) == pytest.approx(exact, abs=1e-3)


def test_ced_monotone_and_bounded():
    errors = np.random.default_rng(1).uniform(0, 0.2, size=50)
    xs, ys = ced(errors, steps=501)
    assert xs.shape == ys.shape == (501,)
    assert xs[0] == 0 and xs[-1] == pytest.approx(0.1)
    assert (np.diff(ys) >= 0).all()
    assert 0 <= ys[0] and ys[-1] == pytest.approx((errors <= 0.1).mean())


def test_summarize_keys_and_values():
    gt = np.stack([face(0), face(1)])
    pred = gt.copy()
    pred[0] += [3, 4]  # nme_io 5/60
    pred[1] += [6, 8]  # nme_io 10/60 > 0.1 -> failure
    out = summarize(pred, gt, W300)
    assert set(out) == {"count", "nme_io", "nme_ip", "fr_10", "auc_10", "worst_io"}
    assert out["count"] == 2
    assert out["worst_io"] == pytest.approx(10 / 60)
    assert out["nme_io"] == pytest.approx((5 / 60 + 10 / 60) / 2)
    assert out["nme_ip"] == pytest.approx((5 / 40 + 10 / 40) / 2)
    assert out["fr_10"] == 0.5
    assert out["auc_10"] == pytest.approx((0.1 - 5 / 60) / 0.1 / 2, abs=1e-3)


def test_auroc_known_values():
    from sdfl_core.metrics import auroc

    assert auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == 0.5
    assert auroc([0.9, 0.3, 0.5, 0.1], [1, 1, 0, 0]) == 0.75  # 3 of the 4 positive/negative pairs ordered
    assert np.isnan(auroc([0.1, 0.2], [1, 1]))
    with pytest.raises(ValueError, match="differ in size"):
        auroc([0.1, 0.2], [1])
