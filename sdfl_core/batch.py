"""`sdfl batch INPUT... --out DIR`: many videos to landmark CSVs on a Ray cluster (local by default).

Each Ray actor loads the landmark model once and runs every video it gets through the same
:func:`sdfl_core.tracking.track_source` loop as ``sdfl track``, so a batch CSV is ``sdfl track``'s CSV.
Ray restarts an actor whose process dies and re-runs the video it held (``--retries``); a video that
cannot be read is a ``failed`` row and the others go on. Outputs are written under a temporary name and
renamed when complete. ``DIR/manifest.csv`` has one row per input; ``DIR/manifest.json`` holds the same
rows plus what a re-run compares to skip finished work: the input's size and mtime and the model's hash.
Both are rewritten atomically after every video, so an interrupted run leaves a manifest of what finished.

Inputs and ``--out`` must be paths every node of the cluster sees (a shared file system); the model is
shipped to the workers through Ray's object store, so ``--weights`` need only exist where ``sdfl batch`` runs.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .errors import first_line
from .onnx_meta import file_sha256

log = logging.getLogger(__name__)

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
MANIFEST_COLUMNS = ["input", "status", "frames", "faces", "rows", "fps", "seconds", "output", "error"]
INSTALL_HINT = "sdfl batch needs Ray, which is not installed: pip install 'sdfl[batch]'"


@dataclass(frozen=True)
class Job:
    """One video: where it is, where its outputs go (relative to the output folder), and its fingerprint."""
    input: str
    output: str
    size: int
    mtime_ns: int

    @property
    def video_output(self) -> str:
        return str(Path(self.output).with_suffix(".mp4"))


@dataclass(frozen=True)
class Outcome:
    status: str
    frames: int = 0
    faces: int = 0
    rows: int = 0
    seconds: float = 0.0
    error: str = ""


# ---------------------------------------------------------------------------------------------- inputs

def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return Path(path.name)


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTS)


def collect_inputs(specs: list[str | Path]) -> list[tuple[Path, Path]]:
    """(video, output path relative to the output folder, without suffix) for each input: a video file,
    a folder (searched recursively for videos; outputs keep the path below the folder) or a text file
    listing one path per line (blank lines and ``#`` comments ignored; relative paths are relative to it)."""
    found: list[tuple[Path, Path]] = []
    cwd = Path.cwd()

    def add(spec: Path, base: Path) -> None:
        if spec.is_dir():
            videos = _videos_in(spec)
            if not videos:
                raise ValueError(f"no videos ({', '.join(sorted(VIDEO_EXTS))}) under {spec}")
            # Absolute, not resolved: a symlink is its own input, named where it is found.
            found.extend((Path(os.path.abspath(v)), v.relative_to(spec).with_suffix("")) for v in videos)
        elif not spec.exists():
            raise FileNotFoundError(f"input not found: {spec}")
        else:
            video = Path(os.path.abspath(spec))
            found.append((video, _relative(video, base).with_suffix("")))

    for spec in map(Path, specs):
        if spec.is_file() and spec.suffix.lower() in (".txt", ".lst", ".list"):
            base = Path(os.path.abspath(spec)).parent
            for line in spec.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line).expanduser()
                    add(entry if entry.is_absolute() else base / entry, base)
        else:
            add(spec, cwd)
    unique: dict[Path, Path] = {}
    for video, rel in found:  # the same video named twice is one job, placed as first named
        unique.setdefault(video, rel)
    outputs: dict[Path, Path] = {}
    for video, rel in unique.items():
        if rel in outputs:
            raise ValueError(f"{video} and {outputs[rel]} would both write {rel}.csv; give them separate folders")
        outputs[rel] = video
    return list(unique.items())


def make_jobs(specs: list[str | Path]) -> list[Job]:
    jobs = []
    for video, rel in collect_inputs(specs):
        stat = video.stat()
        jobs.append(Job(str(video), str(rel.with_suffix(".csv")), stat.st_size, stat.st_mtime_ns))
    if not jobs:
        raise ValueError("no inputs given")
    return jobs


