"""`sdfl train`: one loop for every backbone, head and dataset; resumable, best-on-validation."""
from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, WeightedRandomSampler
from tqdm import tqdm

from sdfl_core.checkpoint import IMAGENET_MEAN, IMAGENET_STD, ModelInfo, load_checkpoint, read_checkpoint, round_half, save_checkpoint
from sdfl_core.crops import CROP_SHIFT, crop_steps
from sdfl_core.devices import resolve_device
from sdfl_core.graph import mine_adjacency, plot_graph, uniform_laplacian
from sdfl_core.losses import LandmarkLoss, edge_occlusion_loss
from sdfl_core.metrics import summarize_errors
from sdfl_core.model import REFINE_CHANNELS, ModelConfig, SDFLModel
from sdfl_core.schemas import get_schema

from . import distributed
from .augment import AugmentConfig
from .config import config_hash
from .data import LandmarkDataset, load_cached, pose_balance_weights, source_weights, split_samples, val_sources
from .validate import validate_errors, validate_visibility

log = logging.getLogger(__name__)


def make_scheduler(optimizer, optim: dict, steps_per_epoch: int, plan: dict):
    """LR schedule over ``plan['epochs']`` epochs; the plan may shrink once the speed is known."""
    warmup = int(optim["warmup_epochs"] * steps_per_epoch)
    kind = optim["scheduler"]

    def factor(step: int) -> float:
        total = max(1, plan["epochs"] * steps_per_epoch)
        if step < warmup:
            return (step + 1) / warmup
        if kind == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
        if kind == "step":
            return optim["gamma"] ** ((step // steps_per_epoch) // optim["step_size"])
        if kind == "constant":
            return 1.0
        raise ValueError(f"unknown scheduler {kind!r} (cosine, step, constant)")

    factor(0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def param_groups(model: torch.nn.Module, optim: dict) -> list[dict]:
    """The backbone's parameters at ``optim.lr x optim.backbone_lr_mult`` (lower for ImageNet weights), the
    head's at ``optim.lr``, and those whose name starts with a key of ``optim.lr_mults`` at ``optim.lr`` times
    its value (e.g. a new module that a warm start left at its initial weights); the scheduler scales every
    group by the same factor."""
    mults = {str(prefix): float(mult) for prefix, mult in (optim.get("lr_mults") or {}).items()}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    unmatched = [prefix for prefix in mults if not any(n.startswith(prefix) for n, _ in named)]
    if unmatched:
        raise ValueError(f"optim.lr_mults names no trainable parameter: {', '.join(unmatched)}")

    def mult(name: str) -> float:
        for prefix, value in mults.items():
            if name.startswith(prefix):
                return value
        return float(optim["backbone_lr_mult"]) if name.startswith("backbone.") else 1.0

    # Head groups first, then backbone groups: without lr_mults these are the two groups, in the order, that
    # a resumed optimizer state was saved with.
    groups: dict[tuple[bool, float], list] = {}
    for name, param in sorted(named, key=lambda item: item[0].startswith("backbone.")):
        groups.setdefault((name.startswith("backbone."), mult(name)), []).append(param)
    return [{"params": params, "lr": optim["lr"] * m} for (_, m), params in groups.items()]


def make_optimizer(model: torch.nn.Module, optim: dict):
    groups = param_groups(model, optim)
    if optim["name"] == "sgd":
        return torch.optim.SGD(groups, lr=optim["lr"], momentum=optim["momentum"],
                               weight_decay=optim["weight_decay"], nesterov=False)
    if optim["name"] == "adamw":
        return torch.optim.AdamW(groups, lr=optim["lr"], weight_decay=optim["weight_decay"])
    raise ValueError(f"unknown optimizer {optim['name']!r} (sgd, adamw)")


def make_ema(model: torch.nn.Module, decay: float):
    """timm's exponential moving average of the weights and BatchNorm statistics (``optim.ema_decay`` > 0), or None."""
    if not decay:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(f"optim.ema_decay must be 0 (off) or in (0, 1), got {decay}")
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay)


def visibility_loss(logits: torch.Tensor, occluded: torch.Tensor) -> torch.Tensor:
    """BCE of the (B, N) visibility logits against the augmentation's cover (1 = occluded, so not visible)."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, 1 - occluded.to(logits.dtype))


def moved_crops(x: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) crops and (S, 2) window moves in crop sides -> (S * B, C, H, W): every crop as seen through
    each moved window (move-major), edge pixels repeated where a window leaves the crop."""
    count, batch = len(moves), x.shape[0]
    theta = torch.zeros(count, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = 2.0 * moves  # grid_sample's [-1, 1] spans the crop: 2 per crop side
    grid = torch.nn.functional.affine_grid(theta, [count, *x.shape[1:]], align_corners=False)
    return torch.nn.functional.grid_sample(x.float().repeat(count, 1, 1, 1), grid.repeat_interleave(batch, dim=0),
                                           mode="bilinear", padding_mode="border", align_corners=False)


class CropMeanTeacher:
    """A frozen model's mean points over the test-time crops of each training crop (``distill.*``), the target
    that distillation pulls one crop's points towards. The crops are the batch itself moved as
    :func:`sdfl_core.crops.shifted_affines` moves the window (torch's ``grid_sample``; edge pixels repeat where
    the moved window leaves the crop), and each crop's points are moved back before the mean. With ``mirror``
    (the schema's, ``distill.flip``) every moved crop is also seen mirrored, and its points are mirrored back
    (x -> 1 - x, each point renamed to its mirror image) before the mean. With ``size`` (the teacher's input
    size) the crops are resampled to that size first, so a teacher can teach a student of another input size:
    crop units are the same at every size."""

    def __init__(self, model: SDFLModel, count: int, device: torch.device,
                 mirror: Sequence[int] | None = None, size: int | None = None) -> None:
        self.model = model.to(device).eval()
        self.size = size
        for param in self.model.parameters():
            param.requires_grad_(False)
        if device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        # (S, 2) moves of the window in crop sides: a crop unit u of a moved crop is u + move in the batch's crop.
        self.moves = torch.tensor(crop_steps(count), dtype=torch.float32, device=device) * CROP_SHIFT
        self.mirror = None if mirror is None else torch.as_tensor(list(mirror), dtype=torch.long, device=device)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) crops -> (B, N, 2) mean points in their crop units."""
        count, batch = len(self.moves), x.shape[0]
        moved = moved_crops(x, self.moves)
        if self.size and tuple(moved.shape[-2:]) != (self.size, self.size):
            moved = torch.nn.functional.interpolate(moved, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if x.device.type == "cpu":
            moved = moved.contiguous(memory_format=torch.channels_last)
        points = self.model(moved)[0].float().reshape(count, batch, -1, 2)
        if self.mirror is not None:
            seen = self.model(moved.flip(-1))[0].float().reshape(count, batch, -1, 2)[:, :, self.mirror]
            seen[..., 0] = 1.0 - seen[..., 0]
            points = torch.cat([points, seen])
        return (points + self.moves.repeat(len(points) // count, 1)[:, None, None, :]).mean(dim=0)


def load_unbounded(path: str, num_points: int, role: str):
    """``load_checkpoint`` for a warm start or a teacher, without a shipped file's hidden bound: ``training.ship``
    measures it on the finished run, so the run a shipped file came from had none (``role`` names the user in the
    log line)."""
    model, info = load_checkpoint(path, expect_points=num_points)
    if model.hidden_bound is not None:
        model.set_hidden_bound(None)
        log.info("%s has a hidden bound; %s runs without one, as the run it was shipped from", path, role)
    return model, info


def make_teacher(distill: dict, init_from: str, device: torch.device, num_points: int,
                 init_half: bool = False) -> tuple[CropMeanTeacher | None, dict]:
    """``distill``'s teacher (``distill.teacher``, else ``train.init_from``, rounded to float16 under
    ``train.init_half``, without a shipped file's hidden bound) and its provenance entry, or (None, {}) when
    ``distill.weight`` is 0."""
    weight = float(distill["weight"])
    if not weight:
        if distill.get("clean"):
            raise ValueError("distill.clean needs a teacher: set distill.weight > 0")
        return None, {}
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"distill.weight must be 0 (off) or in (0, 1], got {weight}")
    path = distill["teacher"] or init_from
    if not path:
        raise ValueError("distill.weight > 0 needs a teacher: set distill.teacher or train.init_from")
    from .pretrained import sha256

    teacher, info = load_unbounded(path, num_points, "the teacher")
    half = init_half and not distill["teacher"]
    if half:
        round_half(teacher)
    flip = bool(distill.get("flip", False))
    mirror = info.schema.mirror if flip else None
    provenance = {"path": str(path), "sha256": sha256(path), "crops": int(distill["crops"])}
    if half:
        provenance["half"] = True
    if flip:
        provenance["flip"] = True
    if distill.get("clean"):
        provenance["clean"] = True
    return CropMeanTeacher(teacher, int(distill["crops"]), device, mirror, info.config.input_size), provenance


def set_train_mode(model: SDFLModel, only_visibility: bool) -> None:
    """Training mode; with ``only_visibility`` everything else stays in eval mode (frozen BatchNorm)."""
    model.train(not only_visibility)
    if only_visibility:
        model.vis_head.train()


class TrainingForward(torch.nn.Module):
    """The training step's forward, (coords, edge weights, visibility logits or None, first-stage coords), as a
    module's forward."""

    def __init__(self, model: SDFLModel, with_visibility: bool) -> None:
        super().__init__()
        self.model, self.with_visibility = model, with_visibility

    def forward(self, x: torch.Tensor):
        return self.model.forward_train(x, self.with_visibility)


def init_matching(model: torch.nn.Module, source: torch.nn.Module) -> tuple[int, int]:
    """Copy every tensor of ``source`` whose name and shape ``model`` shares (e.g. the backbone stages a new
    head still reads); returns (copied, model's tensor count). Raises when nothing matches. The graph
    (``mask``) stays the one the config mined. When it differs from the source's, the edge layer's output
    cannot be copied as it is: a graph that adds edges keeps the old edges' weights (``grow_edges``); any
    other starts that output untrained, with a warning. A smaller refinement patch starts from the larger
    one's central taps (``shrink_patch``)."""
    target = model.state_dict()
    change = graph_change(model, source)
    last = f"edge_fc.{len(model.edge_fc) - 1}." if change != "same" else None
    matching = {key: value for key, value in source.state_dict().items()
                if key in target and target[key].shape == value.shape and key != "mask"
                and not (last and key.startswith(last))}
    if not matching:
        raise ValueError("train.init_partial: the initialising model shares no tensor with this one")
    model.load_state_dict({**target, **{k: v.to(target[k].dtype) for k, v in matching.items()}})
    copied = len(matching) + shrink_patch(model, source)
    if change == "grown":
        grow_edges(model, source)
        return copied + 2, len(target)
    if change == "other":
        log.warning("train.init_partial: the initialising model's graph has edges this config's graph lacks; "
                    "the edge layer's output starts untrained")
    return copied, len(target)


def patch_inputs(model: torch.nn.Module) -> list[tuple[str, int]]:
    """The refinement stage's layers that read the sampled patches, each with the column where the patches
    start in its input: the graph head's first refinement conv and its visibility layer (after the first
    stage's node features), the FC twin's per-point layer."""
    config = model.config
    if not config.refine:
        return []
    if config.head == "fc":
        return [("refine_point.0.weight", 0)]
    layers = [("refine_in.linear.weight", 0)]
    if config.visibility and not config.visibility_gate:  # the gate reads no patch
        layers.append(("vis_head.0.weight", model.gc_in.linear.in_features + config.hidden))
    return layers


@torch.no_grad()
def shrink_patch(model: torch.nn.Module, source: torch.nn.Module) -> int:
    """Warm-start the layers that read the refinement patches when ``model`` samples a smaller patch than
    ``source`` (``model.refine_patch`` 3 from 5): the taps lie on the same half-cell grid, so the smaller
    patch is the larger one's centre, and each such layer keeps its weights for those central taps. Returns
    the number of tensors so set (0 when the patches do not shrink)."""
    new_cfg, old_cfg = model.config, source.config
    if not (new_cfg.refine and old_cfg.refine and new_cfg.head == old_cfg.head):
        return 0
    p, q = new_cfg.refine_patch, old_cfg.refine_patch
    if p >= q or (q - p) % 2:
        return 0
    lo, end = (q - p) // 2, REFINE_CHANNELS * q * q
    target, old = model.state_dict(), source.state_dict()
    done = 0
    # The features before the patches (the visibility layer's node features) do not depend on the patch size.
    for name, start in patch_inputs(model):
        if name not in old:
            continue
        w_old = old[name]
        # Patch columns are channel-major, each channel's taps row by row (SDFLModel.sample_patches).
        patch = w_old[:, start:start + end].unflatten(1, (REFINE_CHANNELS, q, q))[..., lo:lo + p, lo:lo + p]
        w_new = torch.cat([w_old[:, :start], patch.flatten(1), w_old[:, start + end:]], 1)
        if w_new.shape != target[name].shape:
            continue
        target[name].copy_(w_new.to(target[name]))
        done += 1
    if done:
        log.info("refinement patch %dx%d started from the %dx%d patch's central taps", p, p, q, q)
    return done


def graph_change(model: torch.nn.Module, source: torch.nn.Module) -> str:
    """How ``model``'s dynamic-edge graph relates to ``source``'s: "same" (or either has no edge layer),
    "grown" (``model``'s adds edges only) or "other"."""
    if getattr(model, "edge_fc", None) is None or getattr(source, "edge_fc", None) is None:
        return "same"
    new, old = model.mask.cpu(), source.mask.cpu()
    if new.shape == old.shape and torch.equal(new, old):
        return "same"
    return "grown" if new.shape == old.shape and not (old & ~new).any() else "other"


NEW_EDGE_OFFSET = 3.0
"""How far below its row's mean edge logit a grown edge starts (``grow_edges``): e^-3, about 5 % of an
average edge's weight, so the grown model starts next to its source and the new edges can still learn."""


@torch.no_grad()
def grow_edges(model: torch.nn.Module, source: torch.nn.Module) -> None:
    """Warm-start the edge layer's output of a dynamic-edge graph head whose graph (``mask``) adds edges to
    ``source``'s (a larger k; ``graph_change`` "grown"): each old edge keeps its row, each new edge (i, j)
    gets the mean of row i's old edges' rows, its bias ``NEW_EDGE_OFFSET`` lower, so its logit follows its
    node's old edges from below."""
    if graph_change(model, source) != "grown":
        raise ValueError("grow_edges needs a model whose graph adds edges to the source's")
    new, old = model.mask.cpu(), source.mask.cpu()
    n = new.shape[0]
    slot_new = torch.zeros(n, n, dtype=torch.long)
    slot_new[new] = torch.arange(int(new.sum()))
    slot_old = torch.zeros(n, n, dtype=torch.long)
    slot_old[old] = torch.arange(int(old.sum()))
    w_old, b_old = source.edge_fc[-1].weight, source.edge_fc[-1].bias
    w_new, b_new = model.edge_fc[-1].weight, model.edge_fc[-1].bias
    for i in range(n):
        kept = slot_old[i][old[i]]
        w_new[slot_new[i][old[i]]] = w_old[kept].to(w_new)
        b_new[slot_new[i][old[i]]] = b_old[kept].to(b_new)
        added = slot_new[i][new[i] & ~old[i]]
        w_new[added] = w_old[kept].mean(0).to(w_new)
        b_new[added] = b_old[kept].mean().to(b_new) - NEW_EDGE_OFFSET
    log.info("graph grown from %d to %d edges; each new edge starts %.1f below its node's mean edge logit",
             int(old.sum()), int(new.sum()), NEW_EDGE_OFFSET)


def train(config: dict, resume: str | None = None) -> Path:
    """Run (or resume) a training; returns the path of the best checkpoint."""
    t_start = time.time()
    tc, optim, data_cfg, mc = config["train"], config["optim"], config["data"], config["model"]
    out_dir = Path(tc["out_dir"]) / config["name"]
    device = distributed.setup(torch.device(resolve_device(tc["device"])))  # under torchrun: join the process group
    rank0 = distributed.is_rank0()
    if rank0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.manual_seed(config["seed"])
    if tc["num_threads"]:
        torch.set_num_threads(int(tc["num_threads"]))
    schema = get_schema(data_cfg["schema"])

    train_samples, val_samples = split_samples(config)
    log.info("train %d samples, val %d samples", len(train_samples), len(val_samples))

    size = data_cfg["precrop_size"]
    tr_img, tr_pts, train_samples = load_cached(train_samples, size, schema)
    va_img, va_pts, val_samples = load_cached(val_samples, size, schema)

    crop_scale = float(config["crop_scale"])
    norm_mean, norm_std = IMAGENET_MEAN, IMAGENET_STD
    if mc["pretrained"]:
        from .pretrained import get_source

        source = get_source(mc["pretrained"])
        norm_mean, norm_std = source.norm_mean, source.norm_std
    plain = LandmarkDataset(tr_img, tr_pts, schema, mc["input_size"], crop_scale, norm_mean, norm_std, None)
    mean_shape = np.mean([plain.crop(i)[1] for i in range(len(plain))], axis=0).astype(np.float32)
    mask = mine_adjacency(np.stack(tr_pts), k=mc["k"])
    if rank0:
        plot_graph(out_dir / "graph.png", mean_shape, mask, f"{schema.name} top-{mc['k']} graph")

    # The architecture keys of the config's model section (k, pretrained and the like are the training's).
    model_cfg = ModelConfig.from_dict({**mc, "num_points": schema.num_points}, strict=False)
    model = SDFLModel(model_cfg, mask, mean_shape)
    provenance = {"config_sha256": config_hash(config)}
    if mc["pretrained"] and not resume and not tc["init_from"]:
        from .pretrained import init_backbone

        provenance["backbone"] = init_backbone(model.backbone, model_cfg.backbone, mc["pretrained"])
        log.info("backbone initialised from ImageNet weights %s (%d tensors)", mc["pretrained"], provenance["backbone"]["tensors"])
    if tc["init_from"]:
        from .pretrained import sha256

        parent = {"path": str(tc["init_from"]), "sha256": sha256(tc["init_from"])}
        parent_info = ModelInfo.from_payload(read_checkpoint(tc["init_from"])["info"])
        if parent_info.provenance:
            parent["provenance"] = parent_info.provenance
        if tc["init_half"]:
            parent["half"] = True
        provenance["parent"] = parent
    elif tc["init_half"]:
        raise ValueError("train.init_half rounds the warm start: set train.init_from")
    teacher, teacher_provenance = make_teacher(config["distill"], tc["init_from"], device, schema.num_points,
                                               tc["init_half"])
    if teacher_provenance:
        provenance["teacher"] = teacher_provenance
    distill_weight = float(config["distill"]["weight"])
    model = model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    info = ModelInfo(config=model_cfg, schema=schema.name, k=mc["k"], mask=mask, mean_shape=mean_shape,
                     norm_mean=tuple(norm_mean), norm_std=tuple(norm_std),
                     crop_scale=crop_scale, train_config=config, name=config["name"], provenance=provenance)

    aug = AugmentConfig(**config["augment"])
    # Datasets with their own occlusion flags (COFW) label visibility with them as well as the occluders.
    tr_flags, va_flags = [s.occluded for s in train_samples], [s.occluded for s in val_samples]
    clean_teacher = teacher is not None and bool(config["distill"].get("clean", False))
    train_set = LandmarkDataset(tr_img, tr_pts, schema, mc["input_size"], crop_scale, norm_mean, norm_std, aug, config["seed"],
                                tr_flags, with_clean=clean_teacher)
    val_set = LandmarkDataset(va_img, va_pts, schema, mc["input_size"], crop_scale, norm_mean, norm_std, None,
                              occluded=va_flags)
    bs = int(optim["batch_size"])
    weights = None
    if tc["balance"] == "pdb":
        weights = pose_balance_weights(np.stack(tr_pts))
    elif tc["balance"] != "none":
        raise ValueError(f"train.balance must be none or pdb, got {tc['balance']!r}")
    per_source = source_weights(train_samples, data_cfg["train"], schema.num_points)
    if per_source is not None:
        weights = per_source * (weights if weights is not None else 1.0)
        if not weights.sum() > 0:
            raise ValueError("data.train weights leave nothing to draw: every training face has weight 0")
        weights = weights / weights.sum()
    sampler = distributed.distributed_sampler(train_set, weights, config["seed"])  # None single-process
    if sampler is None and weights is not None:
        sampler = WeightedRandomSampler(torch.as_tensor(weights), num_samples=len(train_set), replacement=True)
    per_rank = len(sampler) if sampler is not None else len(train_set)
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=sampler is None, sampler=sampler, drop_last=per_rank > bs,
                              num_workers=tc["num_workers"])  # not persistent: workers must see set_epoch
    val_loader = DataLoader(val_set, batch_size=64, shuffle=False, num_workers=0)
    selected = selection_mask(val_samples, data_cfg, tc["select_on"], schema.num_points)

    criterion = LandmarkLoss(uniform_laplacian(mask), config["loss"]["kind"], config["loss"]["relative_weight"]).to(device)
    edge_weight = float(config["loss"]["edge_occlusion"])
    if edge_weight and model_cfg.head != "graph":
        raise ValueError("loss.edge_occlusion needs the graph head (the FC head has no edges)")
    if tc["trainable"] not in ("all", "visibility"):
        raise ValueError(f"train.trainable must be all or visibility, got {tc['trainable']!r}")
    only_visibility = tc["trainable"] == "visibility"
    if only_visibility:
        if not model_cfg.visibility:
            raise ValueError("train.trainable: visibility needs model.visibility: true")
        if model_cfg.visibility_gate:
            raise ValueError("train.trainable: visibility keeps the landmarks as they were, but under "
                             "model.visibility_gate the visibility output gates the landmarks' features")
        # Everything but the visibility output stays exactly as it was (weights and BatchNorm statistics), so
        # the landmarks of the warm-start model are unchanged by construction.
        keep = {id(p) for p in model.visibility_parameters()}
        for param in model.parameters():
            param.requires_grad_(id(param) in keep)
    vis_weight = float(config["loss"]["visibility"]) if model_cfg.visibility else 0.0
    first_weight = float(config["loss"]["first_stage"]) if model_cfg.refine else 0.0
    vis_val_loader = None
    if model_cfg.visibility:
        # Validation faces under the training occluders, drawn once (fixed seed and epoch).
        vis_val_set = LandmarkDataset(va_img, va_pts, schema, mc["input_size"], crop_scale, norm_mean, norm_std,
                                      aug.at_epoch(10 ** 6), config["seed"] + 1, va_flags)
        vis_val_loader = DataLoader(vis_val_set, batch_size=64, shuffle=False, num_workers=0)
    optimizer = make_optimizer(model, optim)
    plan = {"epochs": int(optim["epochs"])}
    scheduler = make_scheduler(optimizer, optim, len(train_loader), plan)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, best, step = 0, float("inf"), 0
    if tc["init_from"] and not resume:
        # Warm start (e.g. from a shipped model in a new session): weights only, fresh optimizer/schedule.
        init, init_info = load_unbounded(tc["init_from"], schema.num_points, "training")
        if tc["init_half"]:
            round_half(init)
        if tc["init_partial"]:
            copied, total = init_matching(model, init)
            log.info("initialised %d of %d tensors from %s (train.init_partial)", copied, total, tc["init_from"])
        else:
            if init_info.config != model_cfg or not np.array_equal(init_info.mask, mask):
                raise ValueError(f"{tc['init_from']} has another architecture or graph than this config; it cannot "
                                 "initialise it (train.init_partial: true copies the tensors that match)")
            model.load_state_dict(init.state_dict())
            log.info("initialised from %s", tc["init_from"])
    if resume:
        payload = read_checkpoint(resume)
        extra = payload.get("extra") or {}
        if "optimizer" not in extra:
            raise ValueError(f"{resume} holds no optimizer state; resume from a run's last.pt")
        resumed, resumed_info = load_checkpoint(resume, expect_points=schema.num_points)
        model.load_state_dict(resumed.state_dict())
        # The run's provenance (ImageNet source, parent) was recorded when it started.
        info = replace(info, provenance={**resumed_info.provenance, "config_sha256": provenance["config_sha256"]})
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        start_epoch, best, step = int(extra["epoch"]) + 1, float(extra["best"]), int(extra["step"])
        # Keep a schedule the time budget shortened, unless this run asks for another number of epochs.
        saved_epochs = (payload["info"].get("train_config") or {}).get("optim", {}).get("epochs")
        if saved_epochs is None or int(saved_epochs) == plan["epochs"]:
            plan["epochs"] = int(extra.get("planned_epochs", plan["epochs"]))
        if start_epoch >= plan["epochs"]:
            raise ValueError(f"{resume} already finished epoch {start_epoch} of {plan['epochs']}; "
                             f"raise optim.epochs to train further")
        log.info("resumed from %s at epoch %d (best val NME %.4f)", resume, start_epoch, best)

    ema = make_ema(model, float(optim["ema_decay"]))
    if ema is not None and resume and "ema" in extra:
        ema.module.load_state_dict(extra["ema"])
    evaluated = ema.module if ema is not None else model  # what is validated and saved as best.pt
    # Under torchrun the training forward runs through DDP (which hooks a module's forward); `model` is what is saved.
    net = distributed.wrap(TrainingForward(model, bool(vis_weight)), device,
                           find_unused_parameters=model_cfg.visibility and not vis_weight)
    metrics_path = out_dir / "metrics.csv"
    new_file = not metrics_path.exists() or not resume
    with open(metrics_path if rank0 else os.devnull, "w" if new_file else "a", newline="") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow(["epoch", "step", "lr", "train_loss", "val_nme_io", "best_val_nme_io", "minutes",
                             "val_fr_10", "val_auc_10", "val_vis_auroc", "val_nme_io_selected"])
        stop = False
        epoch = start_epoch
        while epoch < plan["epochs"]:
            epoch_start = time.time()
            train_set.set_epoch(epoch)
            set_train_mode(model, only_visibility)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            losses, edge_terms = [], []
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{plan['epochs']}", leave=False, dynamic_ncols=True,
                       disable=not rank0)
            for x, y, occluded, *clean in bar:
                x = x.to(device, non_blocking=True)
                # distill.clean: the teacher sees the crop before its occluder
                seen = clean[0].to(device, non_blocking=True) if clean else x
                if device.type == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                y = y.to(device)
                with torch.autocast(device_type="cuda", enabled=use_amp):
                    pred, adj, vis, first = net(x)
                if only_visibility:
                    loss = vis_weight * visibility_loss(vis.float(), occluded.to(device))
                else:
                    loss = criterion(pred.float(), y)["total"]
                    if teacher is not None:
                        loss = (1 - distill_weight) * loss + distill_weight * criterion(pred.float(), teacher(seen))["total"]
                    if first_weight:  # deep supervision of the first stage under model.refine
                        loss = loss + first_weight * criterion(first.float(), y)["total"]
                    if vis_weight:
                        loss = loss + vis_weight * visibility_loss(vis.float(), occluded.to(device))
                if edge_weight and not only_visibility:  # frozen edges: the term has no gradient
                    edge_term = edge_occlusion_loss(adj.float(), occluded.to(device))
                    edge_terms.append(edge_term.item())
                    loss = loss + edge_weight * edge_term
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower optim.lr")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                if ema is not None:
                    ema.update(model, step=step)
                losses.append(loss.item())
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.2f}")
                minutes = (time.time() - t_start) / 60
                if tc["max_minutes"]:  # every rank stops at the same step
                    minutes = distributed.reduce_max(minutes)
                if (tc["max_steps"] and step >= tc["max_steps"]) or (tc["max_minutes"] and minutes >= tc["max_minutes"]):
                    stop = True
                    break
            if tc["max_minutes"] and epoch == start_epoch and not stop:
                # Fit the schedule into the time budget so the LR anneals before the budget ends.
                left = tc["max_minutes"] * 60 - (time.time() - t_start)
                fit = epoch + 1 + int(distributed.reduce_max(left // max(1.0, time.time() - epoch_start)))
                if fit < plan["epochs"]:
                    log.info("time budget fits %d epochs, not %d: shortening the schedule", fit, plan["epochs"])
                    plan["epochs"] = max(epoch + 1, fit)
            last_epoch = stop or epoch == plan["epochs"] - 1
            losses = [distributed.reduce_mean(np.mean(losses))] if distributed.is_active() else losses
            if rank0 and ((epoch + 1) % tc["eval_every"] == 0 or last_epoch):
                val_errors = validate_errors(evaluated, val_loader, schema, device)
                summary = summarize_errors(val_errors)
                val, val_fr, val_auc = float(val_errors.mean()), summary["fr_10"], summary["auc_10"]
                vis_auroc = validate_visibility(evaluated, vis_val_loader, device) if vis_val_loader else float("nan")
                # The model is chosen on validation NME (of the train.select_on faces), or on visibility AUROC
                # when only that output trains.
                val_selected = float(val_errors[selected].mean())
                score = -vis_auroc if only_visibility else val_selected
                improved = score < best
                best = min(best, score)
                writer.writerow([epoch + 1, step, f"{scheduler.get_last_lr()[0]:.6g}", f"{np.mean(losses):.4f}",
                                 f"{val:.5f}", f"{best:.5f}", f"{(time.time() - t_start) / 60:.1f}",
                                 f"{val_fr:.5f}", f"{val_auc:.5f}", f"{vis_auroc:.5f}", f"{val_selected:.5f}"])
                fh.flush()
                log.info("epoch %d: loss %.3f val NME %.4f FR %.3f AUC %.3f%s%s", epoch + 1, np.mean(losses), val, val_fr,
                         val_auc, f" visibility AUROC {vis_auroc:.3f}" if vis_val_loader else "",
                         f"; occluded-edge weight {np.mean(edge_terms):.3f} per face" if edge_terms else "")
                metrics = {"val_nme_io": val, "val_fr_10": val_fr, "val_auc_10": val_auc, "epoch": epoch + 1, "step": step}
                if tc["select_on"]:
                    metrics["val_nme_io_selected"] = val_selected
                if vis_val_loader:
                    metrics["val_vis_auroc"] = vis_auroc
                if improved:
                    save_checkpoint(out_dir / "best.pt", evaluated, _with_metrics(info, metrics))
            extra = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                     "best": best, "step": step, "planned_epochs": plan["epochs"]}
            if ema is not None:
                extra["ema"] = ema.module.state_dict()
            if rank0:
                save_checkpoint(out_dir / "last.pt", model, info, extra=extra)
            if stop:
                log.info("stopping at the configured budget (step %d)", step)
                break
            epoch += 1
    distributed.barrier()  # the other ranks wait for rank 0's last validation and checkpoint
    return out_dir / "best.pt"


def selection_mask(val_samples: list, data_cfg: dict, select_on: str, num_points: int) -> np.ndarray:
    """(len(val),) bool: the validation faces whose NME chooses best.pt. ``train.select_on`` names a data
    entry by its file or folder name (e.g. ``helen_trainset``); empty selects every face."""
    if not select_on:
        return np.ones(len(val_samples), dtype=bool)
    names, owner = val_sources(val_samples, data_cfg, num_points)
    if select_on not in names:
        raise ValueError(f"train.select_on {select_on!r} names no data entry (valid: {', '.join(names)})")
    mask = np.isin(owner, [i for i, name in enumerate(names) if name == select_on])
    if not mask.any():
        raise ValueError(f"train.select_on {select_on!r}: none of the validation faces come from that entry")
    return mask


def _with_metrics(info: ModelInfo, metrics: dict) -> ModelInfo:
    return replace(info, metrics={**info.metrics, **metrics})
