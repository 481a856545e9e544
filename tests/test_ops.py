"""The table of op traits, checked on real models: the default model and a trained Caffe net."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.net import Net, ops, receptive_field
from app.net.autodiff.modes import RECTIFIERS
from app.net.autodiff.rules import RULES


@pytest.fixture(scope="module")
def default_net():
    return Net.load(provider="cpu")


@pytest.fixture(scope="module")
def onet(testdata, tmp_path_factory):
    """MTCNN's ONet: Convolution, PReLU, Pooling, InnerProduct, Dropout, Softmax, trained weights."""
    folder = testdata / "mtcnn_onet"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPVIS_CACHE", str(tmp_path_factory.mktemp("cache")))
        return Net.load((folder / "det3.prototxt", folder / "det3.caffemodel"), provider="cpu")


def producers(net) -> dict:
    return {name: node for node in net.model.graph.node for name in node.output}


@pytest.mark.parametrize("name", ["default_net", "onet"])
def test_every_conv_and_gemm_layer_has_its_weights_found(request, name):
    net = request.getfixturevalue(name)
    producer = producers(net)
    weighted = [layer for layer in net.layers if layer.op_type in ("Conv", "Gemm")]
    assert len(weighted) >= (50 if name == "default_net" else 5)
    for layer in weighted:
        found = ops.weights_of(net.model, layer.name)
        node = producer[layer.name]
        assert found is not None and found.node is node, layer.name
        assert (found.weight, found.bias) == (node.input[1], node.input[2] if len(node.input) > 2 else None)
        weight = net.initializers[found.weight]
        units = weight.shape[0] if layer.op_type == "Conv" else layer.shape[0]
        assert layer.shape[0] == units and weight.dtype.kind == "f"


@pytest.mark.parametrize("name, rectifier", [("default_net", "Clip"), ("onet", "PRelu")])
def test_a_rectifier_layer_has_the_weights_of_the_layer_it_rectifies(request, name, rectifier):
    net = request.getfixturevalue(name)
    producer = producers(net)
    rectified = [layer.name for layer in net.layers if layer.op_type == rectifier]
    assert rectified
    for layer in rectified:
        below = producer[layer].input[0]
        assert ops.weights_of(net.model, layer) == ops.weights_of(net.model, below) is not None


def test_layers_without_weights_of_their_own_have_none(default_net, onet):
    for net in (default_net, onet):
        for layer in net.layers:
            if layer.op_type in ("MaxPool", "GlobalAveragePool", "Softmax", "Add", "Flatten"):
                assert ops.weights_of(net.model, layer.name) is None, layer.name
    assert ops.weights_of(default_net.model, default_net.input_name) is None


def test_a_separate_bias_add_has_weights_only_through_the_bias(testdata):
    """mnist-8 (CNTK) adds each conv's bias in an Add node of its own."""
    net = Net.load(testdata / "onnx_mnist8" / "mnist-8.onnx", provider="cpu")
    producer = producers(net)
    adds = [layer.name for layer in net.layers if layer.op_type == "Add"]
    assert adds
    for add in adds:
        assert ops.weights_of(net.model, add) is None
        found = ops.weights_of(net.model, add, through_bias=True)
        assert found is not None and found.node.op_type in ("Conv", "MatMul") and found.node in [
            producer[name] for name in producer[add].input if name in producer]


def test_rectifiers_are_listed_and_the_modes_change_exactly_them(default_net, onet):
    assert set(RECTIFIERS) == {"Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "HardSwish",
                               "Clip"}
    assert all(op in RULES for op in RECTIFIERS)
    assert not {"Sigmoid", "Tanh", "Softplus", "Gelu", "Abs"} & set(RECTIFIERS)
    used = {layer.op_type for net in (default_net, onet) for layer in net.layers}
    assert {op for op in used if ops.trait(op).rectifier} == {"Clip", "PRelu"}


def test_every_activation_is_elementwise_and_keeps_units():
    for op in ops.op_types(activation=True):
        traits = ops.trait(op)
        assert traits.elementwise and traits.keeps_units and traits.layer and traits.positions == ops.POINTWISE
    assert set(ops.op_types(rectifier=True)) <= set(ops.op_types(activation=True))


def test_every_op_that_moves_positions_has_a_receptive_field_rule():
    for op, traits in ops.TRAITS.items():
        if traits.positions in (ops.WINDOW, ops.SHIFT, ops.MOVED):
            assert op in receptive_field.RULES, op
        if traits.window is not None:
            assert traits.layer and (traits.window.kernel_input is None or traits.window.kernel_input > 0), op


def one_node_chain(op_type: str):
    """data -> Conv -> ``op_type`` -> Relu, a 2-channel 6 x 6 map throughout."""
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["data", "w"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node(op_type, ["conv"], ["mid"], domain="example.custom" if op_type == "Mystery" else ""),
             helper.make_node("Relu", ["mid"], ["relu"])]
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 1, 6, 6])
    out = helper.make_tensor_value_info("relu", TensorProto.FLOAT, [1, 2, 6, 6])
    return helper.make_model(helper.make_graph(nodes, "chain", [data], [out], [w]), opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("example.custom", 1)])


def test_an_unknown_op_gets_the_conservative_trait():
    traits = ops.trait("Mystery")
    assert traits == ops.UNKNOWN
    assert not (traits.layer or traits.elementwise or traits.activation or traits.rectifier or traits.keeps_units)
    assert traits.positions == ops.MIXED and traits.window is None and traits.weight is None
    node = helper.make_node("Mystery", ["x"], ["y"])
    assert not ops.reads_own_position(node) and not ops.spatially_local(node)
    assert ops.reads_own_position(helper.make_node("Softmax", ["x"], ["y"], axis=1))
    assert not ops.reads_own_position(helper.make_node("Softmax", ["x"], ["y"]))  # its default depends on opset
    assert not ops.spatially_local(helper.make_node("Concat", ["x", "z"], ["y"], axis=2))
    # the weights search stops at it, and the receptive field behind it is the whole input
    assert ops.weights_of(one_node_chain("Mystery"), "relu") is None
    assert ops.weights_of(one_node_chain("Identity"), "relu").weight == "w"
    assert receptive_field.graph_fields(one_node_chain("Mystery"), "data", (6, 6))["relu"].whole
    fields = receptive_field.graph_fields(one_node_chain("Identity"), "data", (6, 6))
    assert fields["relu"].size == (3, 3) and not fields["relu"].whole
