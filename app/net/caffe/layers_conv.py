"""Convolution, Deconvolution and InnerProduct."""
from app.net.caffe.registry import LayerContext, converts


def _pair(repeated, single_h, single_w, has_h: bool, default: int) -> tuple:
    """Caffe's h/w value: the _h/_w fields if set, else the repeated field (one or two values)."""
    if has_h:
        return int(single_h), int(single_w)
    values = list(repeated) or [default]
    return (int(values[0]), int(values[-1]))


def conv_geometry(p) -> dict:
    """Kernel, stride, pad and dilation (h, w) of a ConvolutionParameter."""
    return dict(
        kernel=_pair(p.kernel_size, p.kernel_h, p.kernel_w, p.HasField("kernel_h"), 1),
        stride=_pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1),
        pad=_pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h") or p.HasField("pad_w"), 0),
        dilation=_pair(p.dilation, 0, 0, False, 1),
    )


def checked_geometry(ctx: LayerContext, geometry: dict) -> dict:
    """The geometry, or one line saying which value Caffe itself would refuse."""
    for key, least in (("kernel", 1), ("stride", 1), ("dilation", 1), ("pad", 0)):
        if min(geometry[key]) < least:
            ctx.fail(f"{key} {geometry[key]} must be at least {least}")
    return geometry


def _groups(ctx: LayerContext, p, channels: int) -> int:
    """The group count, checked: it divides both the input channels and num_output."""
    if p.num_output < 1:
        ctx.fail(f"num_output {p.num_output} must be at least 1")
    if p.group < 1 or channels % p.group or p.num_output % p.group:
        ctx.fail(f"group {p.group} must divide the {channels} input channels and num_output {p.num_output}")
    return p.group


def _conv_attributes(geometry: dict, group: int) -> dict:
    pad_h, pad_w = geometry["pad"]
    return dict(kernel_shape=list(geometry["kernel"]), strides=list(geometry["stride"]),
                pads=[pad_h, pad_w, pad_h, pad_w], dilations=list(geometry["dilation"]), group=group)


@converts("Convolution")
def convolution(ctx: LayerContext) -> list:
    p = ctx.param("convolution_param")
    channels = ctx.shape()[1]
    geometry, group = checked_geometry(ctx, conv_geometry(p)), _groups(ctx, p, channels)
    if p.axis != 1:
        ctx.fail(f"axis {p.axis} is not supported (only 1)")
    weight = ctx.blob(0, (p.num_output, channels // group) + geometry["kernel"])
    inputs = [ctx.x, ctx.const("W", weight)]
    if p.bias_term:
        inputs.append(ctx.const("b", ctx.blob(1, (p.num_output,))))
    return [ctx.output("Conv", inputs, **_conv_attributes(geometry, group))]


@converts("Deconvolution")
def deconvolution(ctx: LayerContext) -> list:
    p = ctx.param("convolution_param")
    channels = ctx.shape()[1]
    geometry, group = checked_geometry(ctx, conv_geometry(p)), _groups(ctx, p, channels)
    weight = ctx.blob(0, (channels, p.num_output // group) + geometry["kernel"])
    inputs = [ctx.x, ctx.const("W", weight)]
    if p.bias_term:
        inputs.append(ctx.const("b", ctx.blob(1, (p.num_output,))))
    return [ctx.output("ConvTranspose", inputs, **_conv_attributes(geometry, group))]


@converts("InnerProduct")
def inner_product(ctx: LayerContext) -> list:
    p = ctx.param("inner_product_param")
    if p.num_output < 1:
        ctx.fail(f"num_output {p.num_output} must be at least 1")
    shape = ctx.shape()
    axis = p.axis % len(shape)
    fan_in = 1
    for dim in shape[axis:]:
        fan_in *= dim
    weight = ctx.blob(0, (fan_in, p.num_output) if p.transpose else (p.num_output, fan_in))
    bias = ctx.const("b", ctx.blob(1, (p.num_output,))) if p.bias_term else None
    if axis == 1:
        flat = ctx.temp("Flatten", [ctx.x], "flatten", axis=1) if len(shape) != 2 else ctx.x
        inputs = [flat, ctx.const("W", weight)] + ([bias] if bias else [])
        return [ctx.output("Gemm", inputs, transB=0 if p.transpose else 1)]
    # Leading axes kept: [d0..d(axis-1), fan_in] @ W^T (+ b)
    flat = ctx.temp("Reshape", [ctx.x, ctx.const("shape", [0] * axis + [fan_in])], "flatten")
    matrix = weight if p.transpose else weight.T
    if bias is None:
        return [ctx.output("MatMul", [flat, ctx.const("W", matrix)])]
    product = ctx.temp("MatMul", [flat, ctx.const("W", matrix)], "matmul")
    return [ctx.output("Add", [product, bias])]
