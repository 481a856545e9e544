"""The graph backward (one ONNX Runtime session per layer and mode) against the NumPy walk: every
mode, every layer kind, on the suite's models; seeds, batches, layer diffs; the ops it cannot
express fall back to NumPy and say which; the sessions kept per net are bounded."""
import numpy as np
import onnx
import pytest

from app.errors import DeepVisError
from app.net import Net
from app.net import net as net_module
from app.net.autodiff import MODES
from app.net.autodiff.graph_backward import backward_model
from test_autodiff_graphs import COMPOSITES, GraphBuilder

TOLERANCE = 1e-4   # max |graph - numpy| over max |numpy|
CAFFE = {"caffenet": "caffenet_deploy/deploy.prototxt", "googlenet": "googlenet_deploy/deploy.prototxt",
         "resnet50": "resnet50_deploy/ResNet-50-deploy.prototxt",
         "mobilenet_v1": "mobilenet_v1_deploy/mobilenet_deploy.prototxt",
         "mobilenet_v2": "mobilenet_v2_deploy/mobilenet_v2_deploy.prototxt"}
ZOO = ["light_bvlc_alexnet", "light_shufflenet", "light_squeezenet"]   # light_inception_v1 overflows to inf
PLAIN_INPUT = dict(mean=0.0, input_scale=1.0, raw_scale=255.0, channel_swap=[2, 1, 0])


def load(name: str, testdata, folder) -> Net:
    """The default model, a random-weight Caffe conversion, an ONNX light-zoo net (opset 9, raised to
    16 for the graph) or a composite test graph."""
    if name == "default":
        return Net.load(provider="cpu")
    if name in CAFFE:
        return Net.load(str(testdata / CAFFE[name]), provider="cpu", random_weights=0)
    if name in ZOO:
        return Net.load(testdata / "onnx_light_zoo" / f"{name}.onnx", provider="cpu")
    onnx.save(COMPOSITES[name](), str(folder / f"{name}.onnx"))
    return Net.load(folder / f"{name}.onnx", provider="cpu", input=PLAIN_INPUT)


@pytest.fixture(scope="session")
def graph_nets(testdata, tmp_path_factory):
    """The small nets several tests share (each big one is loaded by its own test: the sessions of
    its backward graphs hold a copy of its weights)."""
    folder = tmp_path_factory.mktemp("graph_nets")
    return {name: load(name, testdata, folder) for name in ("default", "caffenet_mini", "upsampling")}


