"""From an RGB image with values 0..1 to the net's own input, and a gradient back: the model's
preprocessing (app/net/preprocess.py) written as a differentiable map, so parameterized images
(Fourier, MACO) are made at any size and colour and the net still gets what it was trained on:
channel order (BGR or RGB), gray for 1-channel models, MATLAB's transpose, raw scale, mean and
input scale.
"""
import numpy as np

from app.net.preprocess import mean_array

GRAY_FROM_RGB = np.array([0.299, 0.587, 0.114], np.float32)  # OpenCV's BGR2GRAY, which preprocess uses


class NetInput:
    """The linear map RGB 0..1 (N x 3 x h x w, the image as preprocess sees it) -> net input."""

    def __init__(self, spec):
        self.spec = spec
        self.mean = mean_array(spec).astype(np.float32)
        scale = np.asarray(spec.input_scale, np.float32)
        self.gain = (scale.reshape(-1, 1, 1) if scale.ndim == 1 else scale) * np.float32(spec.raw_scale)
        # net channel c reads BGR channel channel_swap[c], which is RGB channel 2 - channel_swap[c]
        self.rgb_channels = [2 - index for index in spec.channel_swap] if spec.channels == 3 else None

    @property
    def image_size(self) -> tuple:
        """(height, width) of the image before the transpose: what views are resampled to."""
        height, width = self.spec.size
        return (width, height) if self.spec.transpose else (height, width)

    def _layout(self, rgb: np.ndarray) -> np.ndarray:
        if self.rgb_channels is None:
            planes = np.tensordot(GRAY_FROM_RGB, rgb, axes=([0], [1]))[:, None]
        else:
            planes = rgb[:, self.rgb_channels]
        return planes.swapaxes(-1, -2) if self.spec.transpose else planes

    def to_net(self, rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((self._layout(rgb) - self.mean / self.spec.raw_scale) * self.gain,
                                    dtype=np.float32)

    def grad_to_rgb(self, grad: np.ndarray) -> np.ndarray:
        """The adjoint: a gradient wrt the net input -> the gradient wrt the RGB image."""
        grad = grad * self.gain
        if self.spec.transpose:
            grad = grad.swapaxes(-1, -2)
        if self.rgb_channels is None:
            return (GRAY_FROM_RGB.reshape(1, 3, 1, 1) * grad).astype(np.float32)
        rgb = np.zeros((len(grad), 3) + grad.shape[2:], np.float32)
        for net_channel, rgb_channel in enumerate(self.rgb_channels):
            rgb[:, rgb_channel] += grad[:, net_channel]
        return rgb


def to_bgr_uint8(rgb: np.ndarray) -> list:
    """N x 3 x H x W RGB 0..1 -> H x W x 3 uint8 BGR images."""
    return list(np.clip(rgb[:, ::-1].transpose(0, 2, 3, 1) * 255.0 + 0.5, 0, 255).astype(np.uint8))
