"""The one table: ONNX op type -> backward rule (the vanilla gradient).

A rule takes an ``Op`` (the node, its attributes, forward inputs and outputs, output diffs) and
returns the diffs of its inputs (see op.py). Backprop modes override a few rows (modes.py).
Ops absent here stop a backward pass that crosses them with an error naming the op and node.
"""
from app.net.autodiff import conv, elementwise as ew, linear, pooling, shapes

RULES = {
    # convolution and pooling
    "Conv": conv.conv,
    "ConvTranspose": conv.conv_transpose,
    "MaxPool": pooling.max_pool,
    "AveragePool": pooling.average_pool,
    "GlobalAveragePool": pooling.global_average_pool,
    "GlobalMaxPool": pooling.global_max_pool,
    "LRN": pooling.lrn,
    # fully connected and normalisation
    "Gemm": linear.gemm,
    "MatMul": linear.matmul,
    "BatchNormalization": linear.batch_normalization,
    "Softmax": linear.softmax,
    "LogSoftmax": linear.log_softmax,
    "ReduceMean": linear.reduce_mean,
    "ReduceSum": linear.reduce_sum,
    "ReduceMax": linear.reduce_max,
    "ReduceMin": linear.reduce_max,
    # activations
    "Relu": ew.relu,
    "LeakyRelu": ew.leaky_relu,
    "PRelu": ew.prelu,
    "Clip": ew.clip,
    "Elu": ew.elu,
    "Selu": ew.selu,
    "Celu": ew.celu,
    "ThresholdedRelu": ew.thresholded_relu,
    "Sigmoid": ew.sigmoid,
    "HardSigmoid": ew.hard_sigmoid,
    "HardSwish": ew.hard_swish,
    "Tanh": ew.tanh,
    "Softplus": ew.softplus,
    "Softsign": ew.softsign,
    # arithmetic
    "Add": ew.add,
    "Sum": ew.add,
    "Sub": ew.sub,
    "Mul": ew.mul,
    "Div": ew.div,
    "Pow": ew.pow_,
    "Mean": ew.mean,
    "Neg": ew.neg,
    "Abs": ew.abs_,
    "Exp": ew.exp,
    "Log": ew.log,
    "Sqrt": ew.sqrt,
    "Reciprocal": ew.reciprocal,
    "Where": ew.where,
    "Cast": ew.cast,
    "Floor": ew.zero,
    "Ceil": ew.zero,
    "Round": ew.zero,
    "Sign": ew.zero,
    # moving values around
    "Reshape": shapes.reshape,
    "Flatten": shapes.reshape,
    "Squeeze": shapes.reshape,
    "Unsqueeze": shapes.reshape,
    "Identity": shapes.reshape,
    "Dropout": shapes.reshape,
    "Transpose": shapes.transpose,
    "Concat": shapes.concat,
    "Split": shapes.split,
    "Slice": shapes.slice_,
    "Gather": shapes.gather,
    "Expand": shapes.expand,
    "Tile": shapes.tile,
    "Pad": shapes.pad,
}
