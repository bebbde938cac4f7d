import copy

import numpy as np
import onnx
import pytest
import torch
from small_models import (
    LOCAL,
    SIZE,
)
from small_models import build as _build

from sdfl_core.checkpoint import CheckpointError
from sdfl_core.onnx_export import (
    META_KEY,
    ShiftedDepthwise,
    compare,
    export_onnx,
    info_from_json,
    info_to_json,
)
from sdfl_core.runners import OnnxRunner, OpenVinoRunner

pytestmark = pytest.mark.slow  # every test here trains or exports a model


def build(head: str):
    if head == "graph-local":
        return _build("graph", LOCAL, name=head, train_config={"not": "exported"})
    if head == "tf-refine":  # the shipped kind: a tf_ backbone (TF "same" padding) and the refinement stage
        return _build("graph", {**LOCAL, "refine": True, "backbone": "tf_efficientnet_lite0"}, name=head,
                      train_config={"not": "exported"})
    if head == "tf-side":  # the 112 px kind: the map resampled to the side the head was sized for (model.head_side)
        return _build("graph", {**LOCAL, "refine": True, "visibility": True, "backbone": "tf_efficientnet_lite0",
                                "head_side": SIZE // 16 + 1}, name=head, train_config={"not": "exported"})
    if head == "graph-ctx":  # each node also reads a code of the whole map (model.global_context) and, in the
        # refinement, of every point's patch (model.refine_context) and its own features (model.refine_self); its
        # attention has a learnt prior (model.attention_prior)
        return _build("graph", {**LOCAL, "refine": True, "visibility": True, "global_context": True, "refine_context": 8,
                                "refine_self": True, "attention_prior": True},
                      name=head, train_config={"not": "exported"})
    if head.endswith("-refine"):  # the second stage samples the fine map
        return _build(head[: -len("-refine")], {**LOCAL, "refine": True, "node_attention": head.startswith("graph")},
                      name=head, train_config={"not": "exported"})
    if head.endswith("-vis"):
        return _build(head[: -len("-vis")], {"visibility": True}, name=head, train_config={"not": "exported"})
    return _build(head, name=head, train_config={"not": "exported"})


@pytest.fixture(scope="module", params=["graph", "fc", "graph-local", "graph-vis", "fc-vis",
                                                    "graph-refine", "fc-refine", "tf-refine", "tf-side", "graph-ctx"])
def exported(request, tmp_path_factory):
    model, info = build(request.param)
    model.train()  # export must work on (and leave alone) a model that is still training
    path = export_onnx(model, info, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    assert model.training
    assert not list(path.parent.glob("*.tmp"))
    return model.eval(), info, path


def images(b: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(b, 3, SIZE, SIZE)).astype(np.float32)


def cpu_runner(engine: str, path):
    if engine == "openvino":
        pytest.importorskip("openvino")
        return OpenVinoRunner(path, precision="f32")  # float32, to compare at ONNX Runtime's tolerance
    return OnnxRunner(path)


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("batch", [1, 3])
def test_cpu_engines_match_torch(exported, batch, engine):
    """Every kind of head the exporter writes runs on both CPU engines with torch's outputs."""
    model, info, path = exported
    x = images(batch)
    with torch.no_grad():
        if info.config.visibility:
            coords, weights, logits = model.forward_with_visibility(torch.from_numpy(x))
            ref = [coords.numpy(), weights.numpy(), torch.sigmoid(logits).numpy()]
        else:
            ref = [t.numpy() for t in model(torch.from_numpy(x))] + [np.zeros((batch, 0), np.float32)]
    got = cpu_runner(engine, path).run_tensor(x)
    assert len(got) == 3
    for a, b in zip(ref, got):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
    assert got[1].shape == (batch, 68, 68 if info.config.head == "graph" else 0)


def test_visibility_is_a_third_output_only_when_the_model_has_it(exported):
    _, info, path = exported
    names = [o.name for o in onnx.load(str(path)).graph.output]
    if info.config.visibility:
        assert names == ["landmarks", "edge_weights", "visibility"]
        vis = OnnxRunner(path).run_tensor(images(2, seed=3))[2]
        assert vis.shape == (2, 68) and (vis >= 0).all() and (vis <= 1).all() and vis.std() > 0
    else:
        assert names == ["landmarks", "edge_weights"]  # exactly as before the visibility output existed
    assert OnnxRunner(path).has_visibility == info.config.visibility


def test_onnxruntime_folds_the_padding_into_the_convolutions(exported, tmp_path):
    """No Pad (timm's TF-"same" padding, fixed at export) or GridSample (the refinement's sampling, done as
    gathers) is left in the graph ONNX Runtime runs: both were slow paths on the CPU."""
    import onnxruntime as ort

    _, info, path = exported
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}
    assert "GridSample" not in ops
    assert "Conv" in ops or "FusedConv" in ops
    if info.config.backbone.startswith("tf_"):
        exported_ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert "Pad" in exported_ops and "Pad" not in ops


def test_compare_helper(exported):
    model, _, path = exported
    assert compare(model, path, batch=2) < 1e-4


def test_info_round_trips_through_onnx(exported):
    _, info, path = exported
    got = OnnxRunner(path).info
    assert got.config == info.config
    np.testing.assert_array_equal(got.mask, info.mask)
    np.testing.assert_allclose(got.mean_shape, info.mean_shape)
    assert (got.schema, got.k, got.name, got.crop_scale) == (info.schema, info.k, info.name, info.crop_scale)
    assert got.train_config == {}  # the ONNX file only carries what inference needs
    keys = {p.key for p in onnx.load(str(path)).metadata_props}
    assert META_KEY in keys


def test_info_json_round_trip():
    _, info = build("graph")
    back = info_from_json(info_to_json(info))
    assert back.config == info.config and back.schema.name == "300w"
    np.testing.assert_array_equal(back.mask, info.mask)
    with pytest.raises(CheckpointError, match="malformed sdfl metadata"):
        info_from_json("{not json")


@pytest.mark.parametrize("groups, per, kernel", [(68, 4, 3), (5, 2, 3), (3, 3, 1)])
def test_shifted_depthwise_equals_the_grouped_conv_and_its_batchnorm(groups, per, kernel):
    torch.manual_seed(0)
    channels = groups * per
    conv = torch.nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=groups, bias=False)
    bn = torch.nn.BatchNorm2d(channels)
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    reference = torch.nn.Sequential(conv, bn).eval()
    x = torch.randn(2, channels, 6, 7)
    with torch.no_grad():
        got = ShiftedDepthwise(conv, bn)(x)
        want = reference(x)
    assert len(ShiftedDepthwise(conv, bn).convs) == per
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_shifted_depthwise_refuses_other_convolutions():
    bn = torch.nn.BatchNorm2d(8)
    with pytest.raises(ValueError, match="grouped convolution"):
        ShiftedDepthwise(torch.nn.Conv2d(8, 8, 3, stride=2, groups=4), bn)
    with pytest.raises(ValueError, match="grouped convolution"):
        ShiftedDepthwise(torch.nn.Conv2d(4, 8, 3, groups=4), bn)


def test_no_grouped_convolution_is_left_in_the_export(exported):
    """Every convolution of the node embedding in the exported graph is plain (one group) or depthwise (one
    input channel per group): its grouped 3x3 conv was rewritten (ShiftedDepthwise)."""
    _, info, path = exported
    proto = onnx.load(str(path))
    shapes = {init.name: tuple(init.dims) for init in proto.graph.initializer}
    embedding = [node for node in proto.graph.node if node.op_type == "Conv" and node.name.startswith("/embed/")]
    assert len(embedding) == (5 if info.config.head == "graph" else 0)  # the 1x1 conv and 4 depthwise ones
    for node in embedding:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        assert group == 1 or shapes[node.input[1]][1] == 1, node.name


def test_a_batch_of_one_runs_in_its_own_session_with_the_same_result(exported):
    _, _, path = exported
    runner = OnnxRunner(path)
    assert runner.session_for(3) is runner.session
    single = runner.session_for(1)
    assert single is not runner.session and runner.session_for(1) is single
    x = images(1, seed=5)
    got = runner.run_tensor(x)
    general = runner.session.run(None, {"image": x})
    for a, b in zip(got, general):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    with pytest.raises(InvalidArgument, match="Expected: 1"):  # the batch-of-one session takes nothing else
        single.run(None, {"image": images(2)})


def test_float16_numbers_are_stored_as_float16_and_compute_the_same():
    """A float32 weight whose values are all float16 numbers is stored in half the bytes, behind a Cast; the
    network's outputs do not move by a bit. Weights with other values, and small ones, stay as they were."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from sdfl_core.onnx_export import HALF_MIN_ELEMENTS, store_exact_halves

    rng = np.random.default_rng(0)
    side = 64  # 4096 elements each, above HALF_MIN_ELEMENTS
    assert side * side >= HALF_MIN_ELEMENTS
    exact = rng.normal(size=(side, side)).astype(np.float16).astype(np.float32)
    inexact = rng.normal(size=(side, side)).astype(np.float32)
    small = rng.normal(size=(side,)).astype(np.float16).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "exact"], ["a"]), helper.make_node("MatMul", ["a", "inexact"], ["b"]),
         helper.make_node("Add", ["b", "small"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, side])],
        [numpy_helper.from_array(a, name) for a, name in ((exact, "exact"), (inexact, "inexact"), (small, "small"))])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = {"x": rng.normal(size=(2, side)).astype(np.float32)}

    def run(model):
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]

    before = run(proto)
    assert store_exact_halves(proto) == exact.nbytes // 2
    onnx.checker.check_model(proto)
    types = {t.name: t.data_type for t in proto.graph.initializer}
    assert types == {"exact.f16": TensorProto.FLOAT16, "inexact": TensorProto.FLOAT, "small": TensorProto.FLOAT}
    assert proto.graph.node[0].op_type == "Cast" and list(proto.graph.node[0].output) == ["exact"]
    np.testing.assert_array_equal(run(proto), before)


def test_a_float16_checkpoint_exports_to_a_smaller_file(tmp_path):
    """A model whose weights were rounded to float16 (as training.ship stores them) exports its weights that no
    BatchNorm was folded into as float16: the file is smaller than the same model's float32 export (for this
    small model, a little: most of its weights take a BatchNorm), and runs the same."""
    model, info = build("graph")
    full = export_onnx(model, info, tmp_path / "full.onnx")
    rounded = copy.deepcopy(model).half().float()
    half = export_onnx(rounded, info, tmp_path / "half.onnx")
    assert half.stat().st_size < full.stat().st_size
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in onnx.load(str(half)).graph.initializer)
    x = images(2)
    with torch.no_grad():
        ref = rounded.eval()(torch.from_numpy(x))
    got = OnnxRunner(half).run_tensor(x)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a.numpy(), atol=1e-4, rtol=0)
