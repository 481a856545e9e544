"""The diff of a depthwise convolution's input (one input channel per group), without a matrix product.

The transposed convolution splits into stride^rank phases: input pixels y = r (mod stride) are
reached by their own subset of taps, at consecutive positions of dy, so each phase is a small
correlation of (padded) dy. In float32 ONNX Runtime's depthwise Conv runs every phase in one call
(ort_conv.py). In float64 (the finite-difference tests), with many channels, each phase is one
channels-last einsum over a strided view (a single fused pass whose inner loop runs along contiguous
channels); with few, each tap adds weight * dy where it read (long pixel rows).
"""
from itertools import product
from string import ascii_letters

import numpy as np

from app.net.autodiff import ort_conv
from app.net.autodiff.geometry import Windows

GATHER_MIN_CHANNELS = 128  # below this, channel rows are too short for the gather to win (measured)


def input_diff(dy: np.ndarray, w: np.ndarray, x_shape: tuple, windows: Windows, group: int) -> np.ndarray:
    one_per_group = dy.shape[1] == group
    if one_per_group and dy.dtype == np.float32:
        return _onnx_runtime(dy, w, x_shape, windows)
    if one_per_group and group >= GATHER_MIN_CHANNELS:
        return _gather(dy, w, x_shape, windows)
    return _scatter(dy, w, x_shape, windows, group)


def _scatter(dy, w, x_shape, windows: Windows, group: int) -> np.ndarray:
    """Per tap, weight * dy added into the padded input where that tap read."""
    n, multiplier = x_shape[0], dy.shape[1] // group
    taps = w.reshape((group, multiplier) + windows.kernel)
    per_group = dy.reshape((n, group, multiplier) + windows.out)
    padded = np.zeros((n, group) + windows.extent, dy.dtype)
    scaled = None
    for m in range(multiplier):
        for tap in windows.taps:
            weights = taps[(slice(None), m) + tap].reshape((group,) + (1,) * len(tap))
            scaled = np.multiply(per_group[:, :, m], weights, out=scaled)
            padded[(slice(None), slice(None)) + windows.tap_slices(tap)] += scaled
    return padded[(slice(None), slice(None)) + windows.data_slices]


def _phases(size: int, kernel: int, stride: int, dilation: int, begin: int) -> list:
    """Per residue r of the input position y mod stride: (r, how many such y, taps reaching them, the dy
    offset of each tap). Input y = r + stride * m reads dy[m + offset] through each of its taps;
    taps come in the order that makes the offsets increase by a constant step."""
    phases = []
    for r in range(stride):
        taps = [t for t in range(kernel) if (r + begin - t * dilation) % stride == 0][::-1]
        offsets = [(r + begin - t * dilation) // stride for t in taps]
        phases.append((r, len(range(r, size, stride)), taps, offsets))
    return phases


def _phase_plan(x_shape: tuple, windows: Windows) -> tuple:
    """(the phases with taps and pixels, each a tuple of per-axis phases; the padding dy needs before
    and after, per axis, so that every phase reads inside it)."""
    per_dim = [_phases(*args) for args in zip(x_shape[2:], windows.kernel, windows.strides, windows.dilations,
                                              windows.begins)]
    low = [max([0] + [-o for _, _, _, offs in phases for o in offs]) for phases in per_dim]
    high = [max([0] + [count - 1 + o - (out - 1) for _, count, _, offs in phases for o in offs])
            for phases, out in zip(per_dim, windows.out)]
    phases = [phase for phase in product(*per_dim) if all(taps and count for _, count, taps, _ in phase)]
    return phases, low, high


def _phase_target(phase: tuple, windows: Windows) -> tuple:
    """The input pixels of a phase: every stride-th from its residue, per axis."""
    return tuple(slice(r, None, s) for (r, _, _, _), s in zip(phase, windows.strides))


def _onnx_runtime(dy: np.ndarray, w: np.ndarray, x_shape: tuple, windows: Windows) -> np.ndarray:
    """Every phase as a valid correlation of padded dy with the phase's taps (in the order that makes
    dy's offsets grow, by their constant step), from dy at low + its first offset."""
    n, channels = dy.shape[:2]
    phases, low, high = _phase_plan(x_shape, windows)
    padded = np.zeros((n, channels) + tuple(o + lo + hi for o, lo, hi in zip(windows.out, low, high)), dy.dtype)
    padded[(slice(None), slice(None)) + tuple(slice(lo, lo + o) for lo, o in zip(low, windows.out))] = dy
    kernels = [w[(slice(None), slice(None)) + np.ix_(*[taps for _, _, taps, _ in phase])] for phase in phases]
    steps = [tuple(offsets[1] - offsets[0] if len(offsets) > 1 else 1 for _, _, _, offsets in phase)
             for phase in phases]
    outputs = ort_conv.correlations(padded, kernels, steps, w, windows)
    dx = np.zeros((n, channels) + tuple(x_shape[2:]), dy.dtype)
    for phase, out in zip(phases, outputs):
        window = tuple(slice(lo + offsets[0], lo + offsets[0] + count) for (_, count, _, offsets), lo in zip(phase, low))
        dx[(slice(None), slice(None)) + _phase_target(phase, windows)] = out[(slice(None), slice(None)) + window]
    return dx


def _gather(dy: np.ndarray, w: np.ndarray, x_shape: tuple, windows: Windows) -> np.ndarray:
    n, channels = dy.shape[:2]
    rank = len(windows.kernel)
    phases, low, high = _phase_plan(x_shape, windows)
    padded = np.zeros((n,) + tuple(o + lo + hi for o, lo, hi in zip(windows.out, low, high)) + (channels,),
                      dy.dtype)
    padded[(slice(None),) + tuple(slice(lo, lo + o) for lo, o in zip(low, windows.out))] = np.moveaxis(dy, 1, -1)
    weights = np.moveaxis(w[:, 0], 0, -1)  # kernel... x C
    dx = np.zeros((n,) + tuple(x_shape[2:]) + (channels,), dy.dtype)
    letters = ascii_letters[:2 * rank]  # lower case: positions then taps; N and C: batch and channels
    subscripts = f"N{letters}C,{letters[rank:]}C->N{letters[:rank]}C"
    for phase in phases:
        view = _phase_view(padded, phase, low)
        kernel = weights[np.ix_(*[taps for _, _, taps, _ in phase])]
        np.einsum(subscripts, view, kernel, out=dx[(slice(None),) + _phase_target(phase, windows)])
    return np.ascontiguousarray(np.moveaxis(dx, -1, 1))


def _phase_view(padded: np.ndarray, phase: tuple, low: list) -> np.ndarray:
    """N x count... x taps... x C view: element (m, q) is padded dy at m + offsets[q] (shifted by low)."""
    spatial = padded.strides[1:-1]
    start = sum((lo + offsets[0]) * st for (_, _, _, offsets), lo, st in zip(phase, low, spatial))
    steps = [(offsets[1] - offsets[0]) if len(offsets) > 1 else 1 for _, _, _, offsets in phase]
    shape = (padded.shape[0],) + tuple(c for _, c, _, _ in phase) + tuple(len(t) for _, _, t, _ in phase) \
        + (padded.shape[-1],)
    strides = (padded.strides[0],) + spatial + tuple(st * k for st, k in zip(spatial, steps)) + (padded.strides[-1],)
    base = padded.reshape(-1)[start // padded.itemsize:]
    return np.lib.stride_tricks.as_strided(base, shape, strides, writeable=False)