def batch_for(net: Net, count: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return net.preprocess([rng.integers(0, 256, net.input_shape[1:] + (3,), dtype=np.uint8) for _ in range(count)])


def kinds(net: Net) -> list:
    """The last layer of each op kind (its path crosses the most nodes), in graph order; the class
    probabilities aside (see test_the_class_probabilities)."""
    last = {}
    for layer in net.layers:
        if layer.op_type != "Softmax":
            last[layer.op_type] = layer.name
    order = {layer.name: i for i, layer in enumerate(net.layers)}
    return sorted(last.values(), key=order.get)


def deepest(net: Net) -> str:
    """The last layer before the class probabilities (a saturated softmax of random weights passes
    next to nothing)."""
    return next(layer.name for layer in reversed(net.layers) if layer.op_type != "Softmax")


def relative_error(graph: np.ndarray, numpy: np.ndarray) -> float:
    return float(np.abs(graph - numpy).max() / max(np.abs(numpy).max(), 1e-30))


def strongest_unit(run, layer: str) -> int:
    value = run[layer][0]
    return int(value.reshape(value.shape[0], -1).max(axis=1).argmax()) if value.ndim > 0 else 0


def assert_same(run, layer: str, unit: int, nonzero: bool = True, **options) -> None:
    graph = run.backward(layer, unit, engine="graph", **options)
    numpy = run.backward(layer, unit, engine="numpy", **options)
    assert graph.fallback == "", graph.fallback
    assert not nonzero or np.abs(numpy.input).max() > 0, f"{layer}: a zero diff compares nothing"
    assert relative_error(graph.input, numpy.input) < TOLERANCE, (layer, options)


MODELS = ["default", *CAFFE, *ZOO, "caffenet_mini", "residual", "inception", "depthwise_separable"]


@pytest.mark.parametrize("name", MODELS)
def test_every_mode_and_layer_kind_matches_numpy(testdata, tmp_path, name):
    """Every mode from the deepest layer (its path crosses every kind of node below it) and guided
    backprop from the last layer of each kind (some of which, at random weights or the light zoo's
    constant ones, pass nothing); the seed goes through the layer's rectifier as in the app."""
    net = load(name, testdata, tmp_path)
    run = net.forward(batch_for(net))
    top = deepest(net)
    for mode in MODES:
        assert_same(run, top, strongest_unit(run, top), name not in ZOO, mode=mode, seed_through_rectifier=True)
    assert_same(run, top, strongest_unit(run, top), False, mode="grad", seed="onehot")
    for layer in kinds(net)[:-1]:
        assert_same(run, layer, strongest_unit(run, layer), False, mode="guided", seed_through_rectifier=True)


def test_the_class_probabilities(graph_nets):
    """Softmax, from the default model's class output (its trained weights do not saturate it)."""
    net = graph_nets["default"]
    run = net.forward(batch_for(net))
    layer = net.prob_layer()
    assert_same(run, layer, strongest_unit(run, layer), mode="grad", seed="onehot")


def test_lrn_passthrough_and_deconv_on_caffenet(testdata, tmp_path):
    net = load("caffenet", testdata, tmp_path)
    run = net.forward(batch_for(net))
    assert_same(run, "conv5", 3, mode="deconv", lrn_passthrough=True)


def test_seeds_batches_and_layer_diffs(graph_nets):
    net = graph_nets["default"]
    run = net.forward(batch_for(net, count=2, seed=3))
    layer = "blocks.4.2.add"
    assert_same(run, layer, 5, mode="guided", seed="onehot", at=(3, 4))
    assert_same(run, layer, 5, mode="grad", seed=np.random.default_rng(4).standard_normal(run[layer].shape[1:]))
    graph = run.backward(layer, 5, mode="desalinet", layer_diffs=True, engine="graph")
    numpy = run.backward(layer, 5, mode="desalinet", layer_diffs=True, engine="numpy")
    assert graph.fallback == "" and set(graph.layers) == set(numpy.layers) and len(graph.layers) > 10
    for name, diff in numpy.layers.items():
        if np.abs(diff).max() > 0:
            assert relative_error(graph.layers[name], diff) < TOLERANCE, name
    alone = net.forward(run.input[1:]).backward(layer, 5, mode="desalinet", engine="graph").input
    assert relative_error(graph.input[1:], alone) < TOLERANCE


@pytest.mark.parametrize("name, layer, unit", [("default", "blocks.1.1.dw.conv", 17),   # depthwise, stride 1
                                               ("default", "blocks.2.0.dw.conv", 40),   # depthwise, stride 2
                                               ("caffenet_mini", "conv2", 9)])          # second of two groups
def test_a_seed_at_one_unit_of_a_conv_enters_its_filter_alone(graph_nets, name, layer, unit):
    net = graph_nets[name]
    run = net.forward(batch_for(net, count=2))
    for seed in ("activation", "onehot"):
        assert_same(run, layer, unit, mode="grad", seed=seed)


# (kernel, group, attributes, the op the input diff's convolution becomes): a stride-1 convolution
# becomes a Conv with its filters transposed and flipped; strides and pads past the kernel's reach
# stay a ConvTranspose
GEOMETRIES = [((3, 3), 1, dict(pads=[1, 1, 1, 1]), "Conv"),
              ((5, 3), 2, dict(pads=[2, 0, 1, 1]), "Conv"),                       # asymmetric, two groups
              ((3, 3), 8, dict(pads=[2, 2, 2, 2], dilations=[2, 2]), "Conv"),     # depthwise, dilated
              ((3, 3), 8, dict(dilations=[2, 1]), "Conv"),                        # no pads, one axis dilated
              ((1, 1), 4, {}, "Conv"),
              ((4, 4), 1, dict(auto_pad="SAME_LOWER"), "Conv"),                   # even kernel
              ((3, 3), 2, dict(pads=[3, 0, 0, 1]), "ConvTranspose"),             # a pad beyond the kernel's reach
              ((3, 3), 1, dict(strides=[2, 2], auto_pad="SAME_UPPER"), "ConvTranspose"),
              ((3, 3), 8, dict(strides=[2, 1], pads=[1, 1, 1, 1]), "ConvTranspose")]


@pytest.mark.parametrize("kernel, group, attrs, op_type", GEOMETRIES)
def test_every_convolution_geometry_matches_numpy(tmp_path, kernel, group, attrs, op_type):
    """One convolution of each geometry between two rectified convolutions, on an odd-sized image:
    its input diff is the NumPy rule's in every mode, through the op it is meant to take."""
    graph = GraphBuilder((3, 13, 11), seed=len(tmp_path.name))
    x = graph.node("Relu", [graph.conv("data", "stem", 3, 8, 3, pads=[1, 1, 1, 1])], "stem_relu")
    w = graph.weight("probe_w", (8 if group == 8 else 12, 8 // group) + kernel)   # group 8: depthwise
    graph.node("Relu", [graph.node("Conv", [x, w], "probe", group=group, **attrs)], "out")
    onnx.save(graph.model("out"), str(tmp_path / "probe.onnx"))
    net = Net.load(tmp_path / "probe.onnx", provider="cpu", input=PLAIN_INPUT)
    run = net.forward(batch_for(net, count=2))
    for mode in MODES:
        assert_same(run, "out", strongest_unit(run, "out"), mode=mode)
    steps = run.plan.path("out", frozenset([run.input_name]))
    made = backward_model(run, steps, "out", "grad", False, frozenset()).model.graph.node
    assert [node.op_type for node in made if node.op_type in ("Conv", "ConvTranspose")][0] == op_type


def test_an_op_without_graph_rule_falls_back_to_numpy_and_says_which(graph_nets):
    """The encoder-decoder's Resize has no graph rule: the pass walks in NumPy, and says so."""
    net = graph_nets["upsampling"]
    run = net.forward(batch_for(net))
    layer = net.model.graph.output[0].name
    result = run.backward(layer, 0, mode="guided", engine="graph")
    assert "Resize" in result.fallback and "\n" not in result.fallback
    numpy = run.backward(layer, 0, mode="guided", engine="numpy")
    assert numpy.fallback == "" and np.array_equal(result.input, numpy.input)


def test_sessions_are_kept_per_layer_and_mode_and_bounded(graph_nets, monkeypatch):
    net = graph_nets["caffenet_mini"]
    monkeypatch.setattr(net_module, "GRAPH_SESSIONS", 3)
    net._graph_sessions.clear()
    run = net.forward(batch_for(net))
    for mode in MODES:
        run.backward("relu2", 0, mode=mode)
    assert len(net._graph_sessions) == 3
    kept = dict(net._graph_sessions)
    run.backward("relu2", 0, mode=MODES[-1])
    assert dict(net._graph_sessions) == kept   # reused, not made again


def test_the_net_chooses_the_engine_and_a_wrong_one_is_named(graph_nets, monkeypatch):
    net = graph_nets["caffenet_mini"]
    run = net.forward(batch_for(net))
    net._graph_sessions.clear()
    monkeypatch.setattr(net, "backward_engine", "numpy")
    run.backward("relu2", 0, mode="guided")
    assert not net._graph_sessions
    with pytest.raises(DeepVisError, match="unknown backward engine 'torch'"):
        run.backward("relu2", 0, engine="torch")
