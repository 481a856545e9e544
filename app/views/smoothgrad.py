"""SmoothGrad (Smilkov et al. 2017): the plain gradient from a unit to the input, averaged over
noisy copies of the input. The noise washes out the pixel-scale flicker of the gradient and keeps
what stays under small changes of the image.

settings.smoothgrad_samples copies, Gaussian noise of settings.smoothgrad_noise times the input's
value range (0.15: the paper's choice), drawn from a fixed seed so that a still image gives a still
map. Each copy is one image of a forward and backward batch.
"""
import numpy as np

from app.errors import DeepVisError
from app.views.backprop import input_maps
from app.views.registry import Message, shows

SEED = 0


def smooth_gradient(net, batch: np.ndarray, layer: str, unit: int, samples: int = 16,
                    noise: float = 0.15) -> np.ndarray:
    """The mean gradient of ``unit`` of ``layer`` (seeded with its own activation, as the back pane's
    other methods) over ``samples`` copies of the 1 x C x H x W input ``batch`` plus Gaussian noise
    of std ``noise`` x (its max - min); 1 x C x H x W. noise 0 gives the plain gradient."""
    sigma = noise * float(batch.max() - batch.min())
    shape = (samples,) + batch.shape[1:]
    noisy = batch + np.random.default_rng(SEED).normal(0.0, sigma, shape).astype(np.float32)
    gradient = net.forward(noisy).backward(layer, unit, mode="grad", seed="activation", seed_through_rectifier=True)
    return gradient.input.mean(axis=0, keepdims=True)


def _about(settings) -> str:
    return f"{settings.smoothgrad_samples} samples, noise {settings.smoothgrad_noise:g}"


@shows("smoothgrad", "back", place=30, about=_about)
def smoothgrad(net, images: list, origin: tuple, settings) -> list:
    """SmoothGrad from ``origin`` for every image shown."""
    maps = []
    for image in images:
        try:
            gradient = smooth_gradient(net, net.preprocess([image]), origin[0], origin[1],
                                       settings.smoothgrad_samples, settings.smoothgrad_noise)
        except DeepVisError as error:
            maps.append(Message(f"no smoothgrad: {error}"))
            continue
        maps += input_maps(net, gradient, origin, how="smoothgrad")
    return maps
