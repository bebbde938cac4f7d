"""The `sdfl` command line, the one place of CLI code: argument definitions here (cheap), each command's
``run(args)`` in a module of this package (imported lazily), which calls the library and prints."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import os
import sys

from ..datasets import FORMATS

# Quieten TensorFlow-Lite / absl start-up chatter from MediaPipe before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "2")

COMMANDS = {
    "track": ("sdfl_core.cli.track", "video / image / folder / camera -> landmarks CSV and annotated video"),
    "batch": ("sdfl_core.cli.batch", "many videos -> landmark CSVs on a Ray cluster (local by default), resumable"),
    "eval": ("sdfl_core.cli.evaluate", "NME / FR / AUC of a model on a labelled dataset"),
    "train": ("training.cli", "train a model from a YAML config"),
    "export": ("sdfl_core.cli.export", "export a checkpoint to ONNX"),
    "graph": ("sdfl_core.cli.graph", "mine the top-k landmark graph of a dataset"),
    "occlusion": ("sdfl_core.cli.occlusion", "occlusion robustness: NME on visible / occluded points"),
    "gui": ("app.main", "open the desktop application"),
}



def command_module(name: str) -> str:
    """The importable name of a command's module. The repo's ``app/`` and ``training/`` folders are
    installed as ``sdfl_app`` and ``sdfl_training`` (generic names such as ``app`` do not belong in
    site-packages); a source checkout that is not installed has them under their folder names."""
    top, _, rest = name.partition(".")
    if top in ("app", "training") and importlib.util.find_spec(f"sdfl_{top}") is not None:
        return f"sdfl_{top}.{rest}"
    return name


def _add_crops_per_face(p: argparse.ArgumentParser, use: str, default: int | None = 1) -> None:
    """``--crops-per-face``; ``default`` None leaves the choice to the command (photos get more,
    ``default_crops_per_face``)."""
    from ..crops import CROPS_PER_FACE

    p.add_argument("--crops-per-face", type=int, default=default, choices=CROPS_PER_FACE, metavar="N",
                   help=f"test-time crops per face, {', '.join(map(str, CROPS_PER_FACE))}: the points are the mean over the "
                        f"face's crop and N-1 copies shifted by 5 %% of its side, more accurate at N times the "
                        f"landmark model's work; {use}")


def _add_passes(p: argparse.ArgumentParser, use: str, default: int | None = None) -> None:
    """``--passes``; ``default`` None leaves the choice to the command (photos get more, ``default_passes``)."""
    from ..crops import PASSES

    p.add_argument("--passes", type=int, default=default, choices=PASSES, metavar="N",
                   help=f"landmark passes per face, {', '.join(map(str, PASSES))}: each pass after the first crops the face "
                        f"again from the landmarks the pass before found, the crop the model was trained on, which a "
                        f"detector's box only approximates; N times the landmark model's work; {use}")


def _add_upright(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-upright", dest="upright", action="store_false",
                   help="cut every face axis-aligned; by default a tilted face is cut upright, turned by the roll of its "
                        "eyes (the detector's eye keypoints, or the landmarks of the pass or frame before)")


def _add_mirror(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirror", action="store_true",
                   help="also run each crop's mirror image and average its points with the crop's, at twice the "
                        "landmark model's work (more accurate on hand-labelled faces; see the README)")


ENGINE_CHOICES = ("auto", "onnxruntime", "openvino", "torch")
"""``landmarker.ENGINES``, spelt out so that building the parser imports no runtime."""
CPU_ENGINE_CHOICES = tuple(name for name in ENGINE_CHOICES if name != "torch")
"""The engines that run the ONNX export on the CPU (``sdfl batch``'s workers)."""


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="auto", choices=ENGINE_CHOICES,
                   help="the landmark model's runtime: auto (default) is torch on CUDA and, on the CPU, OpenVINO in "
                        "bfloat16 where sdfl[openvino] is installed and the CPU has bfloat16 instructions, else ONNX Runtime")


