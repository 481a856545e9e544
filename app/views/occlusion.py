"""Occlusion saliency: slide a patch over the input and map how much the selected unit drops.

Where covering the image lowers the unit most, the unit looked (Zeiler & Fergus 2014). Occluded
copies of the input run through ``Net.forward`` in batches; the map is at the net's input
resolution, in the input tensor's layout (as ``Net.backward`` returns), the drop averaged over
every patch that covered a pixel.
"""
import numpy as np

from app.errors import DeepVisError
from app.views.backprop import to_image_layout
from app.views.filters import diverging_colors
from app.views.registry import InputMap, Message, shows

FILLS = ("mean", "zero")


def patch_positions(height: int, width: int, patch: int, stride: int) -> list:
    """Top-left corners (y, x) of patch x patch squares every ``stride`` pixels, the last one
    flush with the bottom / right edge so every pixel is covered."""
    def starts(extent):
        last = max(extent - patch, 0)
        values = list(range(0, last + 1, stride))
        return values if values[-1] == last else values + [last]
    return [(y, x) for y in starts(height) for x in starts(width)]


def input_batch(net, image) -> np.ndarray:
    """One input as a 1 x C x H x W float32 batch: an H x W x 3 uint8 BGR image (preprocessed)
    or an already preprocessed C x H x W / 1 x C x H x W float32 array."""
    if isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim in (3, 4):
        batch = image[None] if image.ndim == 3 else image
        if batch.shape != (1,) + tuple(net.input_shape):
            raise DeepVisError(f"{net.spec.name}: occlusion takes one input of shape {net.input_shape}, "
                               f"got {image.shape}")
        return batch
    return net.preprocess([image])


def fill_array(net, batch: np.ndarray, fill) -> np.ndarray:
    """What a patch is filled with, as a C x H x W input-space array.

    "mean": each channel's mean over this image; "zero": 0 in input space (the dataset mean for
    models that subtract one); a number: that gray pixel value (0-255) preprocessed like an image.
    """
    if fill == "mean":
        return np.broadcast_to(batch[0].mean(axis=(1, 2), keepdims=True), batch.shape[1:])
    if fill == "zero":
        return np.zeros(batch.shape[1:], np.float32)
    try:
        gray = float(fill)
    except (TypeError, ValueError):
        raise DeepVisError(f"occlusion fill {fill!r}: use one of {', '.join(FILLS)} or a gray value 0-255") from None
    if not 0 <= gray <= 255:
        raise DeepVisError(f"occlusion fill {fill!r}: a gray value must lie in 0-255")
    return net.preprocess([np.full((8, 8, 3), round(gray), np.uint8)])[0]  # resized to the input size


def unit_scores(activation: np.ndarray, unit: int, at=None) -> np.ndarray:
    """Per sample, the unit's score: its value at (y, x) when ``at`` is given, else its mean."""
    if at is not None:
        return activation[(slice(None), unit) + tuple(at)].astype(np.float64)
    return activation[:, unit].reshape(len(activation), -1).mean(axis=1, dtype=np.float64)


def _check_unit(net, layer: str, unit: int, at) -> None:
    shape = net.layer(layer).shape
    if not shape or not 0 <= unit < shape[0]:
        raise DeepVisError(f"{net.spec.name}: {layer}: no unit {unit} (the layer has {shape[0] if shape else 0})")
    if at is not None and (len(at) != len(shape) - 1 or not all(0 <= p < s for p, s in zip(at, shape[1:]))):
        raise DeepVisError(f"{net.spec.name}: {layer}: position {tuple(at)} lies outside {shape[1:]}")


def occlusion_map(net, image, layer: str, unit: int, patch: int = 32, stride: int = 8, fill="mean",
                  batch_size: int = 8, at=None) -> np.ndarray:
    """H x W float32 map of the drop of ``unit`` of ``layer`` when a patch covers each pixel.

    image: an H x W x 3 uint8 BGR image or one preprocessed input (see ``input_batch``).
    patch, stride: in input pixels. fill: see ``fill_array``. batch_size: occluded copies per
    forward run (results do not depend on it). at: score the unit at (y, x) instead of its mean.
    """
    _check_unit(net, layer, unit, at)
    if patch < 1 or stride < 1 or batch_size < 1:
        raise DeepVisError(f"occlusion: patch ({patch}), stride ({stride}) and batch ({batch_size}) must be >= 1")
    base = input_batch(net, image)
    height, width = base.shape[2:]
    patch = min(patch, height, width)
    filler = fill_array(net, base, fill)
    positions = patch_positions(height, width, patch, stride)
    scores = np.empty(len(positions))
    for start in range(0, len(positions), batch_size):
        chunk = positions[start:start + batch_size]
        batch = np.repeat(base, len(chunk), axis=0)
        for index, (y, x) in enumerate(chunk):
            batch[index, :, y:y + patch, x:x + patch] = filler[:, y:y + patch, x:x + patch]
        scores[start:start + len(chunk)] = unit_scores(net.forward(batch)[layer], unit, at)
    baseline = unit_scores(net.forward(base)[layer], unit, at)[0]
    total, covered = np.zeros((height, width)), np.zeros((height, width))
    for (y, x), score in zip(positions, scores):
        total[y:y + patch, x:x + patch] += baseline - score
        covered[y:y + patch, x:x + patch] += 1
    return (total / np.maximum(covered, 1)).astype(np.float32)


def render_map(occlusion: np.ndarray, image: np.ndarray = None, alpha: float = 0.8) -> np.ndarray:
    """The map as a BGR image: red where covering lowers the unit, blue where it raises it,
    white where nothing changes. Over ``image`` (same size, BGR) the colour's weight grows with
    the drop's size (up to ``alpha``), so unchanged places show the image itself."""
    peak = np.abs(occlusion).max()
    scaled = occlusion / peak if peak > 0 else occlusion
    heat = diverging_colors(scaled)
    if image is None:
        return heat
    weight = alpha * (np.abs(scaled) ** 0.8)[..., None]  # the original's overlay mask exponent
    blend = weight * heat.astype(np.float32) + (1 - weight) * image.astype(np.float32)
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)


def _about(settings) -> str:
    return f"patch {settings.occlusion_patch}/stride {settings.occlusion_stride}/fill {settings.occlusion_fill}"


@shows("occlusion", "back", place=20, about=_about, toggle=True)
def occlusion_saliency(net, images: list, origin: tuple, settings) -> list:
    """The occlusion map of the origin unit for every image shown, as an input map (the same map in
    every channel), with settings.occlusion_patch, _stride, _fill and _batch."""
    maps = []
    for image in images:
        try:
            heat = occlusion_map(net, net.preprocess([image]), origin[0], origin[1], patch=settings.occlusion_patch,
                                 stride=settings.occlusion_stride, fill=settings.occlusion_fill,
                                 batch_size=settings.occlusion_batch)
        except DeepVisError as error:
            maps.append(Message(f"no occlusion map: {error}"))
            continue
        note = "" if np.any(heat) else (f"occluding the input does not change {origin[0]}:{origin[1]} "
                                        "(the unit is not active on this image, or the patch is too small)")
        maps.append(InputMap(to_image_layout(net, np.repeat(heat[None], net.input_shape[0], axis=0)), None, note))
    return maps
