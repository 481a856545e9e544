"""Depthwise correlations of float32 backward passes, run by ONNX Runtime's convolution kernels.

ONNX Runtime's vectorised depthwise Conv correlates every channel with its own small kernel 2-4x
faster than NumPy or OpenCV; it takes float32 only, so float64 passes (the finite-difference tests)
keep the NumPy paths of depthwise.py. One session per weight tensor and geometry, made on
first use (a few ms) and kept, made from the options the backward pass hands the rules (the run's,
on one thread like the rest of the walk).
"""
import threading
from collections import OrderedDict

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

MAX_SESSIONS = 256   # a net's depthwise layers times the batch sizes in use; the oldest go first
_SESSIONS = OrderedDict()   # (id of the weights, key, input shape) -> (weights, session)
_LOCK = threading.Lock()    # backward passes may run on several threads


def correlations(x: np.ndarray, taps: list, dilations: list, weights: np.ndarray, key, session_options) -> list:
    """Per (taps, dilation): the valid correlation of each channel of ``x`` with its own kernel, the
    weights at those taps (one index tuple per spatial axis): kernel = weights[:, :][np.ix_(*taps)],
    out[:, c] at m = sum over t of kernel[c, 0][t] * x[:, c] at m + t * dilation. All in one run.
    (weights, key, x's shape) name the session; the taps and dilations must follow from them.
    session_options() makes the options of a new session."""
    name = (id(weights), key, x.shape)
    with _LOCK:
        entry = _SESSIONS.get(name)
        if entry is None or entry[0] is not weights:   # an id may come back for new weights
            kernels = [weights[(slice(None), slice(None)) + np.ix_(*axes)] for axes in taps]
            entry = (weights, _session(x.shape, kernels, dilations, session_options()))
            _SESSIONS[name] = entry
            while len(_SESSIONS) > MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
        _SESSIONS.move_to_end(name)
    return entry[1].run(None, {"x": x})


def _session(shape: tuple, kernels: list, dilations: list, options: ort.SessionOptions) -> ort.InferenceSession:
    nodes, outputs, initializers = [], [], []
    for index, (kernel, dilation) in enumerate(zip(kernels, dilations)):
        nodes.append(helper.make_node("Conv", ["x", f"kernel{index}"], [f"out{index}"], group=shape[1],
                                      dilations=list(dilation)))
        outputs.append(helper.make_tensor_value_info(f"out{index}", TensorProto.FLOAT, None))
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(kernel, np.float32), f"kernel{index}"))
    graph = helper.make_graph(nodes, "depthwise_correlations",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))], outputs,
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
