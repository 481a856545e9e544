"""Lucid's image parameterization (Olah et al. 2017; Lucent's param/spatial.py and param/color.py):
the image is a Fourier spectrum scaled by 1/f, so every frequency learns at the rate natural images
have, in a decorrelated colour space (the square root of ImageNet's colour covariance), squashed
into 0..1 by a sigmoid.

Parameters: N x 3 x h x (w // 2 + 1) x 2, the real and imaginary parts of each channel's spectrum.
"""
import numpy as np

# Lucid's color_correlation_svd_sqrt (lucid/optvis/param/color.py, the same in Lucent): the square
# root of the covariance of ImageNet's RGB pixels; its columns are scaled by the largest column norm.
COLOR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]], np.float32)
COLOR_CORRELATION = COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))
MAGIC = 4.0        # Lucid divides the inverse transform by 4 before the colour map
START_SD = 0.01    # the spectrum's random start: N(0, 0.01)


def frequencies(height: int, width: int) -> np.ndarray:
    """|f| of each bin of an rfft2 of an height x width image (cycles per pixel)."""
    return np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.rfftfreq(width)[None, :] ** 2)


def hermitian_weights(width: int) -> np.ndarray:
    """How many times each rfft column stands in the full spectrum: 1 for the DC (and, for even
    widths, the Nyquist) column, 2 for the others. The adjoint of irfft2 is rfft2 times these."""
    weights = np.full(width // 2 + 1, 2.0)
    weights[0] = 1.0
    if width % 2 == 0:
        weights[-1] = 1.0
    return weights


def decorrelate(t: np.ndarray) -> np.ndarray:
    """N x 3 x H x W decorrelated colours -> RGB (before the sigmoid)."""
    return np.einsum("ij,njhw->nihw", COLOR_CORRELATION, t)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Fourier:
    """The map spectrum parameters -> RGB image (N x 3 x height x width, 0..1) and its gradient."""

    def __init__(self, height: int, width: int, decay_power: float = 1.0):
        self.size = (height, width)
        # Lucent: 1 / max(f, 1 / max(h, w)) ** decay_power, the DC bin capped like the lowest frequency
        self.scale = (1.0 / np.maximum(frequencies(height, width), 1.0 / max(height, width)) ** decay_power)
        self.weights = hermitian_weights(width)

    @property
    def shape(self) -> tuple:
        return (3,) + self.scale.shape + (2,)

    def start(self, streams: list) -> np.ndarray:
        return np.stack([stream.normal(0.0, START_SD, self.shape) for stream in streams]).astype(np.float32)

    def _spatial(self, params: np.ndarray) -> np.ndarray:
        spectrum = (params[..., 0] + 1j * params[..., 1]) * self.scale
        return np.fft.irfft2(spectrum, s=self.size, norm="ortho") / MAGIC

    def image(self, params: np.ndarray) -> np.ndarray:
        return sigmoid(decorrelate(self._spatial(params)))

    def gradient(self, params: np.ndarray, grad_image: np.ndarray) -> np.ndarray:
        """d objective / d params from d objective / d image (the chain rule, written out)."""
        rgb = self.image(params)
        grad = grad_image * rgb * (1.0 - rgb)                               # sigmoid
        grad = np.einsum("ij,nihw->njhw", COLOR_CORRELATION, grad) / MAGIC   # colour map, 1/4
        spectrum = np.fft.rfft2(grad, norm="ortho") * self.weights * self.scale
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)

    def params_of(self, rgb: np.ndarray) -> np.ndarray:
        """The parameters that make ``rgb`` (values strictly inside 0..1): the inverse map."""
        logits = np.log(rgb) - np.log1p(-rgb)
        spatial = np.einsum("ij,njhw->nihw", np.linalg.inv(COLOR_CORRELATION), logits) * MAGIC
        spectrum = np.fft.rfft2(spatial, norm="ortho") / self.scale
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)
