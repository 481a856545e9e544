"""MACO's image parameterization (Fel et al., "Unlocking Feature Visualization for Deeper Networks
with MAgnitude Constrained Optimization", NeurIPS 2023): only the Fourier phase is optimized; the
magnitude of every frequency stays that of natural images, so the result keeps a photo's spectrum
however hard the optimizer pushes.

The fixed magnitude is the mean amplitude spectrum (per RGB channel, orthonormal rfft2) of the
toolbox's sample photos (scikit-image's, app/inputs/samples.py), resized to the image's size; it is
computed once per size and cached in the cache folder as maco_spectrum_HxW.npy. The image is the
inverse transform standardized (zero mean, unit deviation over the image) and put into 0..1 by a
sigmoid.
Parameters: N x 3 x h x (w // 2 + 1), the phase of each channel's spectrum.
"""
import cv2
import numpy as np

from app.files import write_atomic
from app.inputs.samples import default_input_dir
from app.net.preprocess import read_image
from app.offline.fourier import hermitian_weights, sigmoid
from app.paths import cache_dir

EPSILON = 1e-5  # added to the deviation in the standardization


def photo_spectrum(size: tuple, photos=None) -> np.ndarray:
    """Mean |rfft2| (3 x h x (w // 2 + 1), RGB, values 0..1, orthonormal) of ``photos`` (paths;
    default: the sample photos, and the result cached)."""
    height, width = size
    path = cache_dir() / f"maco_spectrum_{height}x{width}.npy"
    if photos is None and path.is_file():
        return np.load(path)
    amplitudes = []
    for photo in photos if photos is not None else sorted(default_input_dir().glob("*.jpg")):
        image = cv2.resize(read_image(photo), (width, height), interpolation=cv2.INTER_AREA)
        rgb = image[:, :, ::-1].transpose(2, 0, 1).astype(np.float64) / 255.0
        amplitudes.append(np.abs(np.fft.rfft2(rgb, norm="ortho")))
    spectrum = np.mean(amplitudes, axis=0).astype(np.float32)
    if photos is None:
        write_atomic(path, lambda stream: np.save(stream, spectrum))
    return spectrum


class Maco:
    """The map phase -> RGB image (N x 3 x height x width, 0..1) for a fixed magnitude, and its gradient."""

    def __init__(self, magnitude: np.ndarray, width: int):
        self.magnitude, self.width = magnitude, width
        self.size = (magnitude.shape[1], width)
        self.weights = hermitian_weights(width)

    @property
    def shape(self) -> tuple:
        return self.magnitude.shape

    def start(self, streams: list) -> np.ndarray:
        return np.stack([stream.uniform(-np.pi, np.pi, self.shape) for stream in streams]).astype(np.float32)

    def _hermitian(self, phase: np.ndarray) -> np.ndarray:
        """The phase made odd (phase(-f) = -phase(f)) in the rfft columns that hold both f and -f
        (the first, and the last for even widths), so the spectrum is that of a real image and
        irfft2 keeps it whole. Linear and self-adjoint: the gradient goes through it too."""
        phase = phase.copy()
        columns = [0, -1] if self.width % 2 == 0 else [0]
        mirrored = np.roll(phase[..., ::-1, :], 1, axis=-2)   # row k -> row (-k mod h)
        phase[..., columns] = (phase[..., columns] - mirrored[..., columns]) / 2
        return phase

    def _standardized(self, phase: np.ndarray) -> tuple:
        phase = self._hermitian(phase)
        spatial = np.fft.irfft2(self.magnitude * np.exp(1j * phase), s=self.size, norm="ortho")
        axes = (1, 2, 3)
        deviation = spatial.std(axis=axes, keepdims=True)
        return (spatial - spatial.mean(axis=axes, keepdims=True)) / (deviation + EPSILON), deviation

    def image(self, phase: np.ndarray) -> np.ndarray:
        return sigmoid(self._standardized(phase)[0])

    def gradient(self, phase: np.ndarray, grad_image: np.ndarray) -> np.ndarray:
        """d objective / d phase from d objective / d image."""
        standard, deviation = self._standardized(phase)
        rgb = sigmoid(standard)
        grad = grad_image * rgb * (1.0 - rgb)
        axes = (1, 2, 3)
        grad = ((grad - grad.mean(axis=axes, keepdims=True)) / (deviation + EPSILON)
                - standard * (grad * standard).mean(axis=axes, keepdims=True) / np.maximum(deviation, EPSILON))
        spectrum = np.fft.rfft2(grad, norm="ortho") * self.weights
        # d/d phase of magnitude * (cos phase + i sin phase)
        phase = self._hermitian(phase)
        return self._hermitian(self.magnitude * (spectrum.imag * np.cos(phase) - spectrum.real * np.sin(phase)))

    def phase_of(self, rgb: np.ndarray) -> np.ndarray:
        """The phase of an image's spectrum (values strictly inside 0..1): for an image this map
        made, ``image(phase_of(image)) == image``."""
        logits = np.log(rgb) - np.log1p(-rgb)
        return np.angle(np.fft.rfft2(logits, norm="ortho"))
