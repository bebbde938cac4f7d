"""What every benchmark script runs first (``from preamble import ...`` before any sdfl import).

Run as ``python benchmarks/NAME.py`` this folder is ``sys.path[0]``; the preamble puts the repository root
on the path too, quietens MediaPipe's native start-up logs, loads torch's native libraries before
mediapipe's when torch is there (``sdfl_core.devices``), and names the files the benchmarks share.
Benchmarks print ratios against a baseline measured in the same run; they are not tests.
"""
from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FRANCK = SHARED_DATA / "video" / "franck.mp4"
AFW = SHARED_DATA / "300w" / "afw"
ASTRONAUT = REPO / "tests" / "fixtures" / "astronaut.jpg"

if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "2")

from sdfl_core.devices import load_torch_native_first  # noqa: E402  (needs REPO on the path)

load_torch_native_first(always=True)


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), to tell runs on different machines apart:
    absolute times differ by 2x between this project's machines; ratios within one run hold."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def add_engine_arg(parser) -> None:
    from sdfl_core.landmarker import ENGINES

    parser.add_argument("--engine", default="auto", choices=ENGINES,
                        help="the landmark model's runtime (as sdfl's --engine; default auto: OpenVINO in bfloat16 where it "
                             "is installed and the CPU has bfloat16 instructions, else ONNX Runtime)")


def resolved_engine(args) -> str:
    """The engine ``--engine`` (and ``--device``) name: 'auto' as the CPU resolves it, the way sdfl does."""
    from sdfl_core.landmarker import cpu_engine

    if args.engine != "auto":
        return args.engine
    return "torch" if args.device == "cuda" else f"{cpu_engine()} (auto)"


def add_video_args(parser, frames: int) -> None:
    """--weights, --video, --frames, --device and --engine, as the video benchmarks take them."""
    parser.add_argument("--weights", help="sdfl checkpoint or ONNX; default: the shipped model")
    parser.add_argument("--video", type=Path, default=FRANCK)
    parser.add_argument("--frames", type=int, default=frames, help="video frames to use (franck.mp4 has 4800)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    add_engine_arg(parser)


def parse_video_args(parser, argv):
    """Parse, set up logging, and resolve --weights to a file (the shipped model by default)."""
    from sdfl_core.registry import resolve_weights

    args = parser.parse_args(argv)
    setup_logging()
    args.weights = resolve_weights(args.weights)
    return args


def time_calls(calls: dict[str, Callable[[], object]], rounds: int, runs: int, warmup: int = 10) -> dict[str, float]:
    """Median ms per call of each of ``calls`` ({name: callable without arguments}): the calls in alternating rounds,
    so that the machine's drift hits them alike, each warmed up ``warmup`` times in every round and then called
    ``runs`` times; the median over rounds."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(warmup):
                call()
            start = time.perf_counter()
            for _ in range(runs):
                call()
            times[name].append((time.perf_counter() - start) / runs * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def setup_logging(level: int = logging.WARNING) -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
