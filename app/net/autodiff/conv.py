"""Backward rules of Conv and ConvTranspose (groups, depthwise, dilation, strides, any pads).

Conv's diff to its input is the transposed convolution of the output diff: one matrix product
(weights^T x diff) gives every tap's contribution (col), which col2im adds where the tap read.
Depthwise convolutions skip the product (depthwise.py). When the diff is a pass's seed (often one
channel alone), output channels whose diff is all zero are left out of the product.
"""
import numpy as np

from app.net.autodiff import depthwise
from app.net.autodiff.geometry import SAME, Windows, split_padding
from app.net.autodiff.op import Op

SPARSE_GROUP_LIMIT = 8  # above this many groups holding non-zero channels, one batched product is faster


def conv(op: Op):
    x, w = op.inputs[:2]
    group = op.attrs.get("group", 1)
    windows = Windows.of(op.attrs, x.shape[2:], w.shape[2:], op.dy.shape[2:])
    dx = input_diff(op.dy, w, x.shape, windows, group, op.seeded, op.session_options) if op.wants[0] else None
    dw = weight_diff(op.dy, x, w.shape, windows, group) if op.wants[1] else None
    db = op.dy.sum(axis=(0,) + tuple(range(2, op.dy.ndim))) if len(op.wants) > 2 and op.wants[2] else None
    return [dx, dw, db]


def input_diff(dy: np.ndarray, w: np.ndarray, x_shape: tuple, windows: Windows, group: int,
               seeded: bool = False, session_options=None) -> np.ndarray:
    """The diff of Conv's input: the transposed convolution of dy with w (seeded: dy is a pass's seed,
    worth searching for all-zero channels; session_options: see depthwise.input_diff)."""
    n, c_in = x_shape[:2]
    w = w.astype(dy.dtype, copy=False)
    if w.shape[1] == 1 and group > 1:
        return depthwise.input_diff(dy, w, x_shape, windows, group, session_options)
    blocks = _tap_products(dy, w, group, seeded)
    if windows.is_identity and len(blocks) == 1 and blocks[0][0] == slice(None):
        return blocks[0][1].reshape(x_shape)
    padded = np.zeros((n, c_in) + windows.extent, dy.dtype)
    for channels, cols in blocks:
        windows.scatter(padded, cols.reshape((n, -1) + windows.kernel + windows.out), channels)
    return padded[(slice(None), slice(None)) + windows.data_slices]


def _tap_products(dy: np.ndarray, w: np.ndarray, group: int, seeded: bool) -> list:
    """[(input channel slice, cols N x (C_in' * taps) x out)]: every tap's contribution before col2im.

    One block (all input channels) for a dense diff; for a seed with few non-zero channels, one block
    per group holding one of them.
    """
    n, c_out = dy.shape[:2]
    flat_dy = dy.reshape(n, c_out, -1)
    flat_w = w.reshape(c_out, -1)
    if seeded:
        blocks = _live_channel_products(flat_dy, flat_w, group, w.shape[1])
        if blocks is not None:
            return blocks
    if group == 1:
        return [(slice(None), np.matmul(flat_w.T, flat_dy))]
    grouped_w = np.swapaxes(flat_w.reshape(group, c_out // group, -1), 1, 2)
    cols = np.matmul(grouped_w, flat_dy.reshape(n, group, c_out // group, -1))
    return [(slice(None), cols)]


def _live_channel_products(flat_dy, flat_w, group: int, c_in_g: int):
    """The products of the non-zero output channels alone, None when too many are non-zero."""
    c_out = flat_dy.shape[1]
    c_out_g = c_out // group
    live = np.flatnonzero(flat_dy.any(axis=(0, 2)))
    live_groups = np.unique(live // c_out_g)
    if len(live) > c_out // 2 or len(live_groups) > SPARSE_GROUP_LIMIT:
        return None
    blocks = []
    for g in live_groups:
        chosen = live[live // c_out_g == g]
        blocks.append((slice(g * c_in_g, (g + 1) * c_in_g), np.matmul(flat_w[chosen].T, flat_dy[:, chosen])))
    return blocks


def weight_diff(dy: np.ndarray, x: np.ndarray, w_shape: tuple, windows: Windows, group: int) -> np.ndarray:
    """The diff of Conv's weights: dy correlated with the (padded) input, summed over the batch."""
    n, c_out = dy.shape[:2]
    c_out_g = c_out // group
    cols = np.ascontiguousarray(windows.view(windows.pad(x.astype(dy.dtype, copy=False))))
    cols = cols.reshape(n, group, -1, int(np.prod(windows.out)))  # N x G x (C_in_g * taps) x out
    per_group = np.matmul(dy.reshape(n, group, c_out_g, -1), np.swapaxes(cols, 2, 3)).sum(axis=0)
    return per_group.reshape(w_shape)


def conv_transpose(op: Op):
    """ConvTranspose: its input diff is an ordinary convolution of the output diff with its weights."""
    x, w = op.inputs[:2]
    group = op.attrs.get("group", 1)
    full_dy, windows = _full_output_diff(op, x.shape, w.shape)
    cols = np.ascontiguousarray(windows.view(full_dy))  # N x C_out x taps... x input positions...
    n, c_in_g, c_out_g = x.shape[0], w.shape[0] // group, w.shape[1]
    cols = cols.reshape(n, group, c_out_g * int(np.prod(windows.kernel)), -1)
    dx = dw = None
    if op.wants[0]:
        grouped_w = w.astype(op.dy.dtype, copy=False).reshape(group, c_in_g, -1)
        dx = np.matmul(grouped_w, cols).reshape(x.shape)
    if op.wants[1]:
        flat_x = x.reshape(n, group, c_in_g, -1)
        dw = np.matmul(flat_x, np.swapaxes(cols, 2, 3)).sum(axis=0).reshape(w.shape)
    db = op.dy.sum(axis=(0,) + tuple(range(2, op.dy.ndim))) if len(op.wants) > 2 and op.wants[2] else None
    return [dx, dw, db]


def _full_output_diff(op: Op, x_shape: tuple, w_shape: tuple):
    """The output diff placed in the uncropped output (before pads were cut), and the windows that
    read it: input position i, tap t wrote full-output position i * stride + t * dilation."""
    attrs, size, kernel, out = op.attrs, x_shape[2:], w_shape[2:], op.dy.shape[2:]
    n = len(kernel)
    strides = attrs.get("strides") or [1] * n
    dilations = attrs.get("dilations") or [1] * n
    extra = attrs.get("output_padding") or [0] * n
    full = [(i - 1) * s + (k - 1) * d + 1 + e for i, s, k, d, e in zip(size, strides, kernel, dilations, extra)]
    totals = [f - o for f, o in zip(full, out)]
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if "output_shape" in attrs or auto_pad in SAME:
        begins = [split_padding(t, auto_pad)[0] for t in totals]
    else:
        begins = (attrs.get("pads") or [0] * 2 * n)[:n]
    reading = Windows(tuple(out), tuple(kernel), tuple(strides), tuple(dilations), tuple(begins), tuple(size))
    buffer = np.zeros(op.dy.shape[:2] + tuple(max(f, e) for f, e in zip(full, reading.extent)), op.dy.dtype)
    buffer[(slice(None), slice(None)) + reading.data_slices] = op.dy
    return buffer, reading
