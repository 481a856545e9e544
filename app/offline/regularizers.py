"""The regularizers of activation maximization (Yosinski et al. 2015) and the paper's four presets.

Every function works on a batch ``x`` (N x C x H x W) in the paper's space: image pixels 0..255 in
the net's channel order minus the model's mean pixel, so the presets' learning rates and decays mean
what they meant for Caffe's raw mean-subtracted input (see app/offline/optimize.py).
"""
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class Preset:
    """One row of the paper's hyperparameter table (and an extra one with Lucid-style transforms)."""

    decay: float = 0.0               # x *= 1 - decay every step (L2 decay)
    blur_radius: float = 0.0         # Gaussian sigma in pixels; 0 = no blur
    blur_every: int = 0              # blur on steps 0, n, 2n, ...
    small_norm_percentile: float = 0.0   # zero pixels whose norm over channels is under this percentile
    abs_contribution_percentile: float = 0.0  # zero pixels whose |sum_c g * -x| is under this percentile
    iterations: int = 1000
    lr_policy: str = "constant"      # "constant" (lr) or "progress" (min(max_lr, desired_prog / |g|^2))
    lr: float = 100.0
    max_lr: float = 0.0
    desired_prog: float = 0.0
    jitter: int = 0                  # Lucid-style: random shift up to this many pixels each step
    scale: float = 0.0               # random zoom in [1 - scale, 1 + scale]
    rotate: float = 0.0              # random rotation in [-rotate, rotate] degrees


PRESETS = {
    1: Preset(decay=0.0, blur_radius=0.5, blur_every=4, small_norm_percentile=50, iterations=500,
              lr_policy="progress", max_lr=100.0, desired_prog=2.0),
    2: Preset(decay=0.3, small_norm_percentile=20, iterations=750, lr_policy="constant", lr=100.0),
    3: Preset(decay=1e-4, blur_radius=1.0, blur_every=4, iterations=1000, lr_policy="constant", lr=100.0),
    4: Preset(decay=0.0, blur_radius=0.5, blur_every=4, abs_contribution_percentile=90, iterations=1000,
              lr_policy="progress", max_lr=1e8, desired_prog=2.0),
    5: Preset(decay=1e-4, blur_radius=1.0, blur_every=4, iterations=1000, lr_policy="constant", lr=100.0,
              jitter=8, scale=0.05, rotate=5.0),
}


def learning_rates(preset: Preset, grad: np.ndarray) -> np.ndarray:
    """One step size per image of the batch, shaped to broadcast against it."""
    count = grad.shape[0]
    if preset.lr_policy == "constant":
        rates = np.full(count, preset.lr)
    else:
        squared = np.square(grad.reshape(count, -1), dtype=np.float64).sum(axis=1)
        with np.errstate(divide="ignore"):
            rates = np.minimum(preset.max_lr, preset.desired_prog / squared)
    return rates.reshape((count,) + (1,) * (grad.ndim - 1))


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of every channel of every image (not across channels or images)."""
    return gaussian_filter(x, sigma=(0, 0, sigma, sigma))


def zero_small_pixels(x: np.ndarray, score: np.ndarray, percentile: float) -> np.ndarray:
    """Zero (all channels of) each image's pixels whose ``score`` (N x H x W) is under its percentile."""
    cut = np.percentile(score.reshape(score.shape[0], -1), percentile, axis=1)
    small = score < cut.reshape(-1, 1, 1)
    return np.where(small[:, None], 0, x).astype(x.dtype, copy=False)


def regularize(x: np.ndarray, grad: np.ndarray, preset: Preset, step: int) -> np.ndarray:
    """Decay, blur and clipping applied after the gradient step ``step`` (counted from 0)."""
    if preset.decay:
        x = x * np.float32(1.0 - preset.decay)
    if preset.blur_radius > 0 and preset.blur_every > 0 and step % preset.blur_every == 0:
        x = blur(x, preset.blur_radius)
    if preset.abs_contribution_percentile > 0:
        contribution = np.abs((grad * -x).sum(axis=1))
        x = zero_small_pixels(x, contribution, preset.abs_contribution_percentile)
    if preset.small_norm_percentile > 0:
        x = zero_small_pixels(x, np.linalg.norm(x, axis=1), preset.small_norm_percentile)
    return x
