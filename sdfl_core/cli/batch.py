"""`sdfl batch`: many videos -> landmark CSVs on a Ray cluster (local by default), resumable."""
from __future__ import annotations

from pathlib import Path

from ..batch import run_batch


def run(args) -> int:
    rows = run_batch(args.inputs, args.out, weights=args.weights, detector=args.detector, video=args.video,
                     address=args.address, workers=args.workers, retries=args.retries,
                     crops_per_face=args.crops_per_face, passes=args.passes, engine=args.engine, upright=args.upright)
    counts = {status: sum(r["status"] == status for r in rows) for status in ("done", "skipped", "failed")}
    print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed; "
          f"manifest: {Path(args.out) / 'manifest.csv'}")
    return 1 if counts["failed"] else 0
