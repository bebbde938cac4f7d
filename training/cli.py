"""`sdfl train --config C [--set k=v ...] [--resume last.pt] [--nproc N]`; also `torchrun -m training ...`."""
from __future__ import annotations

import logging
import os

from . import distributed
from .config import load_config
from .train import train


def run(args) -> int:
    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc > 1:
        return launch(args)
    config = load_config(args.config, args.set)
    if distributed.launched() and int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 alone reports
    try:
        best = train(config, resume=args.resume)
        if distributed.is_rank0():
            print(f"best checkpoint: {best}")
    finally:
        distributed.cleanup()
    return 0


def launch(args) -> int:
    """``--nproc N``: N training processes on this machine through torchrun (torch.distributed.run)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    load_config(args.config, args.set)  # a bad config fails here, once, not in every process
    # Each rank runs this package's __main__ (`training` in a checkout, `sdfl_training` installed).
    command = ["--standalone", f"--nproc_per_node={args.nproc}", "-m", __package__, "--config", str(args.config)]
    command += [f"--set={item}" for item in args.set] + ([f"--resume={args.resume}"] if args.resume else [])
    try:
        torchrun(command)
    except ChildFailedError as exc:
        failures = ", ".join(f"rank {rank} exit code {f.exitcode}" for rank, f in sorted(exc.failures.items()))
        raise ChildProcessError(f"distributed training failed ({failures}); the ranks' errors are above") from None
    return 0

