"""Backward rule of Resize and the deprecated Upsample: per axis, the transpose of a linear map.

Every interpolation mode is separable: along each axis the forward is an (output x input) matrix
whose rows hold the interpolation weights of ONNX's formulas (nearest: one 1, linear: two weights,
cubic: four). The diff goes back through the transposed matrices, one axis at a time, so all modes
share one code path. Coordinates are computed in the diff's dtype: float32 as ONNX Runtime computes
them (the same nearest pixel at exact ties), float64 as onnx's reference does.
"""
import functools
from dataclasses import dataclass

import numpy as np

from app.errors import DeepVisError
from app.net.autodiff.op import Op, ints

MODES = ("nearest", "linear", "cubic")
TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")


@dataclass(frozen=True)
class Interpolation:
    """How a Resize node maps output positions to input positions, from its attributes and opset."""

    mode: str               # nearest, linear or cubic
    transform: str          # coordinate_transformation_mode
    nearest_mode: str       # round_prefer_floor, round_prefer_ceil, floor, ceil, or simple (before opset 11)
    cubic_a: float
    exclude_outside: bool
    antialias: bool

    @classmethod
    def of(cls, op: Op) -> "Interpolation":
        mode = op.attrs.get("mode", "nearest")
        if op.node.op_type == "Upsample" or op.opset < 11:
            # Upsample and Resize-10: x_original = x_resized / scale; ONNX Runtime's nearest pixel is
            # truncation when enlarging and the ceiling when shrinking
            return cls(mode, "asymmetric", "simple", -0.75, False, False)
        return cls(mode, op.attrs.get("coordinate_transformation_mode", "half_pixel"),
                   op.attrs.get("nearest_mode", "round_prefer_floor"), op.attrs.get("cubic_coeff_a", -0.75),
                   bool(op.attrs.get("exclude_outside", 0)), bool(op.attrs.get("antialias", 0)))


def resize(op: Op):
    dx = op.dy
    for axis, matrix in axis_matrices(op, op.dy.dtype.type):
        if axis == dx.ndim - 1:
            dx = dx @ matrix
        else:
            dx = np.moveaxis(matrix.T @ np.moveaxis(dx, axis, -2), -2, axis)
    return [dx]


def axis_matrices(op: Op, dtype) -> list:
    """(axis, matrix) for every axis the node resizes: forward along that axis is matrix @ values.
    dtype: a NumPy scalar type (np.float32 or np.float64)."""
    how = Interpolation.of(op)
    scales, rois = _scales(op, dtype), _rois(op)
    _check(op, how, scales)
    if op.x.shape == op.y.shape:
        return []  # ONNX Runtime copies the input when no length changes, whatever the scales and roi
    matrices = []
    for axis, (n_in, n_out, scale, roi) in enumerate(zip(op.x.shape, op.y.shape, scales, rois)):
        if n_in == n_out and scale == 1:
            continue  # copied as is, as ONNX Runtime does (where some formulas would shift by half a pixel)
        matrices.append((axis, axis_matrix(n_in, n_out, scale, roi, how, dtype)))
    return matrices


def _check(op: Op, how: Interpolation, scales: list) -> None:
    unsupported = None
    if how.mode not in MODES:
        unsupported = f"mode {how.mode!r}"
    elif how.transform not in TRANSFORMS:
        unsupported = f"coordinate_transformation_mode {how.transform!r}"
    elif how.mode == "nearest" and how.nearest_mode not in NEAREST_MODES:
        unsupported = f"nearest_mode {how.nearest_mode!r}"
    elif how.antialias and how.mode != "nearest" and min(scales) < 1:
        unsupported = "antialias=1 on an axis it shrinks"
    if unsupported:
        raise DeepVisError(f"node {op.node.name or op.node.output[0]!r}: {op.node.op_type} with {unsupported} "
                           "is not supported by backprop (forward is unaffected)")


