"""Backward rules of pooling and local response normalisation.

Max pooling routes each output's diff to the element its window picked in the forward pass (the
"switch": the first maximum in scan order, as Caffe, ONNX Runtime and PyTorch pick it). That is both
the gradient and Zeiler & Fergus' switch unpooling, so no backprop mode changes it.
"""
import numpy as np

from app.net.autodiff.geometry import Windows
from app.net.autodiff.op import Op


def max_pool(op: Op):
    x = op.x
    windows = Windows.of(op.attrs, x.shape[2:], op.attrs["kernel_shape"], op.y.shape[2:])
    return [_route(op.output_diff(0), _switches(windows.pad(x, -np.inf), windows), windows, x.shape)]


def _switches(padded: np.ndarray, windows: Windows) -> np.ndarray:
    """Per output, the index (in scan order) of its window's first maximal tap: a running maximum over
    taps, a handful of passes over the output rather than one argmax per tiny window."""
    best = switches = None
    for index, tap in enumerate(windows.taps):
        values = padded[(slice(None), slice(None)) + windows.tap_slices(tap)]
        if best is None:
            best, switches = values.copy(), np.zeros(values.shape, np.int32)
            continue
        better = values > best  # strict: on ties the earlier tap keeps the switch
        # indices grow tap by tap, so max() sets the switch exactly where this tap is better
        np.maximum(switches, better * np.int32(index), out=switches)
        np.maximum(best, values, out=best)
    return switches


def _route(dy: np.ndarray, switches: np.ndarray, windows: Windows, x_shape: tuple) -> np.ndarray:
    """Add each output's diff at the padded-input element its switch names, then drop the padding."""
    extent = windows.extent
    strides = np.cumprod((1,) + extent[::-1])[:-1][::-1]  # element strides of the padded spatial axes
    plane = int(np.prod(extent))
    rank = len(extent)
    start = sum(np.arange(o).reshape((-1,) + (1,) * (rank - 1 - i)) * s * st
                for i, (o, s, st) in enumerate(zip(windows.out, windows.strides, strides)))
    taps = np.array([sum(t * d * st for t, d, st in zip(tap, windows.dilations, strides)) for tap in windows.taps])
    channels = np.arange(x_shape[0] * x_shape[1]).reshape(x_shape[:2] + (1,) * rank) * plane
    index = (channels + start + taps[switches]).ravel()
    size = x_shape[0] * x_shape[1] * plane
    overlapping = any(s < (k - 1) * d + 1 for s, k, d in zip(windows.strides, windows.kernel, windows.dilations))
    if overlapping:
        flat = np.bincount(index, weights=dy.ravel(), minlength=size).astype(dy.dtype)
    else:
        flat = np.zeros(size, dy.dtype)
        flat[index] = dy.ravel()
    padded = flat.reshape(x_shape[:2] + extent)
    return padded[(slice(None), slice(None)) + windows.data_slices]


def global_max_pool(op: Op):
    flat = op.x.reshape(op.x.shape[:2] + (-1,))
    dflat = np.zeros(flat.shape, op.dy.dtype)
    np.put_along_axis(dflat, flat.argmax(axis=-1)[..., None], op.dy.reshape(flat.shape[:2] + (1,)), axis=-1)
    return [dflat.reshape(op.x.shape)]


def average_pool(op: Op):
    x = op.x
    windows = Windows.of(op.attrs, x.shape[2:], op.attrs["kernel_shape"], op.y.shape[2:])
    share = op.dy / divisors(windows, op.attrs.get("count_include_pad", 0)).astype(op.dy.dtype)
    padded = np.zeros(x.shape[:2] + windows.extent, op.dy.dtype)
    for tap in windows.taps:
        padded[(slice(None), slice(None)) + windows.tap_slices(tap)] += share
    return [padded[(slice(None), slice(None)) + windows.data_slices]]


def divisors(windows: Windows, count_include_pad: int) -> np.ndarray:
    """How many elements each window averaged: the data only, or the data and declared padding
    (never the part of a ceil-mode window that reaches past the padding)."""
    divisor = np.ones((), np.int64)
    for i, (size, begin, end) in enumerate(zip(windows.size, windows.begins, windows.ends or windows.begins)):
        low, high = (0, begin + size + end) if count_include_pad else (begin, begin + size)
        reads = (np.arange(windows.out[i])[:, None] * windows.strides[i]
                 + np.arange(windows.kernel[i])[None, :] * windows.dilations[i])
        count = ((reads >= low) & (reads < high)).sum(axis=1)
        divisor = np.multiply.outer(divisor, count)
    return divisor


def global_average_pool(op: Op):
    count = int(np.prod(op.x.shape[2:]))
    return [np.broadcast_to(op.dy / count, op.x.shape).copy()]


def lrn(op: Op):
    """y = x / s^beta with s = bias + alpha/size * (sum of x^2 over a window of channels)."""
    x, dy = op.x, op.dy
    size = op.attrs["size"]
    alpha, beta, bias = op.attrs.get("alpha", 1e-4), op.attrs.get("beta", 0.75), op.attrs.get("bias", 1.0)
    before, after = (size - 1) // 2, size // 2  # the window is c - floor((size-1)/2) .. c + ceil((size-1)/2)
    scale = bias + (alpha / size) * _channel_window_sum(x * x, before, after)
    factor = scale ** -beta
    y = x * factor
    # each channel also moves the scale of the outputs whose windows contain it: the mirrored window
    spread = _channel_window_sum(dy * y / scale, after, before)
    return [dy * factor - (2 * alpha * beta / size) * x * spread]


def lrn_passthrough(op: Op):
    """The deconv option that treats LRN as the identity on the way back."""
    return [op.dy]


def _channel_window_sum(values: np.ndarray, before: int, after: int) -> np.ndarray:
    """out[:, c] = sum of values[:, c - before .. c + after] (channels outside are zero)."""
    total = np.zeros_like(values)
    channels = values.shape[1]
    for shift in range(-before, after + 1):
        if shift >= 0:
            total[:, :channels - shift] += values[:, shift:]
        else:
            total[:, -shift:] += values[:, :channels + shift]
    return total
