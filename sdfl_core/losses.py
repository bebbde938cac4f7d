"""Soft Wing, Wing, L1 and the Laplacian relative-location loss (paper III-D).

Errors arrive in crop units (see ``sdfl_core.model``). The paper's Soft Wing constants are in pixels of
a 256-px crop, so errors are scaled by ``reference_size`` (256) before the loss: the loss then has the
same shape whatever the crop resolution the model runs at.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

LOSSES = ("softwing", "wing", "l1")


def soft_wing(x: torch.Tensor, w1: float = 2.0, w2: float = 20.0, eps: float = 0.5) -> torch.Tensor:
    """Eq. 9: |x| below w1, w2 ln(1 + |x|/eps) + B above, with B making it continuous at w1."""
    a = x.abs()
    b = w1 - w2 * math.log(1 + w1 / eps)
    return torch.where(a < w1, a, w2 * torch.log1p(a / eps) + b)


def wing(x: torch.Tensor, w: float = 10.0, eps: float = 2.0) -> torch.Tensor:
    """Eq. 11 (Feng et al.): w ln(1 + |x|/eps) below w, |x| - C above."""
    a = x.abs()
    c = w - w * math.log(1 + w / eps)
    return torch.where(a < w, w * torch.log1p(a / eps), a - c)


def _pointwise(name: str):
    if name == "softwing":
        return soft_wing
    if name == "wing":
        return wing
    if name == "l1":
        return torch.abs
    raise ValueError(f"unknown loss {name!r} (known: {', '.join(LOSSES)})")


class LandmarkLoss(nn.Module):
    """absolute + lambda * relative, each summed over points and coordinates and averaged over the batch."""

    def __init__(self, laplacian: np.ndarray | None, kind: str = "softwing", relative_weight: float = 1.0,
                 reference_size: float = 256.0) -> None:
        super().__init__()
        self.fn = _pointwise(kind)
        self.relative_weight = float(relative_weight)
        self.reference_size = float(reference_size)
        if laplacian is not None:
            self.register_buffer("laplacian", torch.as_tensor(np.asarray(laplacian), dtype=torch.float32))
        else:
            self.laplacian = None
        if self.relative_weight and self.laplacian is None:
            raise ValueError("the relative-location loss needs the graph's Laplacian")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        if pred.shape != target.shape or pred.ndim != 3 or pred.shape[-1] != 2:
            raise ValueError(f"pred and target must both be (B, N, 2), got {tuple(pred.shape)} and {tuple(target.shape)}")
        scale = self.reference_size
        absolute = self.fn((pred - target) * scale).sum(dim=(1, 2)).mean()
        out = {"absolute": absolute}
        if self.relative_weight:
            if self.laplacian.shape[0] != pred.shape[1]:
                raise ValueError(f"the Laplacian is {tuple(self.laplacian.shape)} but the landmarks have {pred.shape[1]} points")
            lap = self.laplacian.to(pred.dtype)
            relative = self.fn((lap @ pred - lap @ target) * scale).sum(dim=(1, 2)).mean()
            out["relative"] = relative
            out["total"] = absolute + self.relative_weight * relative
        else:
            out["total"] = absolute
        return out


def edge_occlusion_loss(edge_weights: torch.Tensor, occluded: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Share of each visible node's neighbour weight that goes to occluded neighbours, summed over
    visible nodes, batch mean.

    An extension beyond the paper (which learns the dynamic edge weights from the landmark loss alone):
    training occluders are placed by the augmentation, so which landmarks they cover is known, and the
    edges that would carry their noise into visible landmarks can be pushed down directly. The share is
    taken over the neighbours only (self-loops left out): otherwise the loss would be minimised by
    putting all weight on the self-loops, i.e. by switching message passing off.
    ``edge_weights`` is (B, N, N), rows summing to 1; ``occluded`` is (B, N), 1 for an occluded landmark.
    """
    if edge_weights.ndim != 3 or edge_weights.shape[1:] != (occluded.shape[1], occluded.shape[1]) \
            or edge_weights.shape[0] != occluded.shape[0]:
        raise ValueError(f"edge weights (B, N, N) and occlusion flags (B, N) do not match: "
                         f"{tuple(edge_weights.shape)} and {tuple(occluded.shape)}")
    occ = occluded.to(edge_weights.dtype)
    neighbours = edge_weights * (1 - torch.eye(edge_weights.shape[1], dtype=edge_weights.dtype,
                                               device=edge_weights.device))
    into_occluded = (neighbours * occ[:, None, :]).sum(dim=2)  # (B, N)
    share = into_occluded / (neighbours.sum(dim=2) + eps)
    return (share * (1 - occ)).sum(dim=1).mean()
