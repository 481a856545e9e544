"""Whole-net vanilla gradients against finite differences: the default model (ONNX Runtime, float32,
so a loose tolerance) and a Caffe-converted net (float64 reference forward)."""
import numpy as np
import pytest

from app.net import Net
from test_autodiff_support import DoubleGraph, central_differences


@pytest.fixture(scope="module")
def default_net():
    return Net.load(provider="cpu")


def pixels_to_check(gradient: np.ndarray, rng, count: int) -> np.ndarray:
    """Half at random, half where the gradient is largest (where a relative check means most)."""
    strongest = np.argsort(-np.abs(gradient).ravel())[:count // 2]
    return np.concatenate([rng.choice(gradient.size, count - count // 2, replace=False), strongest])


@pytest.mark.parametrize("layer, unit", [("fc", None), ("blocks.4.0.expand", 17)])
def test_default_model_gradient_matches_finite_differences(default_net, layer, unit):
    net = default_net
    rng = np.random.default_rng(0)
    batch = net.preprocess([rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)])
    run = net.forward(batch)
    unit = int(run[layer][0].argmax()) if unit is None else unit
    result = run.backward(layer, unit, seed="onehot", layer_diffs=True)
    gradient, seed = result.input, result.layers[layer].astype(np.float64)
    indices = pixels_to_check(gradient, rng, 8)

    def objective(probe):
        return float((net.forward(probe)[layer] * seed).sum())

    expected = central_differences(objective, batch, indices, eps=1e-3)  # small: ReLU6 kinks nearby
    np.testing.assert_allclose(gradient.flat[indices], expected, rtol=0.05, atol=0.015 * np.abs(gradient).max())


def test_caffe_net_gradient_matches_finite_differences(testdata):
    net = Net.load(testdata / "cifar10_quick" / "cifar10_quick.prototxt", provider="cpu")
    graph = DoubleGraph(net.model)
    batch = net.preprocess([net.deprocess(np.random.default_rng(1).normal(0, 40, (1,) + net.input_shape))[0]])
    maps = [layer for layer in net.layers if layer.kind == "map"]
    for layer in (maps[-1].name, net.layers[-1].name):
        result = net.forward(batch).backward(layer, 1, seed="activation", layer_diffs=True)
        gradient, seed = result.input, result.layers[layer].astype(np.float64)
        indices = pixels_to_check(gradient, np.random.default_rng(2), 16)

        def objective(probe):
            return float((graph.run({net.input_name: probe})[layer] * seed).sum())

        expected = central_differences(objective, batch.astype(np.float64), indices, eps=1e-4)
        np.testing.assert_allclose(gradient.flat[indices], expected, rtol=1e-3, atol=1e-4 * np.abs(gradient).max())
