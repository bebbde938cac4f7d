"""The landmark model's architecture description, without torch: ONNX inference reads it from a model's
metadata, and only building the network (``sdfl_core.model``) needs torch and timm."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

HEADS = ("graph", "fc")
EDGE_MODES = ("dynamic", "static", "binary")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "mobilenetv2_100"
    num_points: int = 68
    input_size: int = 128
    head: str = "graph"
    edge_mode: str = "dynamic"
    expansion: int = 4
    hidden: int = 128
    num_blocks: int = 4
    fc_hidden: int = 256
    feature_level: int = -1
    """Which of the backbone's feature maps the head reads (timm ``out_indices``): -1 the last
    (stride 32 for most backbones, a 4 x 4 map at 128 px), -2 the one before (stride 16, 8 x 8)."""
    node_attention: bool = False
    """Beyond the paper: gate each node's n x H x W features with its own spatial softmax, so a node reads
    the part of the map around its landmark and an occluder elsewhere reaches it less (graph head only)."""
    attention_prior: bool = False
    """Beyond the paper, with ``node_attention``: a learnt logit map per node (N x H x W, one value per node and
    cell) added to its attention logits, so a node can learn where on the crop its landmark lies and a part of
    some other face elsewhere in the crop (an occluder, a neighbour) draws its attention less. It starts at zero,
    so the model starts as the one without it."""
    fc_norm: bool = False
    """FC head only: BatchNorm between its hidden layer and the ReLU. Without it, the large features of a
    pretrained backbone drove almost every hidden unit dead within a few epochs (the head collapsed to one
    shape)."""
    visibility: bool = False
    """A per-landmark visibility output: N logits, from each node's features (graph head) or from the
    shared feature map (FC head), trained against the augmentation's occluder cover."""
    refine: bool = False
    """A second stage: the backbone's next finer feature map (one level below ``feature_level``) is sampled
    in a patch around each first-stage point, and per-point offsets are regressed from those patches plus
    the first stage's features, through the same graph (graph head) or an FC layer (FC head)."""
    refine_patch: int = 5
    """Side of the square grid of samples around each point, half a fine-map cell apart."""
    refine_blocks: int = 2
    """Graph head only: residual graph blocks in the refinement stage, between its input and output graph convs
    (each block is two graph convs and about 2 % of the shipped model's run time)."""
    head_side: int = 0
    """The side, in cells, of the map the head reads: 0 reads the backbone's map as it comes (8 x 8 at 128 px
    and stride 16); any other side resamples it bilinearly to that side first. A head sized for one side then
    runs at another input size (a 112 px model whose 7 x 7 map is read as 8 x 8 can start from the 128 px
    model's weights)."""
    global_context: bool = False
    """Graph head only, beyond the paper: a code of the whole feature map (one FC layer over the flattened
    map, as the FC twin's hidden layer) is projected to each node and added to its first graph-conv
    features, so a node whose own part of the map is covered still carries the face's overall shape. The
    projection starts at zero, so the model starts as the one without it."""
    context_width: int = 0
    """Width of that code (``global_context``): 0 takes ``fc_hidden``, the width the first context models were
    built with. The code's two layers (map to code, code to every node) are most of the context's weights, so
    its width sets most of what the context costs at run time."""
    refine_context: int = 0
    """Graph head only, with ``refine``, beyond the paper: the width of a code of every point's fine patch (one FC
    layer over all the patches, as the FC twin's refinement reads them), projected to each node and added to the
    refinement's first graph-conv features, so a node's offset can follow the whole face's fine evidence and not
    only its graph neighbours'. 0: none. The projection starts at zero, so the model starts as the one without it."""
    refine_self: bool = False
    """Graph head only, with ``refine``, beyond the paper: each graph conv of the refinement stage also reads the
    node's own features through weights of their own (``GraphConv``'s self path, as in GraphSAGE), added to the
    edge-weighted mean over its neighbourhood, so a node's offset can rest on its own patch more than on its
    neighbours' (which may be covered). The self weights start at zero, so the model starts as the one without them."""
    visibility_gate: bool = False
    """Graph head only, with ``visibility``, beyond the paper: the visibility logits come from each node's own
    map-to-node features (before the graph) and gate those features before the first graph conv, so a node
    judged covered brings less of its own (occluder) features to itself and its neighbours, and its hidden state
    comes more from its neighbours and the whole-map code. The gate starts open (1 for every node), so the model
    starts as the one without it. The visibility loss (``loss.visibility``) and, unless ``gate_from_cover_only``,
    the landmark loss train it."""
    gate_from_cover_only: bool = False
    """With ``visibility_gate``: the gate's layers learn from the visibility loss alone (the landmark loss does not
    reach them), so the gate is the model's estimate of the cover and nothing else."""
    skip_blocks: tuple[str, ...] = ()
    """Backbone blocks to leave out, as "stage.block" (timm's ``blocks[stage][block]``), e.g. ("4.1", "4.2"):
    each must be a residual block (same channels in and out, stride 1), so the map it fed is unchanged in
    shape and leaving it out is the identity. A shallower, faster network that starts from a deeper one's
    weights and is then fine-tuned (the README has what leaving out blocks cost before and after)."""

    def __post_init__(self) -> None:
        skipped = (self.skip_blocks,) if isinstance(self.skip_blocks, str) else self.skip_blocks
        object.__setattr__(self, "skip_blocks", tuple(str(b) for b in skipped))
        for name in self.skip_blocks:
            if not re.fullmatch(r"\d+\.\d+", name):
                raise ValueError(f'skip_blocks entries must read "stage.block" (e.g. "4.1"), got {name!r}')
        if len(set(self.skip_blocks)) != len(self.skip_blocks):
            raise ValueError(f"skip_blocks names a block twice: {list(self.skip_blocks)}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.edge_mode not in EDGE_MODES:
            raise ValueError(f"edge_mode must be one of {EDGE_MODES}, got {self.edge_mode!r}")
        if self.num_points < 2:
            raise ValueError(f"num_points must be at least 2, got {self.num_points}")
        if self.input_size < 32:
            raise ValueError(f"input_size must be at least 32 px, got {self.input_size}")
        if self.fc_norm and self.head != "fc":
            raise ValueError("fc_norm needs the FC head")
        if self.global_context and self.head != "graph":
            raise ValueError("global_context needs the graph head (the FC head already reads the whole map)")
        if self.context_width < 0:
            raise ValueError(f"context_width must be 0 (fc_hidden) or positive, got {self.context_width}")
        if self.context_width and not self.global_context:
            raise ValueError("context_width sets the width of model.global_context's code: it needs global_context")
        if self.refine_context < 0:
            raise ValueError(f"refine_context must be 0 (none) or positive, got {self.refine_context}")
        if self.refine_context and (self.head != "graph" or not self.refine):
            raise ValueError("refine_context needs the graph head and model.refine (it codes the refinement's patches)")
        if self.refine_self and (self.head != "graph" or not self.refine):
            raise ValueError("refine_self needs the graph head and model.refine (it is a path in the refinement's graph convs)")
        if self.visibility_gate and (self.head != "graph" or not self.visibility):
            raise ValueError("visibility_gate needs the graph head and model.visibility (the gate is the visibility output)")
        if self.gate_from_cover_only and not self.visibility_gate:
            raise ValueError("gate_from_cover_only needs model.visibility_gate")
        if self.node_attention and self.head != "graph":
            raise ValueError("node_attention needs the graph head (the FC head has no nodes)")
        if self.attention_prior and not self.node_attention:
            raise ValueError("attention_prior needs node_attention (it is added to the nodes' attention logits)")
        if self.refine and self.feature_level <= -5:
            raise ValueError("refine reads the feature map below feature_level; feature_level must be above -5")
        if self.refine_patch < 1:
            raise ValueError(f"refine_patch must be at least 1, got {self.refine_patch}")
        if self.refine_blocks < 0:
            raise ValueError(f"refine_blocks must be 0 or more, got {self.refine_blocks}")
        if self.head_side < 0:
            raise ValueError(f"head_side must be 0 (the map's own side) or positive, got {self.head_side}")
        if not -5 <= self.feature_level <= -1:
            raise ValueError(f"feature_level must be -1 (the last feature map) to -5, got {self.feature_level}")

    @property
    def context_code_width(self) -> int:
        """The width the global context's code is built with: ``context_width``, or ``fc_hidden`` when that is 0."""
        return self.context_width or self.fc_hidden

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, strict: bool = True) -> ModelConfig:
        """``strict=False`` drops keys this version does not know (a model exported by a newer sdfl still
        runs on ONNX Runtime: its graph is in the file, the config only describes it)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown and strict:
            raise TypeError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in known})
