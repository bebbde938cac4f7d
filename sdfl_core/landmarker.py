"""The landmarker: face crops -> the network -> landmarks in image pixels, the one way through.

A :class:`Landmarker` is what sdfl calls "a thing that predicts landmarks". It cuts square crops by
affine warp (``crops``), runs the network on them in one batch (a ``runners`` runtime) and maps the points
back to image pixels. The pipeline (crops from detector boxes or from last frame's landmarks), ``sdfl
eval`` (crops from ground-truth boxes) and ``sdfl occlusion`` all go through :meth:`Landmarker.predict_faces`
and from there :meth:`Landmarker.predict_warped`. With ``crops_per_face`` 5 or 9 each face is cut several
times, shifted a little (``crops.shifted_affines``), and its points are the mean over those crops:
test-time averaging, for photos and offline evaluation, at 5 or 9 times the network's work. With
``passes`` 2 or 3 each face is cut again from the landmarks the pass before found (``crops.recrop_affine``),
the crop the model was trained on, which a detector's box only approximates: for photos, at that many times
the work. With ``upright`` (the default) a tilted face is cut upright, turned by the roll of its eyes.

The detector-box calibration (:func:`detection_to_crop`) lives here too: it is the checkpoint's own map
from a face detector's box to the crop the model was trained on.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import crops
from .checkpoint import CheckpointError, load_checkpoint
from .devices import resolve_device, torch_installed, torch_loadable_here
from .extras import install_hint, require
from .onnx_meta import file_sha256, is_export_of
from .registry import resolve_weights
from .runners import OnnxRunner, OpenVinoRunner, TorchRunner, openvino_bf16_native
from .types import Detection, Landmarks

log = logging.getLogger(__name__)

ENGINES = ("auto", "onnxruntime", "openvino", "torch")
"""'auto': torch on CUDA; on the CPU :func:`cpu_engine`."""

Runner = OnnxRunner | OpenVinoRunner | TorchRunner


def cpu_engine() -> str:
    """The engine 'auto' picks on the CPU: OpenVINO where ``sdfl[openvino]`` is installed and the CPU computes
    bfloat16 natively, where it is the faster of the two on the same ONNX file (``docs/benchmarks/engines.txt``);
    else ONNX Runtime (OpenVINO in float32 was no faster)."""
    return "openvino" if openvino_bf16_native() else "onnxruntime"


def onnx_runner(path: Path, engine: str, num_threads: int | None) -> OnnxRunner | OpenVinoRunner:
    """A CPU runner for an ONNX export: ``engine`` 'onnxruntime' or 'openvino', or 'auto' (:func:`cpu_engine`;
    a model OpenVINO cannot compile then runs on ONNX Runtime, with a warning)."""
    chosen = cpu_engine() if engine == "auto" else engine
    if chosen == "onnxruntime":
        return OnnxRunner(path, num_threads)
    require("openvino", "the openvino engine")
    try:
        return OpenVinoRunner(path, num_threads)
    except CheckpointError as exc:
        if engine != "auto":
            raise
        log.warning("%s; running it on ONNX Runtime", exc)
        return OnnxRunner(path, num_threads)


def detection_to_crop(det: Detection, info, detector: str | Path = "short", upright: bool = True) -> np.ndarray:
    """The crop affine for a detector box, through the checkpoint's calibration for that detector
    (a custom detector model uses the short-range calibration). ``upright`` (with the detector's eye
    keypoints, MediaPipe's first two) cuts the face upright: the crop turns by the eyes' roll
    (``crops.roll_degrees``) and the calibration's offset turns with it, so a tilted head reaches the
    network as the upright faces it was mostly trained on."""
    x, y, w, h = det.box.astype(np.float64)
    cal = info.detector_box.get(str(detector), info.detector_box.get("short", {}))
    angle = crops.roll_degrees(det.keypoints[0], det.keypoints[1]) if upright and len(det.keypoints) >= 2 else 0.0
    center = np.array([x + w / 2, y + h / 2]) + crops.rotate_about([cal.get("dx", 0.0) * w, cal.get("dy", 0.0) * h], angle)
    side = info.crop_scale * cal.get("scale", 1.0) * max(w, h)
    return crops.crop_affine(center, side, info.config.input_size, angle)


class Landmarker:
    """A landmark model behind one interface, whichever runtime runs it. ``name`` labels it in reports."""

    def __init__(self, runner: Runner, name: str = "", crops_per_face: int = 1,
                 passes: int = 1, mirror: bool = False, upright: bool = True) -> None:
        self.crops_per_face = crops_per_face  # checked by the setter
        self.passes = passes  # likewise
        # Also run each crop's mirror image and average (predict_mirrored): twice the network's work. Settable
        # between calls.
        self.mirror = bool(mirror)
        # Cut tilted faces upright: from a detector box by its eye keypoints' roll (detection_to_crop), and in
        # passes 2 and 3 by the roll of the eyes the pass before found (crops.recrop_affine). Settable.
        self.upright = bool(upright)
        self.runner = runner
        self.info = runner.info
        self.name = name or self.info.name or "model"

    @property
    def crops_per_face(self) -> int:
        """Test-time crops per face (1, 5 or 9; ``crops.CROPS_PER_FACE``). Settable between calls, e.g. by
        the app when the user switches from video to photos."""
        return self._crops_per_face

    @crops_per_face.setter
    def crops_per_face(self, count: int) -> None:
        self._crops_per_face = crops.check_crops_per_face(int(count))

    @property
    def passes(self) -> int:
        """Landmark passes per face (``crops.PASSES``): the first from the box given, each further one from
        the landmarks of the pass before. Settable between calls."""
        return self._passes

    @passes.setter
    def passes(self, count: int) -> None:
        self._passes = int(crops.check_passes(count))

    @property
    def schema(self):
        return self.info.schema

    @property
    def eyes(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """The right and the left eye's point indices by which a crop from landmarks is turned upright
        (``crops.landmark_square``); None when ``upright`` is off or the points have no schema."""
        return self.schema.pupils if self.upright and self.schema is not None else None

    @property
    def num_points(self) -> int:
        return int(self.info.config.num_points)

    @property
    def input_size(self) -> int:
        return int(self.info.config.input_size)

    @property
    def engine(self) -> str:
        """The runtime: 'onnxruntime' or 'torch'."""
        return self.runner.engine

    @property
    def engine_label(self) -> str:
        """The runtime and the precision it computes in: 'onnxruntime f32', 'openvino bf16', 'torch f32'."""
        return f"{self.runner.engine} {self.runner.precision}"

    @property
    def has_visibility(self) -> bool:
        """Whether the model reports per-point visibility (``Landmarks.visibility`` is then (N,), else (0,))."""
        return bool(self.runner.has_visibility)

    def predict_crops(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network on (B, S, S, 3) uint8 BGR crops: points in crop units, edge weights, visibility."""
        return self.runner.predict(batch)

    def crops_for(self, image_bgr: np.ndarray, affines: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([crops.warp(image_bgr, a, self.input_size) for a in affines])

    def predict_mirrored(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`predict_crops` averaged with the crops' mirror images (flipped left to right), in one batch:
        each flipped crop's points are mirrored back and renamed to their mirror points (the schema's
        ``mirror``). Visibility is averaged the same way; the edge weights are the unflipped crops' (the mined
        graph is not mirror-symmetric, so a flipped crop's weights fall on other edges)."""
        count = len(batch)
        units, weights, visibility = self.predict_crops(np.concatenate([batch, batch[:, :, ::-1]]))
        rename = np.asarray(self.schema.mirror)
        flipped = crops.mirror_units(units[count:], rename)
        if visibility.shape[-1]:
            visibility = (visibility[:count] + visibility[count:][:, rename]) / 2
        else:
            visibility = visibility[:count]
        return (units[:count] + flipped) / 2, weights[:count], visibility

    def predict_warped(self, batch: np.ndarray, affines: Sequence[np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, N, 2) image pixels for crops already cut with ``affines`` (one per crop), the (B, N, N)
        edge weights and the (B, N) visibility ((B, N, 0) and (B, 0) where the model has none)."""
        units, weights, visibility = (self.predict_mirrored if self.mirror else self.predict_crops)(batch)
        points = np.stack([crops.units_to_image(u, a, self.input_size) for u, a in zip(units, affines)])
        return points, np.asarray(weights), np.asarray(visibility)

    def predict_faces(self, images: Sequence[np.ndarray], affines: Sequence[np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arrays of :meth:`predict_warped` for one face per (BGR uint8 image, crop affine) pair, all in
        one batch. With ``crops_per_face`` > 1 each face's points, edge weights and visibility are the mean
        over its test-time crops (points averaged in image pixels). With ``passes`` > 1 the faces are cut
        again from the landmarks found, and the last pass's arrays are returned."""
        result = self._predict_once(images, affines)
        for _ in range(self.passes - 1):
            affines = [crops.recrop_affine(p, a, self.info.crop_scale, self.input_size, self.eyes)
                       for p, a in zip(result[0], affines)]
            result = self._predict_once(images, affines)
        return result

    def _predict_once(self, images: Sequence[np.ndarray], affines: Sequence[np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = self.crops_per_face
        cut = [a for base in affines for a in crops.shifted_affines(base, self.input_size, k)]
        owners = [i for i in range(len(affines)) for _ in range(k)]
        batch = np.stack([crops.warp(images[i], a, self.input_size) for i, a in zip(owners, cut)])
        points, weights, visibility = self.predict_warped(batch, cut)
        if k == 1:
            return points, weights, visibility
        return tuple(a.reshape(len(affines), k, *a.shape[1:]).mean(axis=1) for a in (points, weights, visibility))

    def predict(self, image_bgr: np.ndarray, affines: Sequence[np.ndarray]) -> list[Landmarks]:
        """One :class:`Landmarks` per crop affine of one BGR uint8 image, all in one batch."""
        if not len(affines):
            return []
        points, weights, visibility = self.predict_faces([image_bgr] * len(affines), affines)
        return [Landmarks(p, w, v) for p, w, v in zip(points, weights, visibility)]

    def predict_boxes(self, image_bgr: np.ndarray, detections: Sequence[Detection],
                      detector: str | Path = "short") -> list[Landmarks]:
        return self.predict(image_bgr, [detection_to_crop(d, self.info, detector, self.upright) for d in detections])

    def predict_face(self, images: Sequence[np.ndarray], points_gt: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Several images of one face (e.g. occluded variants), all cropped the standard way from the
        ground-truth landmark box: the arrays of :meth:`predict_warped`."""
        affine = crops.landmark_crop_affine(points_gt, self.info.crop_scale, self.input_size)
        return self.predict_faces(images, [affine] * len(images))


def as_landmarker(model) -> Landmarker:
    """``model`` itself, or a bare runner (``runners``) wrapped in a :class:`Landmarker`."""
    return model if isinstance(model, Landmarker) else Landmarker(model)


def onnx_cache_dir() -> Path:
    return Path(os.environ.get("SDFL_CACHE", Path.home() / ".cache" / "sdfl"))


def onnx_for_checkpoint(weights: Path) -> Path:
    """The ONNX export of a ``.pt`` checkpoint: the ``.onnx`` beside it when its recorded source hash is
    the checkpoint's, else one in the per-user cache, exported now (needs torch) if not there yet."""
    digest = file_sha256(weights)
    beside = weights.with_suffix(".onnx")
    if beside.is_file() and is_export_of(beside, digest):
        return beside
    target = onnx_cache_dir() / f"{weights.stem}-{digest[:16]}.onnx"
    if target.is_file() and is_export_of(target, digest):
        return target
    if not torch_installed():
        raise ImportError(f"{weights} has no current ONNX export beside it, and exporting one needs torch: "
                          f"pass a .onnx model, or {install_hint('torch')}")
    log.info("exporting %s to ONNX for the CPU engine (%s)", weights, target)
    if not torch_loadable_here():
        # A process that already detects faces (the GUI loading a .pt) exports in a child process.
        export_in_child_process(weights, target)
    else:
        from .onnx_export import export_onnx

        model, info = load_checkpoint(weights)
        export_onnx(model, info, target, source=weights)
    return target


def export_in_child_process(weights: Path, target: Path) -> None:
    command = [sys.executable, "-m", "sdfl_core.cli", "export", "--weights", str(weights), "--out", str(target)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        raise CheckpointError(f"exporting {weights} to ONNX failed: {lines[-1]}")


def load_runner(weights: str | Path | None = None, device: str = "auto", engine: str = "auto",
                num_threads: int | None = None) -> Runner:
    """The runtime for a checkpoint (.pt) or ONNX export (.onnx); None means the shipped SDFL model.

    ``engine``: one of :data:`ENGINES`; 'auto' runs torch on CUDA and :func:`cpu_engine` on the CPU. A ``.pt``
    on the CPU runs through its ONNX export (``onnx_for_checkpoint``). ``num_threads``: the CPU engine's
    threads (None: its default).
    """
    weights = resolve_weights(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"model file not found: {weights}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if weights.suffix == ".onnx":
        if engine == "torch" or device == "cuda":
            raise ValueError("an .onnx model runs on the CPU only (ONNX Runtime or OpenVINO); pass a .pt checkpoint "
                             "for torch/CUDA")
        return onnx_runner(weights, engine, num_threads)
    device = resolve_device(device)
    if engine == "auto" and device == "cuda":
        engine = "torch"
    if engine != "torch":
        return onnx_runner(onnx_for_checkpoint(weights), engine, num_threads)
    model, info = load_checkpoint(weights)
    return TorchRunner(model, info, device)


def load_landmarker(weights: str | Path | None = None, device: str = "auto", engine: str = "auto",
                    num_threads: int | None = None, name: str = "", crops_per_face: int = 1,
                    passes: int = 1, mirror: bool = False, upright: bool = True) -> Landmarker:
    """A :class:`Landmarker` for a model choice ('sdfl', 'fc', None = 'sdfl', or a .pt / .onnx path)."""
    crops.check_passes(passes)  # before the model loads
    return Landmarker(load_runner(weights, device, engine, num_threads), name, crops_per_face, passes, mirror, upright)
