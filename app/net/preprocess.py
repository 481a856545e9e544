"""Turning camera frames and image files into the net's input, and back.

Caffe's convention, which every model's settings follow: resize, swap channels, scale pixels to
``raw_scale``, subtract the mean, multiply by ``input_scale``. Optional grayscale (1-channel models)
and transpose (nets trained in MATLAB take W x H). Image files are read by image_file.py.
"""
from dataclasses import dataclass

import cv2
import numpy as np

# the one image file reader, also reached here by its callers
from app.net.image_file import as_bgr_uint8, decode_image_noted, read_image, read_image_noted  # noqa: F401


@dataclass
class InputSpec:
    """How images become the net's input; see model_zoo/*/model.yaml for the documented fields."""

    size: tuple = (224, 224)          # H, W of the net's input tensor
    channels: int = 3
    channel_swap: tuple = (2, 1, 0)   # indices into the BGR image: (2, 1, 0) feeds RGB
    raw_scale: float = 255.0
    mean: object = 0.0                # scalar, per-channel list, or a C x H x W array
    input_scale: object = 1.0         # scalar or per-channel list
    transpose: bool = False

    def image_size(self) -> tuple:
        """(width, height) an image is resized to before transposing."""
        height, width = self.size
        return (height, width) if self.transpose else (width, height)


def _per_channel(value, channels: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 1:
        return array.reshape(channels, 1, 1)
    return array


def mean_array(spec: InputSpec) -> np.ndarray:
    """The mean as an array that broadcasts against C x H x W (a mean image is centre-cropped)."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    if mean.ndim != 3:
        return _per_channel(mean, spec.channels) if mean.ndim == 1 else mean
    height, width = spec.size
    top, left = max(0, (mean.shape[1] - height) // 2), max(0, (mean.shape[2] - width) // 2)
    cropped = mean[:, top:top + height, left:left + width]
    if cropped.shape[1:] != (height, width):
        cropped = np.stack([cv2.resize(c, (width, height)) for c in mean])
    return cropped


def preprocess(images, spec: InputSpec) -> np.ndarray:
    """A list of H x W x 3 uint8 BGR images (any size) -> N x C x H x W float32 net input."""
    mean, scale = mean_array(spec), _per_channel(spec.input_scale, spec.channels)
    batch = []
    for index, image in enumerate(images):
        image = cv2.resize(as_bgr_uint8(image, f"image {index}"), spec.image_size(),
                           interpolation=cv2.INTER_AREA if image.shape[0] > spec.size[0] else cv2.INTER_LINEAR)
        pixels = image.astype(np.float32) * np.float32(spec.raw_scale / 255.0)
        if spec.channels == 1:
            chw = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)[None]
        else:
            chw = pixels[:, :, list(spec.channel_swap)].transpose(2, 0, 1)
        if spec.transpose:
            chw = chw.transpose(0, 2, 1)
        batch.append((chw - mean) * scale)
    return np.ascontiguousarray(np.stack(batch), dtype=np.float32)


def deprocess(batch: np.ndarray, spec: InputSpec) -> list:
    """Inverse of preprocess: N x C x H x W net input -> list of H x W x 3 uint8 BGR images."""
    mean, scale = mean_array(spec), _per_channel(spec.input_scale, spec.channels)
    chw = np.asarray(batch, dtype=np.float32) / scale + mean
    pixels = image_layout(chw, spec.channel_swap, spec.transpose) * np.float32(255.0 / spec.raw_scale)
    return list(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


def image_layout(chw: np.ndarray, channel_swap=(2, 1, 0), transpose: bool = False) -> np.ndarray:
    """Values in the net's input layout (... x C x H x W: an input diff, a first-layer filter) laid
    out like the image they came from (... x H x W x 3, BGR), undoing preprocess's transpose and
    channel swap: net channel c was read from the image's BGR channel ``channel_swap[c]``, so it is
    written back there. Any other channel count (1: a gray model) shows as the channels' mean in all
    three."""
    chw = np.asarray(chw)
    if transpose:
        chw = chw.swapaxes(-1, -2)
    if chw.shape[-3] != 3 or len(channel_swap) != 3:
        return np.repeat(chw.mean(axis=-3)[..., None], 3, axis=-1)
    image = np.empty(chw.shape[:-3] + chw.shape[-2:] + (3,), chw.dtype)
    image[..., list(channel_swap)] = np.moveaxis(chw, -3, -1)
    return image
