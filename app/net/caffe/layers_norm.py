"""BatchNorm, Scale and Bias."""
import numpy as np

from app.net.caffe.registry import LayerContext, converts


@converts("BatchNorm")
def batch_norm(ctx: LayerContext) -> list:
    p = ctx.param("batch_norm_param")
    if p.HasField("use_global_stats") and not p.use_global_stats:
        ctx.fail("use_global_stats: false (batch statistics) cannot be converted for inference")
    channels = ctx.shape()[1]
    mean, variance = ctx.blob(0, (channels,)), ctx.blob(1, (channels,))
    factor = ctx.blob(2, (1,))[0] if ctx.has_blob(2) else 1.0
    factor = 0.0 if factor == 0 else 1.0 / factor  # Caffe keeps running sums scaled by this blob
    inputs = [ctx.x, ctx.const("gamma", np.ones(channels)), ctx.const("beta", np.zeros(channels)),
              ctx.const("mean", mean * factor), ctx.const("var", variance * factor)]
    return [ctx.output("BatchNormalization", inputs, epsilon=p.eps)]


def _broadcast_shape(ctx: LayerContext, axis: int, num_axes: int) -> tuple:
    """The parameter's shape (input dims axis..axis+num_axes) and its broadcastable form."""
    shape = ctx.shape()
    axis %= len(shape)
    end = len(shape) if num_axes == -1 else axis + num_axes
    own = tuple(shape[axis:end])
    return own, own + (1,) * (len(shape) - end)


def _scale_or_bias(ctx: LayerContext, param, op: str, has_bias: bool) -> list:
    if len(ctx.inputs) > 1:  # the factor is a second bottom
        factor_shape = ctx.shape(1)
        own, broadcast = _broadcast_shape(ctx, param.axis, len(factor_shape))
        factor = ctx.temp("Reshape", [ctx.inputs[1], ctx.const("shape", broadcast)], "factor")
        first_blob = 0
    else:
        own, broadcast = _broadcast_shape(ctx, param.axis, param.num_axes)
        factor = ctx.const("factor", ctx.blob(0, own).reshape(broadcast))
        first_blob = 1
    if not has_bias:
        return [ctx.output(op, [ctx.x, factor])]
    scaled = ctx.temp(op, [ctx.x, factor], "scaled")
    bias = ctx.const("bias", ctx.blob(first_blob, own).reshape(broadcast))
    return [ctx.output("Add", [scaled, bias])]


@converts("Scale")
def scale(ctx: LayerContext) -> list:
    p = ctx.param("scale_param")
    return _scale_or_bias(ctx, p, "Mul", p.bias_term)


@converts("Bias")
def bias(ctx: LayerContext) -> list:
    return _scale_or_bias(ctx, ctx.param("bias_param"), "Add", False)
