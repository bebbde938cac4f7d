"""Fit the map from MediaPipe face boxes to the landmark boxes a model was trained on.

The model learns crops around landmark boxes; at run time it gets detector boxes, which sit higher
(forehead) and have another size. The median offset and size ratio over labelled training images let
the pipeline turn one into the other (stored in the checkpoint as ``crop.detector_box``).

Also the graph head's hidden bound (``hidden_bound``): each node's hidden-feature norm on the run's own training
crops, which ``training.ship`` stores with the model (``SDFLModel.set_hidden_bound``).
"""
from __future__ import annotations

import logging
import random

import numpy as np

from sdfl_core import crops
from sdfl_core.datasets import Sample, readable_images
from sdfl_core.detector import DetectorOptions, FaceDetector
from sdfl_core.evaluate import best_detection

log = logging.getLogger(__name__)


def calibrate_detector_box(samples: list[Sample], model: str = "short", min_confidence: float = 0.5) -> dict:
    """Median (dx, dy) centre shift in detector-box widths/heights and the size ratio, with counts."""
    dxs, dys, scales = [], [], []
    with FaceDetector(DetectorOptions(model=model, min_confidence=min_confidence)) as detector:
        for sample, image in readable_images(samples):
            det = best_detection(detector.detect(image), sample.points)
            if det is None:
                continue
            x, y, w, h = det.box
            lx, ly, lw, lh = crops.landmark_box(sample.points)
            dxs.append((lx + lw / 2 - (x + w / 2)) / w)
            dys.append((ly + lh / 2 - (y + h / 2)) / h)
            scales.append(max(lw, lh) / max(w, h))
    if len(scales) < 10:
        raise ValueError(f"only {len(scales)} faces detected; cannot calibrate the detector box")
    return {"dx": float(np.median(dxs)), "dy": float(np.median(dys)), "scale": float(np.median(scales)),
            "faces": len(scales), "of": len(samples), "detector": model,
            "scale_iqr": float(np.subtract(*np.percentile(scales, [75, 25])))}


def training_crops(config: dict, info, faces: int, skip: int = 0, augment: bool = False, seed: int = 0):
    """A LandmarkDataset of the run's training split, shuffled with seed 0, faces ``skip`` to ``skip + faces``:
    plain crops from the landmark boxes, or with ``augment`` the run's own augmentation (seeded by ``seed``)."""
    from .augment import AugmentConfig
    from .data import LandmarkDataset, load_cached, split_samples

    if faces < 1:
        raise ValueError(f"faces must be at least 1, got {faces}")
    train, _ = split_samples(config)
    random.Random(0).shuffle(train)
    images, points, _ = load_cached(train[skip:skip + faces], config["data"]["precrop_size"], info.schema)
    return LandmarkDataset(images, points, info.schema, info.config.input_size, info.crop_scale, info.norm_mean,
                           info.norm_std, AugmentConfig(**config["augment"]) if augment else None, seed)


def hidden_norms(model, dataset, batch_size: int = 64):
    """(F, L, N): ``SDFLModel.hidden_norms`` over every crop of ``dataset``, in eval mode."""
    import torch
    from torch.utils.data import DataLoader

    was_training = model.training
    model.eval()
    try:
        return torch.cat([model.hidden_norms(x) for x, *_ in DataLoader(dataset, batch_size=batch_size, shuffle=False)])
    finally:
        model.train(was_training)


def hidden_bound(model, info, config: dict, faces: int = 2048, quantile: float = 0.99, margin: float = 2.0):
    """(L, N) tensor for ``SDFLModel.set_hidden_bound``: ``margin`` x each node's ``quantile`` of its
    hidden-feature norm, per layer, over ``faces`` plain training crops (the run's own split, cropped from the
    landmark boxes). A quantile, not the largest norm: a few training crops already throw the points off
    (the very thing the bound is for), and the largest norm would be theirs."""
    import torch

    if not 0 < quantile <= 1 or margin <= 0:
        raise ValueError(f"need 0 < quantile <= 1 and margin > 0, got {quantile} and {margin}")
    norms = hidden_norms(model, training_crops(config, info, faces))
    bound = torch.quantile(norms, quantile, dim=0) * margin
    log.info("hidden bound over %d training crops: %.1f-%.1f", len(norms), float(bound.min()), float(bound.max()))
    return bound
