"""Train / validation splits that keep every group (identity, video) on one side."""
from __future__ import annotations

import numpy as np

from .base import Sample


def split_by_group(samples: list[Sample], val_fraction: float, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Split into (train, val) so that no group is on both sides.

    Groups are shuffled with ``seed`` and moved to val until it holds about ``val_fraction`` of the
    samples; the order of samples inside each side is kept. Same inputs and seed, same split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups = sorted({s.group for s in samples})
    if val_fraction == 0.0 or not samples:
        return list(samples), []
    if len(groups) < 2:
        raise ValueError(f"cannot split {len(samples)} samples by group: they all belong to one group {groups[0]!r}")
    sizes: dict[str, int] = {}
    for s in samples:
        sizes[s.group] = sizes.get(s.group, 0) + 1
    target = val_fraction * len(samples)
    order = np.random.default_rng(seed).permutation(len(groups))
    val_groups: set[str] = set()
    count = 0
    for idx in order[:-1]:  # the last group always stays in train, so train is never empty
        if count >= target:
            break
        g = groups[idx]
        # Take a group only if it brings val closer to the target than leaving it out would.
        if count == 0 or abs(count + sizes[g] - target) <= abs(count - target):
            val_groups.add(g)
            count += sizes[g]
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    return train, val

