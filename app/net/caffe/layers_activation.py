"""Element-wise layers: ReLU, PReLU, Sigmoid, TanH, ELU, AbsVal, Power, BNLL, Dropout, Softmax."""
from app.net.caffe.registry import LayerContext, converts


@converts("ReLU")
def relu(ctx: LayerContext) -> list:
    slope = ctx.param("relu_param").negative_slope
    if slope:
        return [ctx.output("LeakyRelu", [ctx.x], alpha=slope)]
    return [ctx.output("Relu", [ctx.x])]


@converts("PReLU")
def prelu(ctx: LayerContext) -> list:
    shape = ctx.shape()
    shared = ctx.param("prelu_param").channel_shared
    slope = ctx.blob(0, (1,) if shared else (shape[1],))
    if not shared:  # one slope per channel, broadcast over the axes after it
        slope = slope.reshape((shape[1],) + (1,) * (len(shape) - 2))
    return [ctx.output("PRelu", [ctx.x, ctx.const("slope", slope)])]


@converts("Sigmoid")
def sigmoid(ctx: LayerContext) -> list:
    return [ctx.output("Sigmoid", [ctx.x])]


@converts("TanH")
def tanh(ctx: LayerContext) -> list:
    return [ctx.output("Tanh", [ctx.x])]


@converts("ELU")
def elu(ctx: LayerContext) -> list:
    return [ctx.output("Elu", [ctx.x], alpha=ctx.param("elu_param").alpha)]


@converts("AbsVal")
def absval(ctx: LayerContext) -> list:
    return [ctx.output("Abs", [ctx.x])]


@converts("BNLL")
def bnll(ctx: LayerContext) -> list:
    return [ctx.output("Softplus", [ctx.x])]


@converts("Dropout")
def dropout(ctx: LayerContext) -> list:
    return [ctx.output("Identity", [ctx.x])]


@converts("Power")
def power(ctx: LayerContext) -> list:
    """(shift + scale * x) ^ power."""
    p = ctx.param("power_param")
    x = ctx.x
    if p.scale != 1:
        x = ctx.temp("Mul", [x, ctx.const("scale", p.scale)], "scale")
    if p.shift != 0:
        x = ctx.temp("Add", [x, ctx.const("shift", p.shift)], "shift")
    if p.power == 1:
        return [ctx.output("Identity", [x])]
    return [ctx.output("Pow", [x, ctx.const("power", p.power)])]


@converts("Softmax")
def softmax(ctx: LayerContext) -> list:
    return [ctx.output("Softmax", [ctx.x], axis=ctx.param("softmax_param").axis)]