def _add_track(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="video file, image, folder of images, camera:N, or 'demo' (built-in synthetic clip); "
                                  "an image or a folder of images runs in image mode (every photo on its own)")
    p.add_argument("--sequence", action="store_true",
                   help="treat a folder of images as consecutive video frames (tracking and smoothing across them)")
    p.add_argument("--csv", help="write landmarks CSV here")
    p.add_argument("--video", help="write the annotated video here (.mp4, mp4v)")
    p.add_argument("--images", metavar="DIR",
                   help="write each annotated frame into this folder as an image, at the frame's own size: a photo "
                        "keeps its file name, video frames are 000000.png, 000001.png, ...")
    p.add_argument("--no-smooth", action="store_true", help="disable Kalman smoothing")
    p.add_argument("--smoothing", type=float, default=0.5, help="smoothing strength in [0, 1] (default 0.5)")
    p.add_argument("--weights", help="checkpoint (.pt) or ONNX model; default: the shipped SDFL model")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    _add_engine(p)
    p.add_argument("--max-faces", type=int, default=None,
                   help="track at most this many faces per frame, the most confident ones (default 5 for video and "
                        "camera, 20 for an image or a folder of photos); a warning says when faces were left out")
    p.add_argument("--detector", default=None,
                   help="face detector: short, full, or a .tflite path (default: full, long range, for an image or a "
                        "folder of photos, which often hold small faces; short, selfie range and faster, for video and camera)")
    p.add_argument("--min-confidence", type=float, default=0.5, help="detector score threshold")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0 = all)")
    p.add_argument("--no-raw", action="store_true", help="omit the raw (unsmoothed) point columns from the CSV")
    p.add_argument("--redetect-every", type=int, default=1, metavar="K",
                   help="run the face detector every K-th frame and crop from the previous landmarks in between "
                        "(re-detecting early when a face is lost); 1 = every frame (default)")
    from ..crops import PHOTO_CROPS, PHOTO_PASSES

    photos = "for an image or a folder of photos (image mode), 1 for video and camera (real time)"
    _add_crops_per_face(p, f"default {PHOTO_CROPS} {photos}", default=None)
    _add_passes(p, f"default {PHOTO_PASSES} {photos}")
    _add_mirror(p)
    _add_upright(p)


