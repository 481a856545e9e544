"""Backward rules of the normalisations that use their own input's statistics: instance, layer and
group normalisation (inference BatchNormalization, a fixed per-channel map, is in linear.py).

Each standardises x over some axes, xhat = (x - mean) / sqrt(var + epsilon), then scales and shifts
it. With g the diff at xhat, the diff at x is (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + epsilon),
the means over the same axes. LayerNormalization's optional Mean and InvStdDev outputs pass no diff.
"""
import numpy as np

from app.net.autodiff.op import Op, channel_shaped, unbroadcast


def _standardised(x: np.ndarray, axes: tuple, epsilon: float) -> tuple:
    """(xhat, 1 / sqrt(var + epsilon)), the statistics over ``axes``."""
    centred = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + epsilon)
    return centred * inv_std, inv_std


def _standardisation_diff(g: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axes: tuple) -> np.ndarray:
    return inv_std * (g - g.mean(axis=axes, keepdims=True) - xhat * np.mean(g * xhat, axis=axes, keepdims=True))


def _wants(op: Op, index: int) -> bool:
    return index < len(op.wants) and op.wants[index]


def instance_normalization(op: Op):
    """Group normalisation with one channel per group: per image and channel over the spatial axes;
    scale and bias per channel."""
    return _grouped(op, op.x.shape[1], per_group=False)


def layer_normalization(op: Op):
    """Over the axes from ``axis`` on; scale and bias broadcast to those axes."""
    x, scale = op.inputs[:2]
    axes = tuple(range(op.attrs.get("axis", -1) % x.ndim, x.ndim))
    xhat, inv_std = _standardised(x, axes, op.attrs.get("epsilon", 1e-5))
    dy = op.dy
    return [_standardisation_diff(dy * scale, xhat, inv_std, axes) if op.wants[0] else None,
            unbroadcast(dy * xhat, scale.shape) if _wants(op, 1) else None,
            unbroadcast(dy, op.inputs[2].shape) if _wants(op, 2) else None]


def group_normalization(op: Op):
    """Per image over each group of channels and the spatial axes; scale and bias per channel
    (opset 21) or per group (opset 18)."""
    return _grouped(op, op.attrs["num_groups"], per_group=op.opset < 21)


def _grouped(op: Op, groups: int, per_group: bool):
    """Statistics per image over each group of channels and the spatial axes; scale and bias per group
    (per_group) or per channel."""
    x, scale = op.inputs[:2]
    n, channels = x.shape[:2]
    grouped = (n, groups, channels // groups) + x.shape[2:]
    axes = tuple(range(2, len(grouped)))
    xhat, inv_std = _standardised(x.reshape(grouped), axes, op.attrs.get("epsilon", 1e-5))
    xhat = xhat.reshape(x.shape)
    gain = np.repeat(scale, channels // groups) if per_group else scale
    dy = op.dy
    dx = None
    if op.wants[0]:
        g = (dy * channel_shaped(gain, x.ndim)).reshape(grouped)
        dx = _standardisation_diff(g, xhat.reshape(grouped), inv_std, axes).reshape(x.shape)
    outside = (0,) + tuple(range(2, x.ndim))
    dscale = (dy * xhat).sum(axis=outside) if _wants(op, 1) else None
    dbias = dy.sum(axis=outside) if _wants(op, 2) else None
    if per_group:
        dscale = None if dscale is None else dscale.reshape(groups, -1).sum(axis=1)
        dbias = None if dbias is None else dbias.reshape(groups, -1).sum(axis=1)
    return [dx, dscale, dbias]
