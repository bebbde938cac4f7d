"""Multi-process training with torch.distributed: ``torchrun --nproc_per_node=N -m training --config C``.

torchrun sets RANK / LOCAL_RANK / WORLD_SIZE; without them (a plain ``sdfl train``) every helper here
is a no-op, so the single-process path does not change. Rank 0 alone logs, validates and writes files.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

log = logging.getLogger(__name__)


def launched() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    return dist.get_world_size() if is_active() else 1


def is_rank0() -> bool:
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the torchrun process group (NCCL on CUDA, gloo on the CPU) and return this rank's device."""
    if not launched():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not is_active():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        log.info("rank %d of %d on %s", rank(), world_size(), device)
    return device


def cleanup() -> None:
    if is_active():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device, find_unused_parameters: bool = False) -> torch.nn.Module:
    """``model`` under DistributedDataParallel when distributed; the model itself otherwise.
    ``find_unused_parameters``: some trainable parameters take no part in the loss (slower; DDP needs to know)."""
    if not is_active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=find_unused_parameters)


def reduce_max(value: float) -> float:
    """The largest ``value`` over the ranks (e.g. a stop flag or a time budget: every rank must agree)."""
    if not is_active():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def reduce_mean(value: float) -> float:
    if not is_active():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / world_size()


def barrier() -> None:
    if is_active():
        dist.barrier()


class DistributedWeightedSampler(Sampler[int]):
    """WeightedRandomSampler split over the ranks: every rank draws the same ``num_samples`` indices
    (with replacement, from a generator seeded by ``seed + epoch``) and keeps every ``world``-th one
    from its rank on, so together the ranks see one weighted epoch. Call :meth:`set_epoch` each epoch."""

    def __init__(self, weights, num_samples: int, seed: int = 0, rank_: int | None = None, world: int | None = None) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.rank = rank() if rank_ is None else rank_
        self.world = world_size() if world is None else world
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} is not in a world of {self.world}")
        self.total = int(math.ceil(num_samples / self.world)) * self.world  # every rank the same step count
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.total // self.world

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total, replacement=True, generator=generator)
        return iter(drawn[self.rank::self.world].tolist())


def distributed_sampler(dataset, weights=None, seed: int = 0) -> Sampler | None:
    """The training sampler of this rank: None single-process without weights (the DataLoader shuffles),
    a WeightedRandomSampler's distributed form with ``weights``, else a shuffling DistributedSampler."""
    if not is_active():
        return None
    if weights is not None:
        return DistributedWeightedSampler(weights, len(dataset), seed)
    return DistributedSampler(dataset, shuffle=True, seed=seed)
