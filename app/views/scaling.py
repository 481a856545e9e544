"""One scale for pictures of signed values (gradients, backward diffs) and of magnitudes.

A high percentile of the nonzero |values| is full scale and the few values beyond it saturate, so one
hot pixel cannot flatten the rest of the picture to gray (scaling by the max did: gradients have
heavy tails). Signed pictures put zero at the middle (mid-gray, or black between red and green);
magnitudes put zero at black. Taking the percentile over the nonzero values only keeps a sparse
signal (a small receptive field in a large image) scaled by its own pixels, not by the zeros
around it. An all-zero array has no scale: callers say "all zero" instead of drawing flat gray.
"""
import numpy as np

PERCENTILE = 99.0   # the default of settings.picture_percentile


def robust_peak(values: np.ndarray, percentile: float = PERCENTILE) -> float:
    """The ``percentile`` (0-100) of the nonzero |values|; 0.0 when every value is zero."""
    magnitudes = np.abs(np.asarray(values, np.float64)).ravel()
    magnitudes = magnitudes[magnitudes > 0]
    return float(np.percentile(magnitudes, percentile)) if magnitudes.size else 0.0


def signed_unit(values: np.ndarray, percentile: float = PERCENTILE) -> np.ndarray:
    """Values -> [-1, 1] (float32): divided by their robust peak, clipped; all zero stays zero."""
    values = np.asarray(values, np.float32)
    peak = robust_peak(values, percentile)
    return np.clip(values / peak, -1, 1) if peak > 0 else np.zeros_like(values)


def signed_gray(values: np.ndarray, percentile: float = PERCENTILE) -> np.ndarray:
    """Values -> [0, 1] with zero at 0.5 and +-robust peak (or beyond) at 1 / 0."""
    return 0.5 + 0.5 * signed_unit(values, percentile)


def magnitude_unit(values: np.ndarray, percentile: float = PERCENTILE) -> np.ndarray:
    """Values >= 0 (a norm, a positive part) -> [0, 1]: zero black, the robust peak or beyond white."""
    return np.maximum(signed_unit(values, percentile), 0)