def _add_batch(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video file, folder (searched recursively for videos) or .txt file listing paths")
    p.add_argument("--out", required=True, help="output folder: <relative path>.csv per video, and manifest.csv")
    p.add_argument("--video", action="store_true", help="also write an annotated <relative path>.mp4 per video")
    p.add_argument("--address", help="join the Ray cluster at this address (e.g. auto, or HEAD:6379); "
                                     "default: start a local one")
    p.add_argument("--workers", type=int, help="worker processes (default: the CPU count of the machine or cluster)")
    p.add_argument("--weights", help="checkpoint (.pt) or ONNX model; default: the shipped SDFL model")
    p.add_argument("--detector", default="short", help="face detector: short, full, or a .tflite path")
    p.add_argument("--retries", type=int, default=2, help="times a video is retried when its worker dies (default 2)")
    p.add_argument("--engine", default="auto", choices=CPU_ENGINE_CHOICES,
                   help="the workers' CPU runtime: auto (default) is decided on this machine as sdfl track decides it "
                        "(OpenVINO in bfloat16 or ONNX Runtime); every worker uses the same one")
    _add_crops_per_face(p, "default 1")
    _add_passes(p, "default 1 (video)", default=1)
    _add_upright(p)


def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="checkpoint or ONNX model; default: the shipped SDFL model")
    p.add_argument("--data", required=True, help="dataset path (folder, list file, .mat, .csv or .json)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="report JSON path")
    p.add_argument("--plot", help="CED plot PNG path")
    p.add_argument("--boxes", default="gt", choices=("gt", "detector"),
                   help="crop from ground-truth landmark boxes (standard) or MediaPipe boxes")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    _add_engine(p)
    p.add_argument("--batch-size", type=int, default=32)
    from ..crops import PHOTO_CROPS, PHOTO_PASSES

    _add_crops_per_face(p, f"default 1 with --boxes gt (the standard protocol: the model alone), {PHOTO_CROPS} with "
                           "--boxes detector (as sdfl track runs photos)", default=None)
    _add_passes(p, f"default 1 with --boxes gt (the standard protocol), {PHOTO_PASSES} with --boxes detector (as sdfl "
                   "track runs photos)")
    _add_mirror(p)
    _add_upright(p)


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML config (see training/configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. optim.lr=0.01")
    p.add_argument("--resume", help="continue from a run's last.pt")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train with N processes on this machine (torchrun + DistributedDataParallel; "
                        "gloo on the CPU, NCCL on CUDA); default 1")


def _add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="checkpoint to export; default: the shipped SDFL model")
    p.add_argument("--out", required=True, help="ONNX output path")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs torch comparison")


def _add_graph(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--out", required=True, help="graph .npz path")
    p.add_argument("--plot", help="PNG of the mean shape with its edges")


def _add_occlusion(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", action="append", default=[], help="model to compare (repeatable); default: shipped SDFL and FC twin")
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--levels", default="0,10,20,30,40,50", help="occluded percent of the face box")
    p.add_argument("--parts", action="store_true", help="also run part-targeted occlusion (eyes, mouth, halves)")
    p.add_argument("--no-dlib", action="store_true", help="skip the dlib baseline even when installed")
    p.add_argument("--limit", type=int, default=0, help="use at most this many faces")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    _add_engine(p)
    _add_crops_per_face(p, "default 1 (the model alone)")


def _add_gui(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", help="open this video / image / folder / camera:N / demo at start")
    p.add_argument("--weights", help="checkpoint or ONNX model; default: the shipped SDFL model")
    p.add_argument("--frames", type=int, default=0, help="smoke mode: play this many frames, then exit")
    p.add_argument("--screenshot", help="smoke mode: save the window to this PNG before exiting")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    _add_engine(p)


ADDERS = {"track": _add_track, "batch": _add_batch, "eval": _add_eval, "train": _add_train, "export": _add_export,
          "graph": _add_graph, "occlusion": _add_occlusion, "gui": _add_gui}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdfl", description="Real-time face landmark tracking with SDFL.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        # Also after the command (`sdfl track x -v`); SUPPRESS keeps a -v given before it.
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="debug logging, native library logs and tracebacks")
        ADDERS[name](command)
    return parser


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool):
    """MediaPipe and LiteRT log from C++ straight to file descriptor 2, through the progress bar. Send
    that descriptor to /dev/null and keep Python's own stderr (logging, tqdm, errors) on a duplicate of
    the real one. Only for a process whose ``sys.stderr`` is descriptor 2 (not under pytest's capture)."""
    try:
        is_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        is_fd2 = False
    if not enabled or not is_fd2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    original = sys.stderr
    # The duplicate stays open after the block: logging handlers made inside it keep writing to it.
    sys.stderr = os.fdopen(saved, "w", buffering=1, encoding=original.encoding, errors=original.errors)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        sys.stderr = original


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with quiet_native_stderr(not args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..checkpoint import CheckpointError
    from ..errors import first_line
    from ..extras import missing_module_message

    try:
        module = importlib.import_module(command_module(COMMANDS[args.command][0]))
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("sdfl: interrupted", file=sys.stderr)
        return 130
    except (CheckpointError, ValueError, FileNotFoundError, OSError, ImportError) as exc:
        if args.verbose:
            raise
        message = isinstance(exc, ModuleNotFoundError) and missing_module_message(exc) or first_line(exc)
        print(f"sdfl {args.command}: error: {message}", file=sys.stderr)
        return 2