# -------------------------------------------------------------------------------------------- manifest

class Manifest:
    """``manifest.csv`` (the fixed columns) and ``manifest.json`` (the same rows with the fingerprints a
    re-run compares) in the output folder, both replaced atomically on every :meth:`record`."""

    def __init__(self, out_dir: Path) -> None:
        self.csv_path, self.json_path = out_dir / "manifest.csv", out_dir / "manifest.json"
        self.records: dict[str, dict] = {}
        if self.json_path.is_file():
            try:
                self.records = json.loads(self.json_path.read_text(encoding="utf-8"))["records"]
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable %s (%s): every input runs again", self.json_path, first_line(exc))

    def finished(self, job: Job, model: dict, out_dir: Path, video: bool) -> dict | None:
        """The previous record of ``job`` when its outputs exist and were made from this very input and model."""
        old = self.records.get(job.input)
        if not old or old.get("status") not in ("done", "skipped"):
            return None
        if (old.get("size"), old.get("mtime_ns"), old.get("model")) != (job.size, job.mtime_ns, model):
            return None
        if not (out_dir / job.output).is_file() or (video and not (out_dir / job.video_output).is_file()):
            return None
        return old

    def record(self, job: Job, row: dict, model: dict) -> None:
        self.records[job.input] = {**row, "size": job.size, "mtime_ns": job.mtime_ns, "model": model}
        self._write()

    def _write(self) -> None:
        rows = [self.records[key] for key in sorted(self.records)]
        _atomic_write(self.json_path, json.dumps({"records": {r["input"]: r for r in rows}}, indent=1))
        with tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=self.csv_path.parent,
                                         prefix=".manifest-", suffix=".csv", delete=False) as fh:
            writer = csv.DictWriter(fh, MANIFEST_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(fh.name, self.csv_path)


def _atomic_write(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.stem}-",
                                     suffix=path.suffix, delete=False) as fh:
        fh.write(text)
    os.replace(fh.name, path)


def manifest_row(job: Job, outcome: Outcome) -> dict:
    fps = outcome.frames / outcome.seconds if outcome.seconds > 0 else 0.0
    return {"input": job.input, "status": outcome.status, "frames": outcome.frames, "faces": outcome.faces,
            "rows": outcome.rows, "fps": f"{fps:.1f}", "seconds": f"{outcome.seconds:.2f}",
            "output": job.output if outcome.status != "failed" else "", "error": outcome.error}


# -------------------------------------------------------------------------------------------- workers

def leftover_partials(path: Path) -> list[Path]:
    """The temporary files a sink left beside ``path`` (see ``sinks._PartialFile``) when its process died."""
    pattern = re.compile(rf"\.{re.escape(path.stem)}\.[A-Za-z0-9_]+\.partial{re.escape(path.suffix)}")
    return [p for p in path.parent.glob(f".{path.stem}.*.partial{path.suffix}") if pattern.fullmatch(p.name)]


