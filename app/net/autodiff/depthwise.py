"""The diff of a depthwise convolution's input (one input channel per group), without a matrix product.

The transposed convolution splits into stride^rank phases: input pixels y = r (mod stride) are
reached by their own subset of taps, at consecutive positions of dy, so each phase is a small
correlation of (padded) dy. In float32 ONNX Runtime's depthwise Conv runs every phase in one call
(ort_conv.py). In float64 (the finite-difference tests), with many channels, each phase is one
channels-last einsum over a strided view (a single fused pass whose inner loop runs along contiguous
channels); with few, each tap adds weight * dy where it read (long pixel rows).
"""
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from string import ascii_letters

import numpy as np

from app.net.autodiff import ort_conv
from app.net.autodiff.geometry import Windows

GATHER_MIN_CHANNELS = 128  # below this, channel rows are too short for the gather to win (measured)


def input_diff(dy: np.ndarray, w: np.ndarray, x_shape: tuple, windows: Windows, group: int,
               session_options=None) -> np.ndarray:
    """session_options: makes the options of ONNX Runtime's helper sessions (the float32 path); None
    keeps to NumPy."""
    one_per_group = dy.shape[1] == group
    if one_per_group and dy.dtype == np.float32 and session_options is not None:
        return _onnx_runtime(dy, w, windows, session_options)
    if one_per_group and group >= GATHER_MIN_CHANNELS:
        return _gather(dy, w, windows)
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


@dataclass(frozen=True)
class _Phase:
    """The input pixels of one stride phase and where they read padded dy, per spatial axis."""

    target: tuple   # slices of dx: every stride-th pixel from the phase's residue
    taps: tuple     # the kernel taps reaching them, in the order that makes dy's offsets grow
    step: tuple     # dy's offset step from one of those taps to the next
    window: tuple   # slices of padded dy where the taps' first reads lie (one per pixel)


@dataclass(frozen=True)
class _Plan:
    phases: tuple
    padded: tuple    # spatial size of padded dy, so that every phase reads inside it
    dy_slices: tuple  # where dy sits in it


@lru_cache(maxsize=256)
def _plan(windows: Windows) -> _Plan:
    """The phases with taps and pixels (made once per geometry: every backward pass reuses them)."""
    per_dim = [_phases(*args) for args in zip(windows.size, windows.kernel, windows.strides, windows.dilations,
                                              windows.begins)]
    low = [max([0] + [-o for _, _, _, offs in phases for o in offs]) for phases in per_dim]
    high = [max([0] + [count - 1 + o - (out - 1) for _, count, _, offs in phases for o in offs])
            for phases, out in zip(per_dim, windows.out)]
    phases = []
    for phase in product(*per_dim):
        if all(taps and count for _, count, taps, _ in phase):
            phases.append(_Phase(
                tuple(slice(r, None, s) for (r, _, _, _), s in zip(phase, windows.strides)),
                tuple(tuple(taps) for _, _, taps, _ in phase),
                tuple(offs[1] - offs[0] if len(offs) > 1 else 1 for _, _, _, offs in phase),
                tuple(slice(lo + offs[0], lo + offs[0] + count) for (_, count, _, offs), lo in zip(phase, low))))
    return _Plan(tuple(phases), tuple(o + lo + hi for o, lo, hi in zip(windows.out, low, high)),
                 tuple(slice(lo, lo + o) for lo, o in zip(low, windows.out)))


def _onnx_runtime(dy: np.ndarray, w: np.ndarray, windows: Windows, session_options) -> np.ndarray:
    """Every phase as a valid correlation of padded dy with the phase's taps (by their constant step);
    the phase's pixels are its outputs in the phase's window."""
    everything = (slice(None), slice(None))
    plan = _plan(windows)
    padded = np.zeros(dy.shape[:2] + plan.padded, dy.dtype)
    padded[everything + plan.dy_slices] = dy
    outputs = ort_conv.correlations(padded, [p.taps for p in plan.phases], [p.step for p in plan.phases], w, windows,
                                     session_options)
    dx = np.zeros(dy.shape[:2] + windows.size, dy.dtype)
    for phase, out in zip(plan.phases, outputs):
        dx[everything + phase.target] = out[everything + phase.window]
    return dx


def _gather(dy: np.ndarray, w: np.ndarray, windows: Windows) -> np.ndarray:
    n, channels = dy.shape[:2]
    rank = len(windows.kernel)
    plan = _plan(windows)
    padded = np.zeros((n,) + plan.padded + (channels,), dy.dtype)
    padded[(slice(None),) + plan.dy_slices] = np.moveaxis(dy, 1, -1)
    weights = np.moveaxis(w[:, 0], 0, -1)  # kernel... x C
    dx = np.zeros((n,) + windows.size + (channels,), dy.dtype)
    letters = ascii_letters[:2 * rank]  # lower case: positions then taps; N and C: batch and channels
    subscripts = f"N{letters}C,{letters[rank:]}C->N{letters[:rank]}C"
    for phase in plan.phases:
        np.einsum(subscripts, _phase_view(padded, phase), weights[np.ix_(*phase.taps)],
                  out=dx[(slice(None),) + phase.target])
    return np.ascontiguousarray(np.moveaxis(dx, -1, 1))


def _phase_view(padded: np.ndarray, phase: _Phase) -> np.ndarray:
    """N x count... x taps... x C view: element (m, q) is padded dy at the phase's window start + m + q * step."""
    spatial = padded.strides[1:-1]
    start = sum(w.start * st for w, st in zip(phase.window, spatial))
    shape = (padded.shape[0],) + tuple(w.stop - w.start for w in phase.window) + tuple(len(t) for t in phase.taps) \
        + (padded.shape[-1],)
    strides = (padded.strides[0],) + spatial + tuple(st * k for st, k in zip(spatial, phase.step)) \
        + (padded.strides[-1],)
    base = padded.reshape(-1)[start // padded.itemsize:]
    return np.lib.stride_tricks.as_strided(base, shape, strides, writeable=False)
