"""Backward passes through composite nets: finite differences in float64, the public API on Net
(ONNX Runtime, float32), seeds, batches, every layer's diff, and errors."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from app.errors import DeepVisError
from app.net import Net
from app.net.autodiff import MODES, backward
from app.net.autodiff.graph import GraphPlan
from test_autodiff_graphs import COMPOSITES, GraphBuilder
from test_autodiff_support import DoubleGraph, assert_matches_finite_differences, dtypes_of

PLAIN_INPUT = dict(mean=0.0, input_scale=1.0, raw_scale=255.0, channel_swap=[2, 1, 0])
MIDDLE = {"caffenet_mini": "relu2", "residual": "a_relu", "inception": "mixed", "depthwise_separable": "dw2_relu6",
          "upsampling": "merge_relu"}


def input_shape(model) -> tuple:
    return tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:])


def random_batch(model, count: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count,) + input_shape(model)).astype(np.float32)


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """name -> (float32 Net run by ONNX Runtime, float64 oracle graph)."""
    folder = tmp_path_factory.mktemp("autodiff_nets")
    built = {}
    for name, make in COMPOSITES.items():
        model = make()
        onnx.save(model, str(folder / f"{name}.onnx"))
        built[name] = (Net.load(folder / f"{name}.onnx", provider="cpu", input=PLAIN_INPUT), DoubleGraph(model))
    return built


@pytest.mark.parametrize("name", list(COMPOSITES))
@pytest.mark.parametrize("where", ["output", "middle"])
def test_composite_gradient_matches_finite_differences(nets, name, where):
    net, graph = nets[name]
    feeds = {"data": random_batch(net.model).astype(np.float64)}
    layer = net.model.graph.output[0].name if where == "output" else MIDDLE[name]
    seed = np.random.default_rng(1).standard_normal(graph.run(feeds)[layer].shape)
    assert_matches_finite_differences(graph, feeds, {layer: seed}, count=30)


@pytest.mark.parametrize("layer, channels", [("conv2", [3]), ("conv2", [1, 9]), ("conv3", [0, 7])])
def test_seeds_on_few_channels_of_a_conv(nets, layer, channels):
    """Only those channels' weights enter the product (grouped conv2: one or both groups)."""
    net, graph = nets["caffenet_mini"]
    feeds = {"data": random_batch(net.model, seed=5).astype(np.float64)}
    seed = np.zeros(graph.run(feeds)[layer].shape)
    seed[:, channels] = np.random.default_rng(6).standard_normal(seed[:, channels].shape)
    assert_matches_finite_differences(graph, feeds, {layer: seed}, count=30)


@pytest.mark.parametrize("name", list(COMPOSITES))
@pytest.mark.parametrize("mode", MODES)
def test_float32_net_agrees_with_float64(nets, name, mode):
    net, graph = nets[name]
    batch = random_batch(net.model, seed=2)
    run = net.forward(batch)
    ours = run.backward(MIDDLE[name], 1, mode=mode).input
    assert ours.dtype == np.float32 and ours.shape == batch.shape
    exact = backward(graph.as_run(batch.astype(np.float64)), MIDDLE[name], 1, mode=mode).input
    assert np.abs(exact).max() > 0
    np.testing.assert_allclose(ours, exact, rtol=1e-3, atol=1e-4 * np.abs(exact).max())


def test_every_layer_diff_on_the_path(nets):
    net, _ = nets["residual"]
    run = net.forward(random_batch(net.model))
    result = run.backward("b_relu", 3, layer_diffs=True)
    image_diff, diffs = result.input, result.layers
    assert diffs["data"] is image_diff
    seed = diffs["b_relu"]
    assert np.count_nonzero(seed[:, [0, 1, 2, 4]]) == 0 and np.array_equal(seed[:, 3], run.tensors["b_relu"][:, 3])
    assert "fc" not in diffs  # above the seed: not on the path
    assert {"a_relu", "stem_relu", "b_sum", "stem"} <= set(diffs)
    again = run.backward("a_relu", 0, seed=diffs["a_relu"]).input  # the chain rule, restarted half way
    np.testing.assert_allclose(again, image_diff, rtol=1e-5, atol=1e-6 * np.abs(image_diff).max())


def test_seeds(nets):
    net, _ = nets["caffenet_mini"]
    batch = random_batch(net.model, count=3)
    run = net.forward(batch)
    diffs = run.backward("conv2", 5, seed="onehot", layer_diffs=True).layers
    seed = diffs["conv2"]
    for image in range(3):
        y, x = np.unravel_index(run.tensors["conv2"][image, 5].argmax(), seed.shape[2:])
        expected = np.zeros(seed.shape[1:], np.float32)
        expected[5, y, x] = 1
        np.testing.assert_array_equal(seed[image], expected)
    diffs = run.backward("conv2", 5, seed="onehot", at=(2, 4), layer_diffs=True).layers
    assert diffs["conv2"][:, 5, 2, 4].tolist() == [1, 1, 1] and diffs["conv2"].sum() == 3
    diffs = run.backward("fc6", 7, seed="onehot", layer_diffs=True).layers
    assert diffs["fc6"].tolist() == [[0] * 7 + [1] + [0] * 2] * 3
    per_image = np.ones(run.tensors["fc6"].shape[1:], np.float32)
    np.testing.assert_array_equal(run.backward("fc6", 0, seed=per_image).input,
                                  run.backward("fc6", 0, seed=np.ones_like(run.tensors["fc6"])).input)
    seed = np.ones_like(batch)
    at_input = run.backward("data", 0, seed=seed).input  # the input itself: the seed comes back, as a copy
    at_input += 1
    assert (seed == 1).all() and (at_input == 2).all()