def _scales(op: Op, dtype) -> list:
    """The scale of every axis. With sizes given, output / input length (in ``dtype``), or under
    opset 18's keep_aspect_ratio_policy the one scale that keeps the aspect ratio."""
    rank = op.x.ndim
    if op.node.op_type == "Upsample" and op.opset < 9:
        return [float(s) for s in op.attrs["scales"]]
    if op.opset < 11:
        return [float(s) for s in np.asarray(op.inputs[1]).reshape(-1)]
    axes = [a % rank for a in op.attrs.get("axes", range(rank))]
    scales = [1.0] * rank
    given = op.input(2)
    if given is not None and given.size:
        for axis, scale in zip(axes, np.asarray(given).reshape(-1)):
            scales[axis] = float(scale)
        return scales
    sizes = ints(op.inputs[3])
    ratios = [dtype(size) / dtype(op.x.shape[axis]) for axis, size in zip(axes, sizes)]
    policy = op.attrs.get("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        ratios = [min(ratios) if policy == "not_larger" else max(ratios)] * len(axes)
    for axis, ratio in zip(axes, ratios):
        scales[axis] = float(ratio)
    return scales


def _rois(op: Op) -> list:
    """(start, end) of every axis, read only by tf_crop_and_resize."""
    rank = op.x.ndim
    rois = [(0.0, 1.0)] * rank
    roi = op.input(1) if op.node.op_type == "Resize" and op.opset >= 11 else None
    if roi is None or not roi.size:
        return rois
    roi = np.asarray(roi, np.float64).reshape(-1)
    axes = [a % rank for a in op.attrs.get("axes", range(rank))]
    for index, axis in enumerate(axes):
        rois[axis] = (roi[index], roi[index + len(axes)])
    return rois


@functools.lru_cache(maxsize=64)  # a net resizes few shapes, and the app backprops every frame
def axis_matrix(n_in: int, n_out: int, scale: float, roi: tuple, how: Interpolation, dtype) -> np.ndarray:
    """The (n_out x n_in) interpolation matrix of one axis (read-only: it is shared)."""
    x = _source_coordinates(n_in, n_out, dtype(scale), roi, how.transform, dtype)
    matrix = np.zeros((n_out, n_in), dtype)
    rows = np.arange(n_out)
    if how.mode == "nearest":
        matrix[rows, np.clip(_nearest(x, how.nearest_mode, scale < 1), 0, n_in - 1)] = 1
    elif how.mode == "linear":
        inside = np.clip(x, 0, n_in - 1)
        low = np.floor(inside).astype(np.int64)
        fraction = inside - low
        np.add.at(matrix, (rows, low), 1 - fraction)
        np.add.at(matrix, (rows, np.minimum(low + 1, n_in - 1)), fraction)
    else:
        base = np.floor(x)
        taps = base.astype(np.int64)[:, None] + np.arange(-1, 3)
        weights = _cubic_weights(x - base, dtype(how.cubic_a))
        if how.exclude_outside:
            weights = np.where((taps >= 0) & (taps < n_in), weights, 0)
            weights /= weights.sum(axis=1, keepdims=True)
        np.add.at(matrix, (rows[:, None], np.clip(taps, 0, n_in - 1)), weights)
    if how.transform == "tf_crop_and_resize":
        matrix[(x < 0) | (x > n_in - 1)] = 0  # those outputs hold extrapolation_value, a constant
    matrix.flags.writeable = False
    return matrix


def _source_coordinates(n_in: int, n_out: int, scale, roi: tuple, transform: str, dtype) -> np.ndarray:
    """x_original of every output position, by ONNX's coordinate_transformation_mode formulas."""
    x = np.arange(n_out, dtype=dtype)
    half, one = dtype(0.5), dtype(1)
    if transform == "half_pixel":
        return (x + half) / scale - half
    if transform == "pytorch_half_pixel":
        return (x + half) / scale - half if n_out > 1 else np.zeros_like(x)
    if transform == "half_pixel_symmetric":
        offset = dtype(n_in) / 2 * (one - dtype(n_out) / (scale * dtype(n_in)))
        # the sum in double, as ONNX Runtime computes it
        return (offset + (x.astype(np.float64) + 0.5) / np.float64(scale) - 0.5).astype(dtype)
    if transform == "align_corners":
        return x * dtype(n_in - 1) / dtype(n_out - 1) if n_out > 1 else np.zeros_like(x)
    if transform == "asymmetric":
        return x / scale
    if transform == "tf_half_pixel_for_nn":
        return (x + half) / scale
    start, end = dtype(roi[0]), dtype(roi[1])  # tf_crop_and_resize
    if n_out > 1:
        return start * dtype(n_in - 1) + x * (end - start) * dtype(n_in - 1) / dtype(n_out - 1)
    return np.full_like(x, 0.5 * np.float64(start + end) * (n_in - 1))


def _nearest(x: np.ndarray, nearest_mode: str, shrinks: bool) -> np.ndarray:
    if nearest_mode == "simple":
        picked = np.ceil(x) if shrinks else np.trunc(x)
    elif nearest_mode in ("floor", "ceil"):
        picked = np.floor(x) if nearest_mode == "floor" else np.ceil(x)
    else:  # round, ties to the side the mode prefers
        tie = np.floor(x) if nearest_mode == "round_prefer_floor" else np.ceil(x)
        picked = np.where(x - np.floor(x) == 0.5, tie, np.round(x))
    return picked.astype(np.int64)


def _cubic_weights(ratio: np.ndarray, a) -> np.ndarray:
    """Keys' cubic convolution weights of the taps at offsets -1, 0, 1, 2 from floor(x)."""
    def near(s):  # |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s):  # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    return np.stack([far(1 + ratio), near(ratio), near(1 - ratio), far(2 - ratio)], axis=1)
