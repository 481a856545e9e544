"""Pooling (Caffe's ceil rounding and pad rules) and LRN."""
from app.net.caffe.registry import LayerContext, converts

_MAX, _AVE = 0, 1
_CEIL = 0


def _geometry(p) -> tuple:
    kernel = (p.kernel_h, p.kernel_w) if p.HasField("kernel_h") else (p.kernel_size,) * 2
    stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride,) * 2
    pad = (p.pad_h, p.pad_w) if (p.HasField("pad_h") or p.HasField("pad_w")) else (p.pad,) * 2
    return kernel, stride, pad


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Caffe's output size: ceil (or floor) division, and the last window must start in the image."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@converts("Pooling")
def pooling(ctx: LayerContext) -> list:
    p = ctx.param("pooling_param")
    if p.pool not in (_MAX, _AVE):
        ctx.fail("only MAX and AVE pooling can be converted")
    if p.global_pooling:
        return [ctx.output("GlobalMaxPool" if p.pool == _MAX else "GlobalAveragePool", [ctx.x])]
    kernel, stride, pad = _geometry(p)
    if min(kernel) < 1 or min(stride) < 1 or min(pad) < 0 or any(pad[i] >= kernel[i] for i in range(2)):
        ctx.fail(f"kernel {kernel}, stride {stride}, pad {pad}: kernel and stride must be at least 1, "
                 "pad at least 0 and smaller than the kernel")
    ceil = p.round_mode == _CEIL
    size = ctx.shape()[2:]
    outs = [pooled_size(size[i], kernel[i], stride[i], pad[i], ceil) for i in range(2)]
    # Extra end padding makes ONNX's floor rounding give Caffe's output size.
    ends = [max(0, (outs[i] - 1) * stride[i] + kernel[i] - size[i] - pad[i]) for i in range(2)]
    attributes = dict(kernel_shape=list(kernel), strides=list(stride))
    if p.pool == _MAX:
        return [ctx.output("MaxPool", [ctx.x], pads=[pad[0], pad[1], ends[0], ends[1]], **attributes)]
    # NOTE: Caffe's AVE divides by the window clipped to the padded image: the declared padding
    # counts, the extra end padding does not. So pad with zeros first, then exclude the rest.
    x = ctx.x
    if any(pad):
        pads = ctx.const("pads", [0, 0, pad[0], pad[1], 0, 0, pad[0], pad[1]])
        x = ctx.temp("Pad", [x, pads], "pad")
        ends = [max(0, ends[i] - pad[i]) for i in range(2)]
    return [ctx.output("AveragePool", [x], pads=[0, 0, ends[0], ends[1]], count_include_pad=0, **attributes)]


@converts("LRN")
def lrn(ctx: LayerContext) -> list:
    p = ctx.param("lrn_param")
    if p.norm_region == 0:  # ACROSS_CHANNELS
        return [ctx.output("LRN", [ctx.x], size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)]
    # WITHIN_CHANNEL: x * (1 + alpha * mean_{size x size}(x^2))^-beta; Caffe ignores k here
    half = (p.local_size - 1) // 2
    square = ctx.temp("Mul", [ctx.x, ctx.x], "square")
    mean = ctx.temp("AveragePool", [square], "mean", kernel_shape=[p.local_size] * 2,
                    pads=[half] * 4, count_include_pad=1)
    scaled = ctx.temp("Mul", [mean, ctx.const("alpha", p.alpha)], "scaled")
    base = ctx.temp("Add", [scaled, ctx.const("one", 1.0)], "base")
    factor = ctx.temp("Pow", [base, ctx.const("power", -p.beta)], "factor")
    return [ctx.output("Mul", [ctx.x, factor])]
