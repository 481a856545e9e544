"""What each backprop mode does at rectifiers and max pooling, worked out by hand, and a ReLU whose
output is read twice."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.net import Net
from app.net.autodiff import MODES
from test_autodiff_graphs import COMPOSITES
from test_autodiff_support import make_model

PLAIN_INPUT = dict(mean=0.0, input_scale=1.0, raw_scale=255.0, channel_swap=[2, 1, 0])


def one_layer_net(tmp_path, nodes, initializers=(), channels=4, size=(1, 1)) -> Net:
    """data (N x channels x size) -> nodes -> "out"."""
    image = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", channels, *size])
    graph = helper.make_graph(nodes, "hand", [image],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers])
    path = tmp_path / "hand.onnx"
    onnx.save(make_model(graph), str(path))
    return Net.load(path, provider="cpu", input=PLAIN_INPUT)


def backprop(net, x, top, mode, **options) -> list:
    """The diff at the input of a per-channel vector x for the top diff ``top`` at "out"."""
    x = np.asarray(x, np.float32).reshape(1, -1, 1, 1)
    run = net.forward(x)
    top = np.asarray(top, np.float32).reshape(run["out"].shape)
    return run.backward("out", 0, mode=mode, seed=top, **options).input.ravel().tolist()


X = [-1.0, 2.0, 7.0, 3.0]
TOP = [5.0, 6.0, -7.0, -8.0]
RECTIFIER_CASES = {
    # op, initializers: expected per mode for x = X and top = TOP
    "relu": ([helper.make_node("Relu", ["data"], ["out"])], [],
             dict(grad=[0, 6, -7, -8], deconv=[5, 6, 0, 0], guided=[0, 6, 0, 0], desalinet=[0, 6, 0, 0])),
    # ReLU6: x = 7 is saturated (gradient 0) but its unit is on
    "relu6": ([helper.make_node("Clip", ["data", "low", "high"], ["out"])], [("low", 0.0), ("high", 6.0)],
              dict(grad=[0, 6, 0, -8], deconv=[5, 6, 0, 0], guided=[0, 6, 0, 0], desalinet=[0, 6, 0, 0])),
    "leaky relu": ([helper.make_node("LeakyRelu", ["data"], ["out"], alpha=0.1)], [],
                   dict(grad=[0.5, 6, -7, -8], deconv=[5, 6, 0, 0], guided=[0.5, 6, 0, 0], desalinet=[0, 6, 0, 0])),
    # a Clip not starting at 0 is no rectifier: every mode takes its gradient
    "clip -1..1": ([helper.make_node("Clip", ["data", "low", "high"], ["out"])], [("low", -1.5), ("high", 2.5)],
                   dict(grad=[5, 6, 0, 0], deconv=[5, 6, 0, 0], guided=[5, 6, 0, 0], desalinet=[5, 6, 0, 0])),
}


@pytest.mark.parametrize("case", list(RECTIFIER_CASES))
def test_rectifiers_by_hand(tmp_path, case):
    nodes, initializers, expected = RECTIFIER_CASES[case]
    net = one_layer_net(tmp_path, nodes, initializers)
    for mode in MODES:
        assert backprop(net, X, TOP, mode) == pytest.approx(expected[mode]), mode


@pytest.mark.parametrize("case", list(RECTIFIER_CASES))
def test_a_seed_through_the_rectifier_enters_its_input_unchanged(tmp_path, case):
    """As the original's pass from a Caffe blob skipped the in-place ReLU: the saturated ReLU6 unit
    (x = 7) passes its seed in every mode; a Clip that is no rectifier keeps its gradient."""
    nodes, initializers, expected = RECTIFIER_CASES[case]
    net = one_layer_net(tmp_path, nodes, initializers)
    for mode in MODES:
        through = backprop(net, X, TOP, mode, seed_through_rectifier=True)
        assert through == pytest.approx(expected[mode] if case == "clip -1..1" else TOP), mode


def test_a_seed_through_relu6_equals_the_seed_at_the_conv_below(tmp_path):
    nodes = [helper.make_node("Conv", ["data", "w"], ["conv"]),
             helper.make_node("Clip", ["conv", "low", "high"], ["out"])]
    weights = np.random.default_rng(3).normal(size=(4, 4, 1, 1)) * 3
    net = one_layer_net(tmp_path, nodes, [("w", weights), ("low", 0.0), ("high", 6.0)])
    run = net.forward(np.asarray(X, np.float32).reshape(1, -1, 1, 1))
    assert np.any(run.tensors["conv"] >= 6) and np.any(run.tensors["conv"] <= 0)
    top = np.asarray(TOP, np.float32).reshape(1, 4, 1, 1)
    for mode in MODES:
        through = run.backward("out", 0, mode=mode, seed=top, seed_through_rectifier=True, layer_diffs=True)
        np.testing.assert_allclose(through.input, run.backward("conv", 0, mode=mode, seed=top).input, rtol=1e-6)
        np.testing.assert_array_equal(through.layers["out"], top)


def test_saturated_relu6_with_positive_top_separates_guided_and_desalinet(tmp_path):
    net = one_layer_net(tmp_path, RECTIFIER_CASES["relu6"][0], RECTIFIER_CASES["relu6"][1])
    x, top = [-1, 2, 7, 3], [5, 6, 7, 8]
    assert backprop(net, x, top, "guided") == [0, 6, 0, 8]
    assert backprop(net, x, top, "desalinet") == [0, 6, 7, 8]
    assert backprop(net, x, top, "deconv") == [5, 6, 7, 8]


def test_max_pool_routes_through_the_switches_in_every_mode(tmp_path):
    """3x3 windows, stride 2 on 5x5: the centre column/row is shared by neighbouring windows."""
    net = one_layer_net(tmp_path, [helper.make_node("MaxPool", ["data"], ["out"], kernel_shape=[3, 3], strides=[2, 2])],
                        channels=1, size=(5, 5))
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = 9          # the max of all four windows
    x[0, 0, 0, 4] = -1         # window (0, 1) then has 0 elsewhere: ties, it is not picked
    x[0, 0, 4, 0] = 1          # ... but in window (1, 0) a lone 1 loses to the 9
    run = net.forward(x)
    top = np.array([[[[1, 2], [3, -4]]]], np.float32)
    expected = np.zeros((5, 5), np.float32)
    expected[2, 2] = 1 + 2 + 3 - 4
    for mode in MODES:
        np.testing.assert_array_equal(run.backward("out", 0, mode=mode, seed=top).input[0, 0], expected)
    x[0, 0, 2, 2] = 0          # windows (0, 0), (0, 1), (1, 1) tie at 0: each takes its first element
    run = net.forward(x)
    expected = np.zeros((5, 5), np.float32)
    expected[0, 0], expected[0, 2], expected[4, 0], expected[2, 2] = 1, 2, 3, -4
    for mode in MODES:
        np.testing.assert_array_equal(run.backward("out", 0, mode=mode, seed=top).input[0, 0], expected)


def test_lrn_passthrough(tmp_path):
    net = one_layer_net(tmp_path, [helper.make_node("LRN", ["data"], ["out"], size=3, alpha=3.0, beta=0.75, bias=1.0)])
    assert backprop(net, X, TOP, "deconv", lrn_passthrough=True) == TOP
    assert backprop(net, X, TOP, "deconv") != pytest.approx(TOP)


def fan_out_net(tmp_path) -> Net:
    """r = Relu(x) read twice: out = 2 r + (-3) r."""
    nodes = [helper.make_node("Relu", ["data"], ["r"]),
             helper.make_node("Mul", ["r", "two"], ["a"]), helper.make_node("Mul", ["r", "minus_three"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["out"])]
    return one_layer_net(tmp_path, nodes, [("two", 2.0), ("minus_three", -3.0)])


def test_a_relu_read_twice_rectifies_the_sum_of_its_diffs(tmp_path):
    """The top diff at r is 2 - 3 = -1 per unit: the rectifying modes block it all. Rectifying each use
    apart (what per-call hooks on a reused ReLU module do) would pass relu(2) + relu(-3) = 2."""
    net = fan_out_net(tmp_path)
    x, top = [-1, 2, 7, 3], [1, 1, 1, 1]
    assert backprop(net, x, top, "grad") == [0, -1, -1, -1]
    for mode in ("deconv", "guided", "desalinet"):
        assert backprop(net, x, top, mode) == [0, 0, 0, 0], mode
    assert backprop(net, x, [-1, -1, -1, -1], "guided") == [0, 1, 1, 1]
    assert backprop(net, x, [-1, -1, -1, -1], "deconv") == [1, 1, 1, 1]


def test_one_relu_applied_at_two_places(tmp_path):
    """Two Relu nodes on x and -x (|x| = relu(x) + relu(-x)): each rectifies its own diff."""
    nodes = [helper.make_node("Relu", ["data"], ["p"]), helper.make_node("Neg", ["data"], ["minus"]),
             helper.make_node("Relu", ["minus"], ["n"]), helper.make_node("Sub", ["p", "n"], ["out"])]
    net = one_layer_net(tmp_path, nodes)
    x, top = [-1, 2, 7, -3], [1, 1, -1, -1]
    # p gets top, n gets -top; back through Neg, n's share changes sign again
    assert backprop(net, x, top, "grad") == [1, 1, -1, -1]          # out = x
    assert backprop(net, x, top, "deconv") == [1, 1, -1, -1]        # relu(top) - relu(-top) = top
    assert backprop(net, x, top, "guided") == [0, 1, 0, -1]         # ... where p (x > 0) or n (x < 0) was on
    assert backprop(net, x, top, "desalinet") == [0, 1, 0, -1]


@pytest.fixture(scope="module")
def composite_nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("modes")
    nets = {}
    for name in ("caffenet_mini", "depthwise_separable"):
        onnx.save(COMPOSITES[name](), str(folder / f"{name}.onnx"))
        nets[name] = Net.load(folder / f"{name}.onnx", provider="cpu", input=PLAIN_INPUT)
    return nets


def test_desalinet_is_guided_on_a_relu_and_max_pool_net(composite_nets):
    """CaffeNet-like nets (ReLU, max pooling, LRN): the two modes give identical diffs at every layer."""
    net = composite_nets["caffenet_mini"]
    run = net.forward(np.random.default_rng(0).standard_normal((2, 3, 27, 27)).astype(np.float32) * 3)
    for layer, unit in (("fc7", 2), ("conv3", 5), ("norm1", 1)):
        guided = run.backward(layer, unit, mode="guided", layer_diffs=True)
        desalinet = run.backward(layer, unit, mode="desalinet", layer_diffs=True)
        assert np.abs(guided.input).max() > 0
        np.testing.assert_array_equal(guided.input, desalinet.input)
        assert guided.layers.keys() == desalinet.layers.keys()
        for name in guided.layers:
            np.testing.assert_array_equal(guided.layers[name], desalinet.layers[name])


def test_desalinet_differs_from_guided_where_relu6_saturates(composite_nets):
    net = composite_nets["depthwise_separable"]
    run = net.forward(np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32) * 3)
    assert (run["expand_relu6"] == 6).any()
    guided = run.backward("fc", 1, mode="guided", seed="onehot").input
    desalinet = run.backward("fc", 1, mode="desalinet", seed="onehot").input
    assert not np.allclose(guided, desalinet)


def test_elementwise_max_routes_to_the_first_input_holding_it(tmp_path):
    """Caffe's Eltwise MAX: out = max(x, c); where x == c the diff goes to x, the first input."""
    constant = np.reshape([0.0, 1.0, 2.0, 3.0], (4, 1, 1))
    net = one_layer_net(tmp_path, [helper.make_node("Max", ["data", "c"], ["out"])], [("c", constant)])
    for mode in MODES:
        assert backprop(net, [5, 1, -2, 3], [1, 2, 3, 4], mode) == [1, 2, 0, 4]
