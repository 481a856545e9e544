"""A step of activation maximization as one ONNX Runtime session (the forward to the layer and the
backward from the objectives' constant seed): the same scores and gradient as the forward run then
the NumPy walk, on the default model, random-weight CaffeNet and GoogLeNet, an opset-9 net (its
forward raised to the backward's opset) and MNIST-8 (shapes recorded at batch 1); which objectives
take it; neurons through their receptive field alone; the images it makes equal the two stages'."""
import numpy as np
import pytest

from app.net import Net
from app.offline import objectives, optimize
from app.offline import objective_gradient as objective_gradient_module
from app.offline.objective_gradient import objective_gradient
from app.offline.regularizers import PRESETS
from views_nets import small_cnn

TOLERANCE = 1e-4   # max |one session - two stages| over max |two stages|
CAFFE = {"caffenet": ("caffenet_deploy/deploy.prototxt", "conv5"),
         "googlenet": ("googlenet_deploy/deploy.prototxt", "inception_4a/output")}


def one_session_made(net, layer: str, batch: int, crop=None) -> bool:
    entry = net._graph_sessions.get(("input_gradient", layer, batch, crop))
    return entry is not None and not isinstance(entry, str)


def two_stages(net, batch, targets, views=1):
    """The reference: a forward run, then the NumPy walk."""
    engine, net.backward_engine = net.backward_engine, "numpy"
    try:
        return objective_gradient(net, batch, targets, views)
    finally:
        net.backward_engine = engine


def every_kind(net, layer: str) -> list:
    """One image per kind of objective on ``layer``: a channel, a neuron, a direction, a weighted sum."""
    channels = net.layer(layer).shape[0]
    direction = np.random.default_rng(1).normal(size=channels).astype(np.float32)
    return [objectives.unit_terms(net, layer, 0, "channel"), objectives.unit_terms(net, layer, 1, "neuron"),
            (objectives.Term(layer, direction=direction),),
            (objectives.Term(layer, 2), objectives.Term(layer, 3, objectives.centre(net, layer), weight=-0.5))]


@pytest.mark.parametrize("name", ["default", "caffenet", "googlenet", "alexnet_opset9", "mnist8"])
def test_one_session_gives_the_two_stages_gradient(name, testdata):
    if name == "default":
        net, layer = Net.load(provider="cpu"), "blocks.4.0.dw"
    elif name == "alexnet_opset9":
        net, layer = Net.load(testdata / "onnx_light_zoo" / "light_bvlc_alexnet.onnx", provider="cpu"), "r14"
    elif name == "mnist8":   # its file records every tensor's shape at batch 1
        net = Net.load(testdata / "onnx_mnist8" / "mnist-8.onnx", provider="cpu")
        layer = net.logits_layer()
    else:
        net = Net.load(str(testdata / CAFFE[name][0]), provider="cpu", random_weights=0)
        layer = CAFFE[name][1]
    targets = every_kind(net, layer)
    batch = np.random.default_rng(0).normal(0, 10, (len(targets),) + net.input_shape).astype(np.float32)
    scores, gradient = objective_gradient(net, batch, targets)
    assert one_session_made(net, layer, len(targets))
    expected_scores, expected = two_stages(net, batch, targets)
    assert np.abs(expected).max() > 0
    assert np.abs(gradient - expected).max() / np.abs(expected).max() < TOLERANCE
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-4, atol=1e-4 * np.abs(expected_scores).max())
    for image in range(len(targets)):   # each image's gradient is its own objective's
        alone = two_stages(net, batch[image:image + 1], targets[image:image + 1])[1]
        assert np.abs(gradient[image:image + 1] - alone).max() / np.abs(expected).max() < TOLERANCE


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return small_cnn(tmp_path_factory.mktemp("one_session"))


def test_which_objectives_take_one_session(net):
    batch = np.random.default_rng(2).normal(0, 10, (2,) + net.input_shape).astype(np.float32)
    one_layer = [objectives.parse(net, "conv2:1"), objectives.parse(net, "conv2:4@3,3 + -2*conv2:0")]
    objective_gradient(net, batch, one_layer)
    assert one_session_made(net, "conv2", 2)
    # several layers, a penalty whose seed depends on the activation, the NumPy engine: two stages
    objective_gradient(net, batch, [objectives.parse(net, "conv2:1 + class:2")] * 2)
    objective_gradient(net, batch[:1], one_layer[:1], penalty=("fc", lambda value: np.ones_like(value)))
    net.backward_engine = "numpy"
    objective_gradient(net, batch[:1].repeat(3, axis=0), one_layer[:1] * 3)
    net.backward_engine = "graph"
    assert not any(one_session_made(net, layer, count) for layer in ("conv2", "fc") for count in (1, 3))
    assert not one_session_made(net, "fc", 2)