class TrackWorker:
    """One Ray actor: the landmark model loaded once (one ONNX Runtime thread), a fresh ``Pipeline`` per video."""

    def __init__(self, onnx_model: bytes, options: dict) -> None:
        from .detector import DetectorOptions
        from .landmarker import load_landmarker
        from .pipeline import PipelineOptions, streaming_options

        # The model arrives as bytes, so a node of a cluster needs no copy of the weights file.
        self._model_dir = tempfile.TemporaryDirectory(prefix="sdfl-batch-")
        path = Path(self._model_dir.name) / "model.onnx"
        path.write_bytes(onnx_model)
        detector = DetectorOptions(model=options["detector"], running_mode="video", max_faces=5)
        threads = streaming_options(PipelineOptions(detector=detector)).num_threads
        self.landmarker = load_landmarker(path, "cpu", options.get("engine", "onnxruntime"), num_threads=threads,
                                          crops_per_face=options.get("crops_per_face", 1),
                                          passes=options.get("passes", 1), upright=options.get("upright", True))
        self.options = PipelineOptions(detector=detector)

    def track(self, job: Job, out_dir: str, video: bool) -> Outcome:
        from .pipeline import Pipeline
        from .sinks import CsvSink
        from .sources import open_source
        from .tracking import TrackProgress, track_source

        start = time.perf_counter()
        csv_path = Path(out_dir) / job.output
        video_path = Path(out_dir) / job.video_output if video else None
        try:
            for path in leftover_partials(csv_path) + (leftover_partials(video_path) if video_path else []):
                path.unlink(missing_ok=True)  # from an attempt whose worker died
            # The sinks write beside their targets and move into place on a clean exit, the MP4 (entered
            # last) before the CSV, whose presence then means the video is done; an error discards both.
            with contextlib.ExitStack() as stack:
                source = stack.enter_context(open_source(job.input))
                pipeline = stack.enter_context(Pipeline(self.options, landmarker=self.landmarker))
                csv_sink = stack.enter_context(CsvSink(csv_path, pipeline.info.config.num_points,
                                                       visibility=pipeline.landmarker.has_visibility))
                progress = TrackProgress()
                track_source(pipeline, source, csv_sink, video_path, stack, progress)
                if progress.frames == 0:
                    raise ValueError(f"{job.input} yielded no frames")
        except Exception as exc:  # one bad video is a failed row, never a dead worker
            log.warning("%s failed: %s", job.input, first_line(exc))
            return Outcome("failed", seconds=time.perf_counter() - start, error=first_line(exc))
        return Outcome("done", progress.frames, progress.faces, csv_sink.rows_written, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------- driver

def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


def run_batch(inputs: list[str | Path], out_dir: str | Path, *, weights: str | Path | None = None,
              detector: str = "short", video: bool = False, address: str | None = None,
              workers: int | None = None, retries: int = 2, progress: bool = True, crops_per_face: int = 1,
              passes: int = 1, engine: str = "auto", upright: bool = True) -> list[dict]:
    """Track every input video into ``out_dir``; returns this run's manifest rows. ``crops_per_face``:
    test-time crops per face, ``passes``: landmark passes per face, ``upright``: tilted faces cut upright
    (:class:`landmarker.Landmarker`).
    ``engine``: the workers' CPU runtime, 'onnxruntime' or 'openvino'; 'auto' is decided here
    (``landmarker.cpu_engine``), so that every worker runs the same one.

    Uses the Ray instance already initialised in this process if there is one; otherwise joins the
    cluster at ``address``, or starts a local one with ``workers`` CPUs (default: all of them).
    """
    ray = _import_ray()
    from .crops import check_crops_per_face, check_passes
    from .extras import require
    from .landmarker import ENGINES, cpu_engine, load_runner
    from .registry import resolve_weights

    check_crops_per_face(crops_per_face)
    check_passes(passes)
    cpu_engines = [name for name in ENGINES if name != "torch"]  # the workers run the ONNX export on their CPUs
    if engine not in cpu_engines:
        raise ValueError(f"engine must be one of {', '.join(cpu_engines)}, got {engine!r}")
    engine = cpu_engine() if engine == "auto" else engine
    if engine == "openvino":
        require("openvino", "the openvino engine")
    if retries < 0:
        raise ValueError(f"--retries must be >= 0, got {retries}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    jobs = make_jobs(inputs)
    for job in jobs:
        if Path(job.input) in (out.resolve() / job.output, out.resolve() / job.video_output):
            raise ValueError(f"--out {out} would overwrite the input {job.input}")
    out.mkdir(parents=True, exist_ok=True)
    weights_path = resolve_weights(weights)
    # Validates the model here (a bad file is a clear error before any worker starts) and gives its ONNX form.
    onnx_path = load_runner(weights_path, device="cpu", engine="onnxruntime").path
    detector_id = file_sha256(detector) if Path(detector).suffix == ".tflite" and Path(detector).is_file() else detector
    model = {"weights": file_sha256(weights_path), "detector": detector_id}
    # Only when not 1, so a manifest written before the option still matches its runs.
    model.update({key: count for key, count in (("crops_per_face", crops_per_face), ("passes", passes)) if count != 1})
    if engine != "onnxruntime":  # its points differ a little from ONNX Runtime's, so a run with it is not one without
        model["engine"] = engine
    if upright:  # a manifest from before upright crops (axis-aligned) matches only a --no-upright run
        model["crops"] = "upright"

    manifest = Manifest(out)
    todo, rows = [], []
    for job in jobs:
        old = manifest.finished(job, model, out, video)
        if old is None:
            todo.append(job)
            continue
        row = {**{key: old[key] for key in MANIFEST_COLUMNS}, "status": "skipped", "error": ""}
        manifest.record(job, row, model)
        rows.append(row)
    if rows:
        log.info("skipping %d of %d inputs already done with this model (%s)", len(rows), len(jobs), manifest.csv_path)
    if not todo:
        return rows

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
    try:
        options = {"detector": detector, "crops_per_face": crops_per_face, "passes": passes, "engine": engine,
                   "upright": upright}
        rows += _run_jobs(ray, todo, out, onnx_path.read_bytes(), options, video, workers, retries,
                          manifest, model, progress)
    finally:
        if started_here:
            ray.shutdown()
    return rows


def _run_jobs(ray, jobs: list[Job], out: Path, onnx_model: bytes, options: dict, video: bool,
              workers: int | None, retries: int, manifest: Manifest, model: dict, progress: bool) -> list[dict]:
    count = min(len(jobs), workers or max(1, int(ray.available_resources().get("CPU", 1))))
    # Ray restarts an actor whose process dies and re-runs the call it died in (max_task_retries). A video
    # that still kills it gets its actor replaced below, so one actor never needs more restarts than this.
    actor_class = ray.remote(num_cpus=1, max_restarts=retries * len(jobs), max_task_retries=retries)(TrackWorker)
    model_ref = ray.put(onnx_model)
    actors = [actor_class.remote(model_ref, options) for _ in range(count)]
    log.info("%d videos on %d Ray workers", len(jobs), count)
    pending = list(reversed(jobs))
    running: dict = {}
    rows: list[dict] = []
    frames, start = 0, time.perf_counter()
    bar = tqdm(total=len(jobs), unit="video", desc="batch", dynamic_ncols=True, disable=not progress)
    try:
        idle = list(actors)
        while pending or running:
            while pending and idle:
                job, actor = pending.pop(), idle.pop()
                running[actor.track.remote(job, str(out), video)] = (job, actor)
            [ref], _ = ray.wait(list(running), num_returns=1)
            job, actor = running.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                outcome = Outcome("failed", error=f"worker died {retries + 1} times on this video: {first_line(exc)}")
                log.warning("%s: %s", job.input, outcome.error)
                # It may be restarting still, and a call it refuses meanwhile would fail the next video.
                ray.kill(actor, no_restart=True)
                actors.remove(actor)
                actor = actor_class.remote(model_ref, options)
                actors.append(actor)
            idle.append(actor)
            row = manifest_row(job, outcome)
            manifest.record(job, row, model)
            rows.append(row)
            frames += outcome.frames
            bar.update(1)
            bar.set_postfix(fps=f"{frames / (time.perf_counter() - start):.1f}", failed=sum(r["status"] == "failed" for r in rows))
    except KeyboardInterrupt:
        log.warning("interrupted: %d of %d videos finished; %s lists them", len(rows), len(jobs), manifest.csv_path)
        raise
    finally:
        bar.close()
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if running:  # wait until the killed calls end (as errors), then nothing half-written stays behind
            ray.wait(list(running), num_returns=len(running), timeout=10)
        for job, _ in running.values():
            for path in leftover_partials(out / job.output) + leftover_partials(out / job.video_output):
                path.unlink(missing_ok=True)
    return rows
