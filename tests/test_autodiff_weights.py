"""Gradients with respect to a layer's weights, against float64 finite differences."""
import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from app.errors import DeepVisError
from app.net import Net
from app.net.autodiff import weight_gradient
from app.net.autodiff.seeds import make_seed
from test_autodiff_graphs import COMPOSITES, GraphBuilder
from test_autodiff_support import ORACLE_OPS, DoubleGraph, central_differences, sample_indices

PLAIN_INPUT = dict(mean=0.0, input_scale=1.0, raw_scale=255.0, channel_swap=[2, 1, 0])


def matmul_net() -> onnx.ModelProto:
    """A Keras-style dense layer (MatMul then Add) and a ConvTranspose upsampling."""
    b = GraphBuilder((2, 5, 5), seed=4)
    x = b.node("ConvTranspose", ["data", b.weight("up_w", (2, 3, 3, 3))], "up", strides=[2, 2], pads=[1, 1, 0, 0])
    x = b.node("Relu", [x], "up_relu")
    x = b.node("Flatten", [x], "flat")
    x = b.node("MatMul", [x, b.weight("dense_w", (3 * 10 * 10, 6), fan_in=300)], "dense_mm")
    return b.model(b.node("Add", [x, b.weight("dense_b", (6,), fan_in=4)], "dense"))


NETS = dict(COMPOSITES, matmul=matmul_net)
CASES = [  # net, layer, unit, seed, param layer, the weight it names
    ("caffenet_mini", "fc7", 2, "onehot", "relu2", "conv2_w"),      # grouped conv, named by its ReLU
    ("caffenet_mini", "conv3", 4, "activation", "conv1", "conv1_w"),
    ("caffenet_mini", "prob", 1, "onehot", "fc6", "fc6_w"),          # Gemm transB
    ("depthwise_separable", "fc", 0, "onehot", "dw1_relu6", "dw1_w"),  # depthwise, through BN and ReLU6
    ("residual", "b_relu", 3, "activation", "b_proj", "b_proj_w"),   # 1x1 stride-2 projection
    ("matmul", "dense", 5, "onehot", "dense", "dense_w"),            # MatMul found behind its bias Add
    ("matmul", "dense", 1, "onehot", "up_relu", "up_w"),             # ConvTranspose
]


@pytest.mark.parametrize("name, layer, unit, seed, param_layer, weight", CASES)
def test_weight_gradient_matches_finite_differences(name, layer, unit, seed, param_layer, weight):
    graph = DoubleGraph(NETS[name]())
    image = np.random.default_rng(3).standard_normal((1,) + tuple(
        d.dim_value for d in graph.model.graph.input[0].type.tensor_type.shape.dim[1:]))
    run = graph.as_run(image)
    ours = weight_gradient(run, layer, unit, param_layer, seed=seed)
    values = graph.initializers[weight]
    assert ours.shape == values.shape and ours.dtype == np.float64 and np.abs(ours).max() > 0
    seed_diff = make_seed(run.tensors[layer], unit, seed, None, "test")

    def objective(probe):
        model = onnx.ModelProto()
        model.CopyFrom(graph.model)
        tensor = next(t for t in model.graph.initializer if t.name == weight)
        tensor.CopyFrom(onnx.numpy_helper.from_array(probe, weight))
        result = ReferenceEvaluator(model, new_ops=ORACLE_OPS).run([layer], {"data": image})[0]
        return float((result * seed_diff).sum())

    indices = sample_indices(values.size, 25)
    expected = central_differences(objective, values, indices)
    np.testing.assert_allclose(ours.flat[indices], expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


@pytest.fixture(scope="module")
def caffenet(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "caffenet_mini.onnx"
    onnx.save(COMPOSITES["caffenet_mini"](), str(path))
    return Net.load(path, provider="cpu", input=PLAIN_INPUT)


def test_a_batch_sums_its_images(caffenet):
    batch = np.random.default_rng(5).standard_normal((2, 3, 27, 27)).astype(np.float32)
    both = caffenet.forward(batch).weight_gradient("fc7", 1, "conv2", seed="onehot")
    alone = [caffenet.forward(image[None]).weight_gradient("fc7", 1, "conv2", seed="onehot") for image in batch]
    assert both.dtype == np.float32
    np.testing.assert_allclose(both, alone[0] + alone[1], rtol=1e-5, atol=1e-6 * np.abs(both).max())


def test_weights_that_cannot_move_the_unit(caffenet):
    run = caffenet.forward(np.zeros((1, 3, 27, 27), np.float32))
    with pytest.raises(DeepVisError, match="layer conv2 does not depend on the weights of fc6"):
        run.weight_gradient("conv2", 0, "fc6")
    with pytest.raises(DeepVisError, match="layer data: no Conv, ConvTranspose, Gemm or MatMul"):
        run.weight_gradient("conv2", 0, "data")
