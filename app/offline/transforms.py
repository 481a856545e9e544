"""Lucid-style random transforms for activation maximization: jitter, zoom and rotation each step.

The net sees a randomly warped copy of the image, so only features that survive small shifts,
zooms and turns keep growing; the gradient is warped back onto the image by the inverse transform
(the adjoint of the warp, up to interpolation and borders).
"""
import cv2
import numpy as np


def random_warps(preset, streams: list, size: tuple):
    """One 2 x 3 affine matrix per image (from that image's random stream), or None when the preset
    uses no transforms (then no random numbers are drawn)."""
    if not (preset.jitter or preset.scale or preset.rotate):
        return None
    height, width = size
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    warps = []
    for stream in streams:
        angle = stream.uniform(-preset.rotate, preset.rotate)
        zoom = stream.uniform(1.0 - preset.scale, 1.0 + preset.scale)
        shift = stream.integers(-preset.jitter, preset.jitter + 1, size=2)
        matrix = cv2.getRotationMatrix2D(centre, angle, zoom)
        matrix[:, 2] += shift
        warps.append(matrix)
    return warps


def _warp(chw: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    height, width = chw.shape[1:]
    planes = [cv2.warpAffine(plane, matrix, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101) for plane in chw]
    return np.stack(planes)


def apply(x: np.ndarray, warps) -> np.ndarray:
    """The batch ``x`` (N x C x H x W) warped image by image."""
    if warps is None:
        return x
    return np.stack([_warp(image, matrix) for image, matrix in zip(x, warps)])


def apply_adjoint(grad: np.ndarray, warps) -> np.ndarray:
    """A gradient with respect to the warped images carried back onto the unwarped ones."""
    if warps is None:
        return grad
    return np.stack([_warp(image, cv2.invertAffineTransform(matrix)) for image, matrix in zip(grad, warps)])
