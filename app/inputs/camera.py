"""A webcam read in its own thread, so a slow camera never slows the app.

A missing or lost camera is not an error: the source yields a placeholder frame whose message
says so, and tries again every few seconds.
"""
import threading
import time
from typing import Optional

import cv2
import numpy as np

from app.errors import DeepVisError
from app.inputs.source import Frame, InputSource, placeholder_image
from app.net.preprocess import as_bgr_uint8

_JOIN_SECONDS = 0.5


def stretch_contrast(image: np.ndarray) -> np.ndarray:
    """Map the 1st..99th percentile of the pixel values onto 0..255 (dim webcams look flat)."""
    low, high = np.percentile(image[::4, ::4], (1, 99))
    if high - low < 1:
        return image
    table = np.clip((np.arange(256) - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


class CameraSource(InputSource):
    """Camera ``index`` (as cv2.VideoCapture numbers them), mirrored like a mirror by default."""

    is_camera = True
    is_live = True

    def __init__(self, index: int = 0, mirror: bool = True, contrast_stretch: bool = False,
                 fps: float = 20.0, retry_seconds: float = 3.0):
        super().__init__()
        self.index, self.mirror, self.contrast_stretch = index, mirror, contrast_stretch
        self.description = f"camera {index}"
        self._interval, self._retry_seconds = 1.0 / fps, retry_seconds
        self._lock = threading.Lock()
        self._latest: Optional[Frame] = None
        self._serial, self._serial_read = 0, 0
        self._frames_captured = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name=f"camera-{index}", daemon=True)
        self._thread.start()

    def read(self) -> Optional[Frame]:
        with self._lock:
            fresh = self._serial != self._serial_read and not self.frozen
            if self._latest is None or not (fresh or self._unread):
                return None
            self._serial_read, self._unread = self._serial, False
            return self._latest

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_SECONDS)

    def _capture_loop(self) -> None:
        capture = None
        while not self._stopping.is_set():
            started = time.monotonic()
            if capture is None:
                capture = self._open()
            problem = self._capture_one(capture)
            if problem:
                if capture is not None:
                    capture.release()
                    capture = None
                self._publish_problem(problem)
                self._stopping.wait(self._retry_seconds)
            else:
                self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))
        if capture is not None:
            capture.release()

    def _capture_one(self, capture) -> str:
        """Read and publish one frame; returns what went wrong, or ""."""
        if capture is None:
            return f"camera {self.index}: not found, retrying"
        ok, image = _read(capture)
        if not ok:
            return f"camera {self.index}: lost, retrying"
        try:
            self._publish(self._prepare(image), "")
        except DeepVisError as error:
            return f"{error}, retrying"
        return ""

    def _open(self):
        try:
            capture = cv2.VideoCapture(self.index)
        except cv2.error:
            return None
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        image = as_bgr_uint8(image, self.description)
        if self.mirror:
            image = cv2.flip(image, 1)
        return stretch_contrast(image) if self.contrast_stretch else image

    def _publish_problem(self, message: str) -> None:
        """Show the problem once (not again while it lasts)."""
        with self._lock:
            if self._latest is not None and self._latest.message == message:
                return
        self._publish(placeholder_image(message), message)

    def _publish(self, image: np.ndarray, message: str) -> None:
        frame = Frame((image,), self.description, None, self._frames_captured, 0, message)
        with self._lock:
            self._latest = frame
            self._serial += 1
            self._frames_captured += 1


def _read(capture):
    """capture.read(), treating a driver exception or an empty image as a lost camera."""
    try:
        ok, image = capture.read()
    except cv2.error:
        return False, None
    return bool(ok) and image is not None and image.size > 0, image
