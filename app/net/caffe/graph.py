"""The ONNX graph being built from a Caffe net: nodes, weights, and the shape of every tensor so far."""
import math

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from app.net.onnx_graph import inferred_shapes

OPSET = 13
IR_VERSION = 8
# More float32 values than this in one tensor (4 GB, one image) is a typo in the prototxt, not a net
MAX_TENSOR_VALUES = 2 ** 30
MAX_MODEL_BYTES = 2 ** 31 - 2 ** 24   # a protobuf holds 2 GB; some room for the graph itself


class Graph:
    """Collects nodes and initializers; tensor names are kept unique (in-place Caffe layers reuse blob
    names, their ONNX outputs must not); `shapes` maps each tensor name to its inferred shape."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.inputs = []
        self.shapes = {}
        self._used = set()
        self._weight_bytes = 0

    def _unique(self, name: str) -> str:
        candidate, count = name, 1
        while candidate in self._used:
            count += 1
            candidate = f"{name}_{count}"
        self._used.add(candidate)
        return candidate

    def add_input(self, name: str, shape: tuple) -> str:
        """The graph input; its batch axis is left free in the saved model."""
        name = self._unique(name)
        self.inputs.append(name)
        self.shapes[name] = tuple(shape)
        return name

    def const(self, name: str, array) -> str:
        """An initializer: float32, or int64 for integer values (shapes, split sizes, pads)."""
        array = np.asarray(array)
        dtype = np.int64 if array.dtype.kind in "iub" else np.float32
        self.check_room(array.size * np.dtype(dtype).itemsize)
        self._weight_bytes += array.size * np.dtype(dtype).itemsize
        name = self._unique(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        self.shapes[name] = array.shape
        return name

    def check_room(self, weight_bytes: int) -> None:
        """Refuse weights that would bring the model past what one ONNX file holds."""
        if self._weight_bytes + weight_bytes > MAX_MODEL_BYTES:
            raise ValueError(f"its weights bring the model over {MAX_MODEL_BYTES} bytes, more than an ONNX file holds")

    def node(self, op: str, inputs: list, output: str, **attributes) -> str:
        """Add one node with one output; returns the output's (unique) tensor name."""
        return self.multi_node(op, inputs, [output], **attributes)[0]

    def multi_node(self, op: str, inputs: list, outputs: list, **attributes) -> list:
        outputs = [self._unique(name) for name in outputs]
        self.nodes.append(helper.make_node(op, list(inputs), outputs, name=outputs[0], **attributes))
        return outputs

    def infer_shapes(self, first_node: int) -> None:
        """Infer the shapes of the outputs of nodes[first_node:] from the shapes known so far."""
        new_nodes = self.nodes[first_node:]
        produced = {name for node in new_nodes for name in node.output}
        needed = [name for node in new_nodes for name in node.input if name and name not in produced]
        values = {init.name: init for init in self.initializers if init.data_type == onnx.TensorProto.INT64}
        graph_inputs = [helper.make_tensor_value_info(name, onnx.TensorProto.INT64 if name in values
                                                      else onnx.TensorProto.FLOAT, self.shapes[name])
                        for name in dict.fromkeys(needed)]
        graph = helper.make_graph(new_nodes, "layer", graph_inputs, [],
                                  initializer=[values[name] for name in dict.fromkeys(needed) if name in values])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        for info in inferred.graph.value_info:
            if info.name in produced:
                shape = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
                if min(shape, default=1) < 1 or math.prod(shape) > MAX_TENSOR_VALUES:
                    raise ValueError(f"its output {info.name} would have shape {shape}: empty, or "
                                     f"over {MAX_TENSOR_VALUES} values per image")
                self.shapes[info.name] = shape

    def model(self, input_name: str, outputs: list) -> onnx.ModelProto:
        """The finished model: one free-batch input, the given tensors as outputs."""
        input_shape = ["N"] + list(self.shapes[input_name][1:])
        graph_input = helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, input_shape)
        graph_outputs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs]
        graph = helper.make_graph(self.nodes, "caffe", [graph_input], graph_outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="deepvis-caffe")
        model.ir_version = IR_VERSION
        model.graph.initializer.extend(self.initializers)
        inferred = inferred_shapes(model)
        model.graph.value_info.extend(inferred.graph.value_info)
        del model.graph.output[:]
        model.graph.output.extend(inferred.graph.output)
        return model