def test_each_image_of_a_batch_as_if_alone(nets):
    net, _ = nets["inception"]
    batch = random_batch(net.model, count=3, seed=4)
    run = net.forward(batch)
    together = run.backward("mixed", 2, mode="guided", seed="onehot").input
    for image in range(3):
        run = net.forward(batch[image:image + 1])
        alone = run.backward("mixed", 2, mode="guided", seed="onehot").input
        np.testing.assert_allclose(together[image:image + 1], alone, rtol=1e-6, atol=1e-7)


def test_shape_arithmetic_is_not_visited(nets):
    net, _ = nets["depthwise_separable"]
    run = net.forward(random_batch(net.model))
    plan = GraphPlan(net.model, dtypes_of({**net.initializers, **run.tensors}), "depthwise_separable.onnx")
    steps = plan.path("fc", frozenset(["data"]))
    assert {step.node.op_type for step in steps} == {"Gemm", "Reshape", "Conv", "Clip", "BatchNormalization"}
    reshape = next(step for step in steps if step.node.op_type == "Reshape")
    assert reshape.wants == (True, False)


def test_bad_requests_name_what_is_wrong(nets):
    net, _ = nets["caffenet_mini"]
    run = net.forward(random_batch(net.model))
    with pytest.raises(DeepVisError, match="unknown backprop mode 'smooth'"):
        run.backward("conv2", 0, mode="smooth")
    with pytest.raises(DeepVisError, match="unit 12 out of range: the layer has 12 units"):
        run.backward("conv2", 12)
    with pytest.raises(DeepVisError, match=r"seed array has shape \(3, 3\)"):
        run.backward("conv2", 0, seed=np.ones((3, 3)))
    with pytest.raises(DeepVisError, match="at=.* applies to seed='onehot' only"):
        run.backward("conv2", 0, at=(1, 1))
    with pytest.raises(DeepVisError, match=r"position at=\(9, 0\) is outside"):
        run.backward("conv2", 0, seed="onehot", at=(9, 0))
    with pytest.raises(DeepVisError, match="no layer named 'nope'"):
        run.backward("nope", 0)
    with pytest.raises(DeepVisError, match="unknown backprop option.*lrn_passtrough"):
        run.backward("conv2", 0, lrn_passtrough=True)


def test_an_op_without_rule_stops_only_passes_that_cross_it(tmp_path):
    b = GraphBuilder((1, 6, 6))
    x = b.node("Relu", [b.conv("data", "conv", 1, 2, 3)], "relu")
    b.node("Sin", [x], "wave")
    path = tmp_path / "sin.onnx"
    onnx.save(b.model("wave"), str(path))
    net = Net.load(path, provider="cpu", input=PLAIN_INPUT)
    run = net.forward(random_batch(net.model))
    with pytest.raises(DeepVisError, match=r"sin.onnx: node 'wave_node': no backward rule for op Sin"):
        run.backward("wave", 0)
    assert np.abs(run.backward("relu", 0).input).max() > 0
    assert net.forward(random_batch(net.model))["wave"].shape == (2, 2, 4, 4)


@pytest.mark.parametrize("model", ["light_bvlc_alexnet", "light_inception_v1", "light_shufflenet",
                                   "light_densenet121", "light_squeezenet"])
def test_onnx_zoo_graphs_backprop_to_the_image(testdata, model):
    """Weights made by ConstantOfShape nodes, Sum, Transpose shuffles, LRN...: every op has a rule."""
    net = Net.load(testdata / "onnx_light_zoo" / f"{model}.onnx", provider="cpu")
    image = np.random.default_rng(0).standard_normal((1,) + net.input_shape).astype(np.float32)
    run = net.forward(image)
    last_conv = [layer for layer in net.layers if layer.op_type == "Conv"][-1]
    for mode in MODES:
        diff = run.backward(last_conv.name, 0, mode=mode, seed="onehot").input
        assert diff.shape == image.shape and np.isfinite(diff).all() and np.abs(diff).max() > 0


def test_a_graph_input_listed_twice_as_data_is_a_sum(tmp_path):
    """x * x and x + x: a tensor read twice by one node gets both diffs."""
    nodes = [helper.make_node("Mul", ["data", "data"], ["square"]),
             helper.make_node("Add", ["square", "square"], ["twice"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 1, 2, 2])],
                              [helper.make_tensor_value_info("twice", TensorProto.FLOAT, None)])
    path = tmp_path / "square.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    net = Net.load(path, provider="cpu", input=PLAIN_INPUT)
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    run = net.forward(x)
    np.testing.assert_array_equal(run.backward("twice", 0, seed=np.ones_like(x)).input, 4 * x)


def test_the_depthwise_helper_sessions_come_from_the_options_the_run_hands_the_walk(nets, monkeypatch):
    from app.net import sessions
    from app.net.autodiff import ort_conv
    from app.net.run import Run

    made = []
    def counted():
        made.append(sessions.session_options(threads=1))
        return made[-1]
    net, _ = nets["depthwise_separable"]
    monkeypatch.setattr(ort_conv, "_SESSIONS", type(ort_conv._SESSIONS)())   # no session kept from other tests
    monkeypatch.setattr(Run, "helper_session_options", staticmethod(counted))
    run = net.forward(random_batch(net.model))
    first = run.backward("fc", 0, mode="guided", engine="numpy").input
    assert made and all(options.intra_op_num_threads == 1 for options in made)
    count = len(made)
    np.testing.assert_array_equal(run.backward("fc", 0, mode="guided", engine="numpy").input, first)
    assert len(made) == count   # kept: the second pass makes no new session
