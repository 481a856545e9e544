"""Fitting an image to the net's input: centre-crop to its aspect ratio, or stretch (key `0`)."""
import cv2
import numpy as np

from app.errors import DeepVisError

MODES = ("crop", "stretch")


def check_mode(mode: str) -> str:
    """The mode, or one line saying the input_fit_mode setting is not one of MODES."""
    if mode not in MODES:
        raise DeepVisError(f"settings: input_fit_mode: {mode!r} is not one of {', '.join(MODES)}")
    return mode


def fit_to_input(image: np.ndarray, size, mode: str = "crop") -> np.ndarray:
    """The image resized to ``size`` = (height, width), keeping that aspect ratio.

    "crop" cuts the largest centred window with the input's aspect ratio (a 320 x 240 model keeps
    4:3, not a square) before resizing; "stretch" resizes the whole image and distorts it.
    """
    check_mode(mode)
    height, width = int(size[0]), int(size[1])
    if mode == "crop":
        image = centre_crop(image, width / height)
    shrinking = image.shape[0] > height or image.shape[1] > width
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def centre_crop(image: np.ndarray, aspect: float) -> np.ndarray:
    """The largest centred window of ``image`` whose width / height is ``aspect``."""
    rows, cols = image.shape[:2]
    if cols > rows * aspect:
        keep = max(1, round(rows * aspect))
        left = (cols - keep) // 2
        return image[:, left:left + keep]
    keep = max(1, round(cols / aspect))
    top = (rows - keep) // 2
    return image[top:top + keep]
