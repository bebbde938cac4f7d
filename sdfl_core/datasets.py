"""Dataset readers: every annotation format becomes a list of one common :class:`Sample`.

Coordinates in a Sample are 0-based pixels with pixel centres on integers (see ``schemas``); readers of
formats that use another convention shift on the way in. No torch here: a training Dataset wraps these.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
FORMATS = ("300w", "wflw", "cofw", "csv", "coco")
WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")

_FACE_INDEX = re.compile(r"_\d+$")
_FRAME_SUFFIX = re.compile(r"_\d+(\.[A-Za-z0-9]+)?$")


@dataclass(frozen=True, eq=False)
class Sample:
    """One annotated face.

    ``image`` holds the pixels for formats that store them inside the annotation file (COFW .mat); then
    ``image_path`` is a label such as ``"/data/COFW.mat#train/17"`` rather than a file.

    ``occluded`` is (N,) bool where the annotation flags occluded points (COFW's third column), None where
    the data has no such flags: ``visible`` alone does not say (COCO's ``v > 0`` means "labelled").
    """

    image_path: str
    points: np.ndarray
    box: np.ndarray | None = None
    visible: np.ndarray | None = None
    attributes: dict[str, int] = field(default_factory=dict)
    group: str = ""
    image: np.ndarray | None = None
    occluded: np.ndarray | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(f"points must have shape (N, 2) with N > 0, got {points.shape}")
        object.__setattr__(self, "points", points)
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float32)
            if box.shape != (4,):
                raise ValueError(f"box must have shape (4,) as x, y, w, h, got {box.shape}")
            object.__setattr__(self, "box", box)
        if self.visible is not None:
            visible = np.asarray(self.visible, dtype=bool)
            if visible.shape != (points.shape[0],):
                raise ValueError(f"visible must have shape ({points.shape[0]},), got {visible.shape}")
            object.__setattr__(self, "visible", visible)
        if self.occluded is not None:
            occluded = np.asarray(self.occluded, dtype=bool)
            if occluded.shape != (points.shape[0],):
                raise ValueError(f"occluded must have shape ({points.shape[0]},), got {occluded.shape}")
            object.__setattr__(self, "occluded", occluded)
        if self.image is not None:
            image = np.asarray(self.image)
            if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
                raise ValueError(f"image must be uint8 (H, W) or (H, W, 1|3|4), got {image.dtype} {image.shape}")
        object.__setattr__(self, "image_path", str(self.image_path))
        object.__setattr__(self, "attributes", {str(k): int(v) for k, v in self.attributes.items()})
        object.__setattr__(self, "group", str(self.group))

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])


# ---------------------------------------------------------------------------------------------- helpers


def _require_dir(root: str | Path, what: str) -> Path:
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"{what} folder not found: {root}")
    if not root.is_dir():
        raise ValueError(f"{what} path is not a folder: {root}")
    return root


def _require_file(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} path is not a file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} file is empty: {path}")
    return path


def _check_images_exist(samples: list[Sample], source: Path) -> None:
    missing = [s.image_path for s in samples if not Path(s.image_path).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(samples)} images listed in {source} are missing, first: {missing[0]}"
        )


def _check_point_counts(samples: list[Sample], num_points: int | None, source: Path) -> None:
    expected = num_points if num_points is not None else samples[0].num_points
    for s in samples:
        if s.num_points != expected:
            raise ValueError(f"point-count mismatch in {source}: {s.image_path} has {s.num_points} points, expected {expected}")


# ------------------------------------------------------------------------------------------- 300W / pts


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG ``.pts`` file as stored (300W files are 1-based: the caller shifts)."""
    path = _require_file(path, "pts")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise ValueError(f"{path}: not an iBUG .pts file (no '{{' ... '}}' block)") from None
    declared = None
    for ln in lines[:start]:
        key, _, value = ln.partition(":")
        if key.strip().lower() == "n_points":
            try:
                declared = int(value)
            except ValueError:
                raise ValueError(f"{path}: bad n_points header {ln!r}") from None
    rows = []
    for lineno, ln in enumerate(lines[start + 1 : end], start=start + 2):
        if not ln:
            continue
        parts = ln.split()
        try:
            if len(parts) != 2:
                raise ValueError
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: malformed point row {ln!r} (expected 'x y')") from None
    if not rows:
        raise ValueError(f"{path}: no points")
    if declared is not None and declared != len(rows):
        raise ValueError(f"{path}: point-count mismatch, header says {declared} points, file has {len(rows)}")
    return np.asarray(rows, np.float32)


def _find_image(pts: Path) -> Path | None:
    folders = [pts.parent]
    if pts.parent.name.lower() == "annot":  # 300VW: <video>/annot/000001.pts + <video>/imgs/000001.jpg
        folders.append(pts.parent.parent / "imgs")
    for folder in folders:
        for ext in IMAGE_EXTENSIONS:
            for candidate in (folder / (pts.stem + ext), folder / (pts.stem + ext.upper())):
                if candidate.is_file():
                    return candidate
    return None


def _load_broken_frames(root: Path) -> dict[str, set[int]]:
    # mmpose ships 300VW's list of badly annotated frames as a pickled {video: [frame, ...]} dict.
    path = root / "broken_frames.npy"
    if not path.is_file():
        return {}
    try:
        table = np.load(path, allow_pickle=True).item()
        return {str(k): {int(f) for f in v} for k, v in table.items()}
    except Exception as exc:  # a damaged side file should not stop the whole read
        log.warning("ignoring unreadable %s: %s", path, exc)
        return {}


def read_300w(root: str | Path, num_points: int | None = 68, skip_broken: bool = True) -> list[Sample]:
    """Read every ``.pts`` under ``root`` (recursively) with its same-stem image.

    Handles the 300W layout (``img.jpg`` + ``img.pts`` side by side; group = stem without the ``_N`` face
    index) and the 300VW layout (``<video>/annot/*.pts`` + ``<video>/imgs/*.jpg``; group = video folder).
    300W coordinates are 1-based, so 1 is subtracted. With ``skip_broken``, frames listed in a
    ``broken_frames.npy`` at ``root`` (mmpose's 300VW list) are left out. ``num_points=None`` accepts any
    count as long as all files agree.
    """
    root = _require_dir(root, "300W")
    pts_files = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".pts" and p.is_file())
    if not pts_files:
        raise ValueError(f"no .pts files found under {root}")
    broken = _load_broken_frames(root) if skip_broken else {}
    samples, unpaired, skipped = [], [], 0
    for pts in pts_files:
        is_video = pts.parent.name.lower() == "annot"
        group = pts.parent.parent.name if is_video else _FACE_INDEX.sub("", pts.stem)
        if is_video and pts.stem.isdigit() and int(pts.stem) in broken.get(group, ()):
            skipped += 1
            continue
        image = _find_image(pts)
        if image is None:
            unpaired.append(pts)
            continue
        samples.append(Sample(str(image), read_pts(pts) - 1.0, group=group))
    if skipped:
        log.info("skipped %d frames listed in %s", skipped, root / "broken_frames.npy")
    if unpaired:
        log.warning("%d .pts files under %s have no image and were skipped, first: %s", len(unpaired), root, unpaired[0])
    if not samples:
        raise ValueError(f"no .pts file under {root} has a matching image ({', '.join(IMAGE_EXTENSIONS)})")
    _check_point_counts(samples, num_points, root)
    return samples


# ------------------------------------------------------------------------------------------------ WFLW


def _default_wflw_root(list_file: Path) -> Path:
    # Official layout: WFLW_annotations/list_98pt_rect_attr_train_test/list_*.txt beside WFLW_images/.
    for candidate in (list_file.parent.parent / "WFLW_images", list_file.parent.parent.parent / "WFLW_images"):
        if candidate.is_dir():
            return candidate
    return list_file.parent


def read_wflw(list_file: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Read a WFLW ``list_98pt_rect_attr_{train,test}.txt``.

    Each line: 196 coordinates ``x0 y0 ... x97 y97`` (0-based already), box ``xmin ymin xmax ymax``, six
    flags (pose expression illumination make-up occlusion blur), then the image path relative to
    ``image_root`` (default ``<list dir>/../WFLW_images`` when it exists, else the list's folder).
    group = image path: faces of one photo stay together.
    """
    list_file = _require_file(list_file, "WFLW list")
    root = _require_dir(image_root, "WFLW image") if image_root is not None else _default_wflw_root(list_file)
    n_values = 2 * 98 + 4 + len(WFLW_ATTRIBUTES) + 1
    samples = []
    for lineno, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != n_values:
            raise ValueError(f"{list_file}:{lineno}: expected {n_values} fields (196 coords, 4 box, 6 flags, path), got {len(parts)}")
        try:
            numbers = np.asarray(parts[:-1], dtype=np.float64)
        except ValueError:
            raise ValueError(f"{list_file}:{lineno}: non-numeric coordinate, box or flag") from None
        points = numbers[:196].reshape(98, 2)
        x0, y0, x1, y1 = numbers[196:200]
        flags = numbers[200:].astype(int)
        rel = parts[-1]
        samples.append(
            Sample(
                image_path=str(root / rel),
                points=points,
                box=np.array([x0, y0, x1 - x0, y1 - y0]),
                attributes=dict(zip(WFLW_ATTRIBUTES, flags.tolist())),
                group=str(Path(rel).with_suffix("")),
            )
        )
    if not samples:
        raise ValueError(f"WFLW list file has no annotation lines: {list_file}")
    _check_images_exist(samples, list_file)
    return samples


# ------------------------------------------------------------------------------------------------ COFW

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_COFW_KEYS = {"train": ("IsTr", "bboxesTr", "phisTr"), "test": ("IsT", "bboxesT", "phisT")}


def _to_uint8_image(array: np.ndarray, where: str) -> np.ndarray:
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8:
        if image.dtype.kind == "f" and image.size and float(image.max()) <= 1.0:
            image = image * 255.0
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)  # MATLAB stores RGB
    elif image.ndim != 2:
        raise ValueError(f"{where}: image has unsupported shape {image.shape}")
    return np.ascontiguousarray(image)


def _read_cofw_v5(mat_file: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    data = loadmat(str(mat_file), variable_names=list(keys))
    missing = [k for k in keys if k not in data]
    if missing:
        raise KeyError(", ".join(missing))
    images = [np.asarray(cell) for cell in np.asarray(data[keys[0]], dtype=object).ravel()]
    return images, np.asarray(data[keys[1]], np.float64), np.asarray(data[keys[2]], np.float64)


def _read_cofw_v73(mat_file: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise ValueError(f"{mat_file} is a MATLAB v7.3 (HDF5) file; install h5py to read it") from None
    with h5py.File(mat_file, "r") as f:
        missing = [k for k in keys if k not in f]
        if missing:
            raise KeyError(", ".join(missing))
        # HDF5 holds MATLAB's column-major arrays transposed; cells are object references.
        images = []
        for ref in np.asarray(f[keys[0]]).ravel():
            raw = np.asarray(f[ref])
            images.append(raw.T if raw.ndim == 2 else raw.transpose(2, 1, 0))
        return images, np.asarray(f[keys[1]], np.float64).T, np.asarray(f[keys[2]], np.float64).T


def read_cofw(mat_file: str | Path, split: str = "train") -> list[Sample]:
    """Read COFW from its ``.mat`` (``IsTr/bboxesTr/phisTr`` or ``IsT/bboxesT/phisT``).

    Rows of ``phis``: 29 x, 29 y, 29 occlusion flags (1 = occluded, so ``visible = flag == 0``); boxes are
    x, y, w, h. Coordinates are kept as stored. Images live in the file and come back in ``Sample.image``
    (BGR or gray uint8) with ``image_path = "<mat>#<split>/<index>"``. Both MATLAB v5 (scipy) and v7.3
    (HDF5, needs h5py) files are read.
    """
    if split not in _COFW_KEYS:
        raise ValueError(f"COFW split must be 'train' or 'test', got {split!r}")
    mat_file = _require_file(mat_file, "COFW .mat")
    keys = _COFW_KEYS[split]
    with open(mat_file, "rb") as f:
        head = f.read(520)
    # MATLAB v7.3 files are HDF5 behind a 512-byte user block; plain HDF5 starts with the signature.
    is_hdf5 = _HDF5_SIGNATURE in (head[:8], head[512:520])
    try:
        images, boxes, phis = (_read_cofw_v73 if is_hdf5 else _read_cofw_v5)(mat_file, keys)
    except KeyError as exc:
        other = "test" if split == "train" else "train"
        raise ValueError(f"{mat_file} has no COFW {split} split (missing {exc.args[0]}); try split={other!r}") from None
    except (OSError, ValueError, NotImplementedError, TypeError) as exc:
        if isinstance(exc, ValueError) and "h5py" in str(exc):
            raise
        raise ValueError(f"cannot read COFW .mat {mat_file}: {exc}") from None
    n = len(images)
    if phis.ndim != 2 or phis.shape[1] % 3 != 0:
        raise ValueError(f"{mat_file}: {keys[2]} must be (N, 3 * points), got {phis.shape}")
    if phis.shape[0] != n or boxes.shape != (n, 4):
        raise ValueError(f"{mat_file}: {n} images but {keys[2]} {phis.shape} and {keys[1]} {boxes.shape}")
    if n == 0:
        raise ValueError(f"{mat_file}: COFW {split} split is empty")
    k = phis.shape[1] // 3
    samples = []
    for i in range(n):
        label = f"{mat_file}#{split}/{i}"
        samples.append(
            Sample(
                image_path=label,
                points=np.stack([phis[i, :k], phis[i, k : 2 * k]], axis=1),
                box=boxes[i],
                visible=phis[i, 2 * k :] == 0,
                occluded=phis[i, 2 * k :] != 0,
                group=label,
                image=_to_uint8_image(images[i], label),
            )
        )
    return samples


# ------------------------------------------------------------------------------------------- CSV (YTF)


def _is_header(row: list[str]) -> bool:
    values = [c.strip() for c in row[1:]]
    if not row[0].strip() or values == [str(i) for i in range(len(values))]:
        return True  # pandas' index header ",0,1,..."
    try:
        np.asarray(values, dtype=np.float64)
    except ValueError:
        return True  # named columns such as "name,x0,y0,..."
    return False


def read_landmark_csv(csv_file: str | Path, image_root: str | Path | None = None, num_points: int | None = None) -> list[Sample]:
    """Read a ``name,x0,y0,...`` landmark CSV (the YouTube-Faces ``*_frames_keypoints.csv`` files).

    A header row (pandas' ``,0,1,...``) is skipped. Coordinates are 0-based. Images are resolved in
    ``image_root``, by default the folder named like the CSV minus ``_frames_keypoints``
    (``training_frames_keypoints.csv`` -> ``training/``), else the CSV's folder.
    group = name without its trailing ``_NN.jpg`` frame number (the identity).
    """
    csv_file = _require_file(csv_file, "landmark CSV")
    if image_root is None:
        guess = csv_file.parent / csv_file.stem.removesuffix("_frames_keypoints")
        root = guess if guess.is_dir() else csv_file.parent
    else:
        root = _require_dir(image_root, "CSV image")
    with open(csv_file, newline="", encoding="utf-8") as f:
        rows = [(i, r) for i, r in enumerate(csv.reader(f), start=1) if r and any(c.strip() for c in r)]
    if rows and _is_header(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"landmark CSV has no data rows: {csv_file}")
    samples = []
    for lineno, row in rows:
        name, values = row[0].strip(), row[1:]
        if len(values) < 2 or len(values) % 2:
            raise ValueError(f"{csv_file}:{lineno}: expected name followed by x,y pairs, got {len(values)} values")
        try:
            coords = np.asarray(values, dtype=np.float64)
        except ValueError:
            raise ValueError(f"{csv_file}:{lineno}: non-numeric coordinate") from None
        samples.append(Sample(str(root / name), coords.reshape(-1, 2), group=_FRAME_SUFFIX.sub("", name)))
    _check_point_counts(samples, num_points, csv_file)
    _check_images_exist(samples, csv_file)
    return samples


# ------------------------------------------------------------------------------------------------ COCO


def read_coco(json_file: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Read a COCO-style keypoint JSON (as mmpose writes for its face sets).

    ``keypoints`` is flat ``x, y, v``; ``visible = v > 0`` (labelled: mmpose's face files use 1 and 2
    alike). ``bbox`` is x, y, w, h (None when absent). Coordinates are kept as stored.
    ``file_name`` is relative to ``image_root`` (default: the JSON's folder). group = first folder of
    ``file_name`` when it has one (a 300VW video), else the image stem.
    """
    json_file = _require_file(json_file, "COCO JSON")
    root = _require_dir(image_root, "COCO image") if image_root is not None else json_file.parent
    try:
        data = json.loads(json_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_file} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise ValueError(f"{json_file} is not a COCO keypoint file (needs 'images' and 'annotations')")
    images = {img["id"]: img["file_name"] for img in data["images"]}
    samples = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        ident = ann.get("id", "?")
        if ann.get("image_id") not in images:
            raise ValueError(f"{json_file}: annotation {ident} refers to unknown image_id {ann.get('image_id')}")
        kps = np.asarray(ann.get("keypoints", []), np.float64)
        if kps.size == 0 or kps.size % 3:
            raise ValueError(f"{json_file}: annotation {ident} keypoints must be a flat x,y,v list, got {kps.size} values")
        kps = kps.reshape(-1, 3)
        file_name = images[ann["image_id"]]
        rel = Path(file_name)
        box = ann.get("bbox")
        samples.append(
            Sample(
                image_path=str(root / rel),
                points=kps[:, :2],
                box=np.asarray(box) if box is not None and len(box) == 4 else None,
                visible=kps[:, 2] > 0,
                group=rel.parts[0] if len(rel.parts) > 1 else rel.stem,
            )
        )
    if not samples:
        raise ValueError(f"COCO JSON has no keypoint annotations: {json_file}")
    _check_point_counts(samples, None, json_file)
    _check_images_exist(samples, json_file)
    return samples


# -------------------------------------------------------------------------------------- dispatch, split

_READERS: dict[str, Callable[..., list[Sample]]] = {
    "300w": read_300w,
    "wflw": read_wflw,
    "cofw": read_cofw,
    "csv": read_landmark_csv,
    "coco": read_coco,
}


def load_samples(path: str | Path, fmt: str, **options) -> list[Sample]:
    """Read ``path`` with the reader for ``fmt`` (one of :data:`FORMATS`); ``options`` go to the reader."""
    key = str(fmt).lower()
    if key not in _READERS:
        raise ValueError(f"unknown dataset format {fmt!r} (valid: {', '.join(FORMATS)})")
    return _READERS[key](path, **options)


def split_by_group(samples: list[Sample], val_fraction: float, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Split into (train, val) so that no group is on both sides.

    Groups are shuffled with ``seed`` and moved to val until it holds about ``val_fraction`` of the
    samples; the order of samples inside each side is kept. Same inputs and seed, same split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups = sorted({s.group for s in samples})
    if val_fraction == 0.0 or not samples:
        return list(samples), []
    if len(groups) < 2:
        raise ValueError(f"cannot split {len(samples)} samples by group: they all belong to one group {groups[0]!r}")
    sizes: dict[str, int] = {}
    for s in samples:
        sizes[s.group] = sizes.get(s.group, 0) + 1
    target = val_fraction * len(samples)
    order = np.random.default_rng(seed).permutation(len(groups))
    val_groups: set[str] = set()
    count = 0
    for idx in order[:-1]:  # the last group always stays in train, so train is never empty
        if count >= target:
            break
        g = groups[idx]
        # Take a group only if it brings val closer to the target than leaving it out would.
        if count == 0 or abs(count + sizes[g] - target) <= abs(count - target):
            val_groups.add(g)
            count += sizes[g]
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    return train, val


# ----------------------------------------------------------------------------------------------- image


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def load_image(sample: Sample) -> np.ndarray:
    """Return the sample's image as (H, W, 3) BGR uint8.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError("cannot read image <path>")`` for a
    file OpenCV cannot decode, so callers can skip it with a warning.
    """
    if sample.image is not None:
        return _to_bgr(sample.image)
    path = Path(sample.image_path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    # imdecode on the raw bytes, unlike imread, copes with non-ASCII paths on Windows. IMREAD_COLOR
    # already turns gray, RGBA and 16-bit files into 8-bit BGR.
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise ValueError(f"cannot read image {path}")
    return _to_bgr(image)


def readable_images(samples: Iterable[Sample]) -> Iterator[tuple[Sample, np.ndarray]]:
    """(sample, BGR image) for every sample whose image reads; the others are skipped with a warning
    naming them (a corrupt file in a dataset should not end an evaluation or a training run)."""
    for sample in samples:
        try:
            image = load_image(sample)
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipping %s", exc)
            continue
        yield sample, image