def test_a_penalty_adds_its_own_backward_pass(net):
    batch = np.random.default_rng(3).normal(0, 10, (2,) + net.input_shape).astype(np.float32)
    targets = [objectives.parse(net, "conv2:1")] * 2
    _, plain = objective_gradient(net, batch, targets)
    _, pushed = objective_gradient(net, batch, targets, penalty=("conv2", lambda value: np.ones_like(value)))
    run = net.forward(batch, up_to="conv2")
    penalty_alone = run.backward("conv2", 0, seed=np.ones_like(run["conv2"]), engine="numpy").input
    np.testing.assert_allclose(pushed, plain + penalty_alone, rtol=1e-4, atol=1e-4 * np.abs(pushed).max())


def test_optimized_images_equal_the_two_stages(net):
    """The same images through either path (a gray level for the float rounding of the two); conv2's
    neurons go through their receptive field's crop."""
    one = optimize.optimize_units(net, "conv2", [0, 3], PRESETS[5], seed=4, iterations=15)
    net.backward_engine = "numpy"
    try:
        two = optimize.optimize_units(net, "conv2", [0, 3], PRESETS[5], seed=4, iterations=15)
    finally:
        net.backward_engine = "graph"
    for a, b in zip(one, two):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
        assert a.activation == pytest.approx(b.activation, rel=1e-4)
        assert a.activation > a.start_activation
    alone = optimize.optimize_units(net, "conv2", [3], PRESETS[5], seed=4, iterations=15)[0]
    assert np.abs(alone.image.astype(int) - one[1].image.astype(int)).max() <= 1   # whatever its batch-mates


@pytest.fixture(scope="module")
def default_net():
    return Net.load(provider="cpu")


def test_neurons_take_their_receptive_field_alone(default_net):
    """blocks.3.0.dw.conv's centre sees 83 x 83 pixels: the session takes the 96 x 96 crop aligned
    to the layer's stride of 16, and gives the whole image's scores and gradient (zero elsewhere)."""
    net, layer = default_net, "blocks.3.0.dw.conv"
    targets = [objectives.unit_terms(net, layer, unit, "neuron") for unit in (0, 5, 9)]
    assert objective_gradient_module.neuron_crop(net, targets, layer) == (64, 160, 64, 160)
    batch = np.random.default_rng(5).normal(0, 10, (3,) + net.input_shape).astype(np.float32)
    scores, gradient = objective_gradient(net, batch, targets)
    assert one_session_made(net, layer, 3, (64, 160, 64, 160))
    expected_scores, expected = two_stages(net, batch, targets)
    assert np.abs(gradient - expected).max() / np.abs(expected).max() < TOLERANCE
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)
    outside = np.ones(expected.shape, bool)
    outside[:, :, 64:160, 64:160] = False
    assert np.abs(expected[outside]).max() == 0 and np.abs(expected[~outside]).max() > 0
    # a channel, and a neuron that sees most of the image, take the whole image
    assert objective_gradient_module.neuron_crop(net, [objectives.unit_terms(net, layer, 0, "channel")], layer) is None
    deep = "blocks.4.2.add"
    assert objective_gradient_module.neuron_crop(net, [objectives.unit_terms(net, deep, 0, "neuron")], deep) is None


def test_a_crop_that_changes_a_neuron_is_not_used(default_net, monkeypatch):
    """A crop one pixel off the layer's grid moves every neuron: checked once against the whole image,
    it is refused (its line kept for that crop) and the whole image's session gives the step."""
    net, layer = default_net, "blocks.3.0.dw.conv"
    off_grid = (65, 161, 64, 160)
    monkeypatch.setattr(objective_gradient_module, "neuron_crop", lambda *args: off_grid)
    targets = [objectives.unit_terms(net, layer, 3, "neuron")]
    batch = np.random.default_rng(6).normal(0, 10, (1,) + net.input_shape).astype(np.float32)
    scores, gradient = objective_gradient(net, batch, targets)
    assert "the neurons' values change" in net._graph_sessions[("input_gradient", layer, 1, off_grid)]
    assert one_session_made(net, layer, 1)
    expected_scores, expected = two_stages(net, batch, targets)
    assert np.abs(gradient - expected).max() / np.abs(expected).max() < TOLERANCE
