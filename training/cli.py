"""`sdfl train --config C [--set k=v ...] [--resume last.pt]`."""
from __future__ import annotations

from .config import load_config
from .train import train


def run(args) -> int:
    config = load_config(args.config, args.set)
    best = train(config, resume=args.resume)
    print(f"best checkpoint: {best}")
    return 0
