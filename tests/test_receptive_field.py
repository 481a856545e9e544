"""Receptive fields: the published table for AlexNet / CaffeNet and VGG16, branch merges, and
probing through a real net agreeing with the analytic fields."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.net.caffe.convert import convert
from app.net.receptive_field import ReceptiveField, graph_fields, whole_input

# Araujo et al. 2019, "Computing receptive fields of convolutional neural networks": size, stride, padding
ALEXNET = {"conv1": (11, 4, 0), "pool1": (19, 8, 0), "conv2": (51, 8, 16), "conv3": (99, 16, 32),
           "conv4": (131, 16, 48), "conv5": (163, 16, 64), "pool5": (195, 32, 64)}
VGG16 = {"conv1_1": (3, 1, 1), "pool1": (6, 2, 2), "pool2": (16, 4, 6), "conv3_1": (24, 4, 10),
         "pool3": (44, 8, 18), "conv4_1": (60, 8, 26), "pool4": (100, 16, 42), "conv5_1": (132, 16, 58),
         "conv5_2": (164, 16, 74), "pool5": (212, 32, 90)}


class GraphBuilder:
    """A small ONNX graph of convolutions and pools (2 channels: only the geometry matters)."""

    def __init__(self, size: int, channels: int = 2):
        self.nodes, self.weights, self.channels = [], [], channels
        self.input = helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, channels, size, size])
        self.last = "data"

    def conv(self, name, kernel, stride=1, pad=0, source=None, **extra):
        weight = numpy_helper.from_array(np.zeros((self.channels, self.channels, kernel, kernel), np.float32),
                                         f"{name}_w")
        self.weights.append(weight)
        return self._node("Conv", name, [source or self.last, weight.name], kernel_shape=[kernel] * 2,
                          strides=[stride] * 2, pads=[pad] * 4, **extra)

    def pool(self, name, kernel, stride, pad=0, source=None):
        return self._node("MaxPool", name, [source or self.last], kernel_shape=[kernel] * 2,
                          strides=[stride] * 2, pads=[pad] * 4)

    def op(self, op_type, name, inputs, **attrs):
        return self._node(op_type, name, inputs, **attrs)

    def _node(self, op_type, name, inputs, **attrs):
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        self.last = name
        return name

    def model(self) -> onnx.ModelProto:
        output = helper.make_tensor_value_info(self.last, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, "g", [self.input], [output], self.weights)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def alexnet() -> onnx.ModelProto:
    g = GraphBuilder(227)
    g.conv("conv1", 11, 4)
    g.op("Relu", "relu1", ["conv1"])
    g.pool("pool1", 3, 2)
    g.op("LRN", "norm1", ["pool1"], size=5)
    g.conv("conv2", 5, 1, 2)
    g.pool("pool2", 3, 2)
    g.conv("conv3", 3, 1, 1)
    g.conv("conv4", 3, 1, 1)
    g.conv("conv5", 3, 1, 1)
    g.pool("pool5", 3, 2)
    return g.model()


def vgg16() -> onnx.ModelProto:
    g = GraphBuilder(224)
    for block, convs in enumerate((2, 2, 3, 3, 3), 1):
        for index in range(1, convs + 1):
            g.conv(f"conv{block}_{index}", 3, 1, 1)
            g.op("Relu", f"relu{block}_{index}", [g.last])
        g.pool(f"pool{block}", 2, 2)
    return g.model()


def assert_table(fields: dict, table: dict) -> None:
    for layer, (size, stride, padding) in table.items():
        assert fields[layer] == ReceptiveField((size, size), (stride, stride), (padding, padding)), layer


def test_alexnet_matches_published_table():
    assert_table(graph_fields(alexnet(), "data", (227, 227)), ALEXNET)


def test_vgg16_matches_published_table():
    assert_table(graph_fields(vgg16(), "data", (224, 224)), VGG16)


@pytest.mark.parametrize("folder, prototxt, table", [
    ("caffenet_deploy", "deploy.prototxt", ALEXNET),
    ("alexnet_deploy", "deploy.prototxt", ALEXNET),
    ("vgg16_deploy", "VGG_ILSVRC_16_layers_deploy.prototxt", VGG16)])
def test_caffe_prototxts_match_published_table(testdata, folder, prototxt, table):
    model = convert(testdata / folder / prototxt, None)
    data = model.graph.input[0]
    size = tuple(d.dim_value for d in data.type.tensor_type.shape.dim[2:])
    assert_table(graph_fields(model, data.name, size), table)


def test_box_runs_past_the_image_and_whole_input():
    conv2 = graph_fields(alexnet(), "data", (227, 227))["conv2"]
    assert conv2.box(0, 0) == (-16, 35, -16, 35)
    assert conv2.box(2, 1) == (0, 51, -8, 43)
    whole = whole_input((227, 227))
    assert whole.whole and whole.box(5, 7) == (0, 227, 0, 227)


def test_branches_merge_to_the_union_and_flatten_sees_everything():
    g = GraphBuilder(32)
    g.conv("small", 3, 1, 1, source="data")
    g.conv("big", 7, 1, 3, source="data")
    g.op("Add", "sum", ["small", "big"])
    g.op("Concat", "cat", ["small", "big"], axis=1)
    g.conv("strided", 3, 2, 1, source="data")
    g.op("Concat", "mixed", ["strided", "strided"], axis=1)
    g.op("GlobalAveragePool", "gap", ["mixed"])
    g.op("Flatten", "flat", ["gap"])
    fields = graph_fields(g.model(), "data", (32, 32))
    assert fields["sum"] == fields["cat"] == ReceptiveField((7, 7), (1, 1), (3, 3))
    assert fields["mixed"] == ReceptiveField((3, 3), (2, 2), (1, 1))
    assert fields["gap"].whole and fields["flat"].whole


def test_transposed_conv_and_dilation():
    g = GraphBuilder(16)
    g.conv("dilated", 3, 1, 2, source="data", dilations=[2, 2])
    g.conv("down", 2, 2, 0)
    weight = numpy_helper.from_array(np.zeros((2, 2, 2, 2), np.float32), "up_w")
    g.weights.append(weight)
    g.op("ConvTranspose", "up", ["down", "up_w"], kernel_shape=[2, 2], strides=[2, 2])
    fields = graph_fields(g.model(), "data", (16, 16))
    assert fields["dilated"] == ReceptiveField((5, 5), (1, 1), (2, 2))
    assert fields["down"] == ReceptiveField((6, 6), (2, 2), (2, 2))
    # output o of a stride-2, kernel-2 transposed conv copies input o // 2; one (size, stride, padding)
    # cannot follow the parity of o, so the field bounds both parities: at most one pixel wider
    up, down = fields["up"].box(3, 3), fields["down"].box(1, 1)
    assert up[0] <= down[0] and up[1] >= down[1] and (up[1] - up[0]) - (down[1] - down[0]) <= 1


@pytest.fixture(scope="module")
def default_net():
    from app.net import Net

    return Net.load(provider="cpu")


def test_probing_agrees_with_analytic_on_every_layer_of_the_default_model(default_net):
    from app.net import receptive_field

    fields = receptive_field.receptive_fields(default_net)
    height = default_net.input_shape[1]
    lines = sorted(set(range(0, 12)) | set(range(height // 2 - 6, height // 2 + 6)) | set(range(height - 12, height)))
    probed = receptive_field.probe(default_net, lines=lines, batch=12)
    map_layers = [layer.name for layer in default_net.layers if layer.kind == "map"]
    assert set(probed) == set(map_layers)
    assert receptive_field.disagreements(default_net, fields, probed) == {name: 0 for name in map_layers}
