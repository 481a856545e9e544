"""Gradients with respect to filter weights: equal to finite differences of the net's own score,
drawn as tiles on one scale for every compared input."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.errors import DeepVisError
from app.views import weight_grad
from views_nets import small_cnn


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return small_cnn(tmp_path_factory.mktemp("weight_grad"))


def images(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(count)]


class ScoreOfWeights:
    """The model with one weight tensor as an input: score(weights) by ONNX Runtime, for finite differences."""

    def __init__(self, path, weight: str, output: str):
        model = onnx.load(str(path))
        tensor = next(t for t in model.graph.initializer if t.name == weight)
        model.graph.initializer.remove(tensor)
        model.graph.input.append(onnx.helper.make_tensor_value_info(weight, tensor.data_type, list(tensor.dims)))
        model.graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
        self.session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        self.weight, self.output = weight, output

    def __call__(self, batch, value, unit, at=None):
        result = self.session.run([self.output], {"data": batch, self.weight: value.astype(np.float32)})[0][0, unit]
        return float(result[tuple(at)] if at is not None else result)


@pytest.mark.parametrize("layer, unit, at, weight, param_layer", [
    ("fc", 3, None, "w2", "relu2"),   # a class score w.r.t. the second conv (named by its ReLU)
    ("fc", 1, None, "w1", "conv1"),   # ... w.r.t. the first conv
    ("conv2", 4, (6, 7), "w1", "conv1"),
])
def test_weight_gradient_matches_finite_differences(net, layer, unit, at, weight, param_layer):
    image = images(1, seed=5)[0]
    gradient = weight_grad.weight_gradients(net, [image], layer, unit, param_layer, seed="onehot", at=at)[0]
    weights = net.initializers[weight].astype(np.float64)
    assert gradient.shape == weights.shape and np.abs(gradient).max() > 0
    score = ScoreOfWeights(net.path, weight, layer)
    batch = net.preprocess([image])
    rng = np.random.default_rng(1)
    eps = 1e-3
    for flat in rng.choice(weights.size, 25, replace=False):
        index = np.unravel_index(flat, weights.shape)
        plus, minus = weights.copy(), weights.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric = (score(batch, plus, unit, at) - score(batch, minus, unit, at)) / (2 * eps)
        assert gradient[index] == pytest.approx(numeric, rel=2e-2, abs=2e-2 * float(np.abs(gradient).max()))


def test_several_inputs_and_units(net):
    first, second = images(2, seed=6)
    run = net.forward([first])
    both = weight_grad.weight_gradients(net, [first, second], "fc", [0, 2], "conv2")
    alone = weight_grad.weight_gradients(net, [second], "fc", 2, "conv2")[0]
    np.testing.assert_allclose(both[1], alone, rtol=1e-6)
    np.testing.assert_array_equal(run.weight_gradient("fc", 0, "conv2", seed="onehot"), both[0])   # a held run stays


def test_only_conv_weights_and_matching_units(net):
    with pytest.raises(DeepVisError, match="fc: weight gradients are shown for Conv layers, this is a Gemm"):
        weight_grad.weight_gradients(net, images(1), "prob", 0, "fc")
    with pytest.raises(DeepVisError, match="3 units given for 1 inputs"):
        weight_grad.weight_gradients(net, images(1), "fc", [0, 1, 2], "conv1")


def test_colour_tiles_share_one_scale_across_inputs():
    gradient = np.random.default_rng(2).normal(size=(4, 3, 5, 5))
    gradient[0, 0, 0, 0] = 10.0  # the peak of everything, in net channel 0 (red for an RGB model)
    small, large = weight_grad.gradient_tile_sets([gradient / 2, gradient], channel_swap=(2, 1, 0))
    assert small.shape == large.shape == (4, 5, 5, 3)
    assert large[0, 0, 0, 2] == 255 and small[0, 0, 0, 2] == int(0.75 * 255 + 0.5)  # 0.5 + 5 / (2 * 10)
    deviation = lambda tiles: np.abs(tiles.astype(int) - 128)
    assert deviation(large).mean() == pytest.approx(2 * deviation(small).mean(), rel=0.05)


def test_deeper_layers_show_sizes_per_filter_or_channels_of_one_filter():
    rng = np.random.default_rng(3)
    gradients = [rng.normal(size=(6, 4, 3, 3)), np.zeros((6, 4, 3, 3))]
    sizes = weight_grad.gradient_tile_sets(gradients)
    assert sizes[0].shape == (6, 3, 3, 3) and sizes[0].max() == 255 and not sizes[1].any()
    channels = weight_grad.gradient_tile_sets(gradients, unit=2)
    assert channels[0].shape == (4, 3, 3, 3) and (channels[1] == 128).all()
    picture = weight_grad.comparison_image(channels, ["cat", "dog"], height=90, width=120)
    assert picture.shape == (90 + 20, 2 * 120 + 2, 3)
