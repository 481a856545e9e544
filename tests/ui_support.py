"""Nets, settings and images shared by the app's tests, each made once per test session."""
import functools
from pathlib import Path

import cv2
import numpy as np

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
MNIST = TESTDATA / "onnx_mnist8" / "mnist-8.onnx"
ULTRAFACE = TESTDATA / "onnx_ultraface_slim320" / "version-slim-320.onnx"
MNIST_INPUT = dict(channel_swap=[0], mean=0, input_scale=1, raw_scale=255)
ULTRAFACE_INPUT = dict(channel_swap=[2, 1, 0], mean=127, input_scale=1 / 128, raw_scale=255)


@functools.lru_cache(maxsize=None)
def mnist_net():
    from app.net import Net

    return Net.load(str(MNIST), provider="cpu", input=MNIST_INPUT)


@functools.lru_cache(maxsize=None)
def ultraface_net():
    from app.net import Net

    return Net.load(str(ULTRAFACE), provider="cpu", input=ULTRAFACE_INPUT)


def settings(**overrides):
    from app.settings import load_settings

    return load_settings(**overrides)


def digit_image(size: int = 96) -> np.ndarray:
    """A white '7' on black: mnist's units respond to it."""
    image = np.zeros((size, size, 3), np.uint8)
    cv2.putText(image, "7", (size // 5, size * 4 // 5), cv2.FONT_HERSHEY_SIMPLEX, size / 30, (255, 255, 255),
                max(2, size // 10))
    return image


def write_images(folder: Path, count: int = 3) -> Path:
    """``count`` PNGs of digits, sorted by name, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = np.zeros((96, 96, 3), np.uint8)
        cv2.putText(image, str(index + 1), (20, 78), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 9)
        cv2.imwrite(str(folder / f"digit_{index}.png"), image)
    return folder
