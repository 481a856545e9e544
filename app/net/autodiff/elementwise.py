"""Backward rules of element-wise ops: activations and broadcasting arithmetic."""
import math

import numpy as np
from scipy import special

from app.net.autodiff.op import Op, unbroadcast


BLOCK_ELEMENTS = 1 << 20  # a block of images this big keeps its mask in cache (32 x 96 x 112 x 112: 1.3x)


# NOTE: masks multiply rather than np.where(mask, dy, 0), which is several times slower on large maps.
def gated(dy: np.ndarray, x: np.ndarray, mask, in_place: bool = False) -> np.ndarray:
    """dy * mask(x) (in_place: into dy), a block of images at a time when the batch is big."""
    if dy.ndim == 0 or x.shape != dy.shape or dy.size <= BLOCK_ELEMENTS:
        if not in_place:
            return dy * mask(x)
        dy *= mask(x)
        return dy
    out = dy if in_place else np.empty_like(dy)
    per = max(1, BLOCK_ELEMENTS // dy[0].size)
    for start in range(0, len(dy), per):
        block = slice(start, start + per)
        np.multiply(dy[block], mask(x[block]), out=out[block])
    return out


def positive(x: np.ndarray) -> np.ndarray:
    return x > 0


def relu_mask(op: Op):
    """Where Relu passes its diff, as a function of x: x > 0, so the diff at exactly 0 is 0 (as Caffe
    and PyTorch do)."""
    return positive


def relu(op: Op):
    return [gated(op.dy, op.x, relu_mask(op))]


def leaky_relu(op: Op):
    alpha = op.attrs.get("alpha", 0.01)
    return [np.where(op.x > 0, op.dy, op.dy * alpha)]


def prelu(op: Op):
    x, slope = op.inputs[:2]
    dx = np.where(x > 0, op.dy, op.dy * slope) if op.wants[0] else None
    dslope = unbroadcast(np.where(x > 0, 0, op.dy * x), slope.shape) if op.wants[1] else None
    return [dx, dslope]


def clip_bounds(op: Op) -> tuple:
    """(low, high) of a Clip node: attributes before opset 11, optional inputs after."""
    if op.opset < 11:
        return op.attrs.get("min", -np.inf), op.attrs.get("max", np.inf)
    return op.input(1, -np.inf), op.input(2, np.inf)


def inside(x: np.ndarray, low, high) -> np.ndarray:
    gate = x > low
    np.logical_and(gate, x < high, out=gate)
    return gate


def clip_mask(op: Op):
    """Where Clip passes its diff, as a function of x: strictly inside the bounds (ReLU6 at 0 or 6
    passes none, as in PyTorch)."""
    low, high = clip_bounds(op)
    return lambda x: inside(x, low, high)


def clip(op: Op):
    return [gated(op.dy, op.x, clip_mask(op))]


def elu(op: Op):
    alpha = op.attrs.get("alpha", 1.0)
    return [np.where(op.x > 0, op.dy, op.dy * (op.y + alpha))]


def selu(op: Op):
    alpha, gamma = op.attrs.get("alpha", 1.67326319217681884765625), op.attrs.get("gamma", 1.05070102214813232421875)
    return [np.where(op.x > 0, op.dy * gamma, op.dy * (op.y + alpha * gamma))]


def celu(op: Op):
    alpha = op.attrs.get("alpha", 1.0)
    return [np.where(op.x > 0, op.dy, op.dy * np.exp(op.x / alpha))]


def thresholded_relu(op: Op):
    return [np.where(op.x > op.attrs.get("alpha", 1.0), op.dy, 0)]


def sigmoid(op: Op):
    return [op.dy * op.y * (1 - op.y)]


def hard_sigmoid(op: Op):
    alpha, beta = op.attrs.get("alpha", 0.2), op.attrs.get("beta", 0.5)
    inner = alpha * op.x + beta
    return [np.where((inner > 0) & (inner < 1), op.dy * alpha, 0)]


def hard_swish(op: Op):
    # y = x * hardsigmoid(x) with alpha 1/6, beta 1/2: y' = 0 below -3, 1 above 3, x/3 + 1/2 between.
    x = op.x
    slope = np.where(x >= 3, 1, np.where(x > -3, x / 3 + 0.5, 0))
    return [(op.dy * slope)]


def tanh(op: Op):
    return [op.dy * (1 - op.y * op.y)]


def softplus(op: Op):
    return [op.dy / (1 + np.exp(-op.x))]


def softsign(op: Op):
    return [op.dy / np.square(1 + np.abs(op.x))]


def gelu(op: Op):
    """y = x * Phi(x), Phi the normal CDF, or with approximate="tanh" x/2 * (1 + tanh(u)),
    u = sqrt(2/pi) * (x + 0.044715 x^3)."""
    x = op.x
    if op.attrs.get("approximate", "none") == "tanh":
        t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
    else:
        slope = 0.5 * (1 + special.erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return [op.dy * slope]


def erf(op: Op):
    return [op.dy * (2 / math.sqrt(math.pi)) * np.exp(-op.x * op.x)]


def mish(op: Op):
    """y = x * tanh(softplus(x)): y' = tanh(sp) + x * (1 - tanh(sp)^2) * sigmoid(x)."""
    x = op.x
    t = np.tanh(np.logaddexp(0, x))
    return [op.dy * (t + x * (1 - t * t) * special.expit(x))]


def exp(op: Op):
    return [op.dy * op.y]


def log(op: Op):
    return [op.dy / op.x]


def sqrt(op: Op):
    return [op.dy / (2 * op.y)]


def reciprocal(op: Op):
    return [-op.dy * op.y * op.y]


def neg(op: Op):
    return [-op.dy]


def abs_(op: Op):
    return [op.dy * np.sign(op.x)]


def zero(op: Op):
    """Piecewise-constant ops (Floor, Ceil, Round, Sign): no diff flows."""
    return []


def add(op: Op):
    return [unbroadcast(op.dy, v.shape) if want else None for v, want in zip(op.inputs, op.wants)]


def sub(op: Op):
    a, b = op.inputs
    return [unbroadcast(op.dy, a.shape) if op.wants[0] else None,
            unbroadcast(-op.dy, b.shape) if op.wants[1] else None]


def mul(op: Op):
    a, b = op.inputs
    return [unbroadcast(op.dy * b, a.shape) if op.wants[0] else None,
            unbroadcast(op.dy * a, b.shape) if op.wants[1] else None]


def div(op: Op):
    a, b = op.inputs
    da = op.dy / b
    return [unbroadcast(da, a.shape) if op.wants[0] else None,
            unbroadcast(-da * op.y, b.shape) if op.wants[1] else None]


def pow_(op: Op):
    base, exponent = op.inputs
    dbase = unbroadcast(op.dy * exponent * np.power(base, exponent - 1), base.shape) if op.wants[0] else None
    dexp = unbroadcast(op.dy * op.y * np.log(base), exponent.shape) if op.wants[1] else None
    return [dbase, dexp]


def mean(op: Op):
    share = op.dy / len(op.inputs)
    return [unbroadcast(share, v.shape) if want else None for v, want in zip(op.inputs, op.wants)]


def extreme(op: Op):
    """Max / Min of several inputs: each element's diff goes to the first input holding the result
    (as Caffe's Eltwise MAX routes it)."""
    taken = np.zeros(op.y.shape, bool)
    diffs = []
    for value, want in zip(op.inputs, op.wants):
        holds = np.broadcast_to(value, op.y.shape) == op.y
        holds &= ~taken
        taken |= holds
        diffs.append(unbroadcast(op.dy * holds, value.shape) if want else None)
    return diffs


def where(op: Op):
    condition, a, b = op.inputs
    return [None,
            unbroadcast(np.where(condition, op.dy, 0), a.shape) if op.wants[1] else None,
            unbroadcast(np.where(condition, 0, op.dy), b.shape) if op.wants[2] else None]


def cast(op: Op):
    return [op.dy.astype(op.x.dtype, copy=False)]
