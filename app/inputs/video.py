"""A video file, played at its own frame rate and looped; `f` pauses it, `e`/`w` then step frames."""
import threading
import time
from typing import Optional

import cv2

from app.errors import DeepVisError
from app.inputs.source import Frame, InputSource
from app.net.preprocess import as_bgr_uint8
from app.paths import user_path

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
_DEFAULT_FPS = 25.0


class VideoSource(InputSource):
    """Frames of a video file. While playing, next/previous jump ``seek_seconds``; paused, one frame."""

    is_live = True

    def __init__(self, path, seek_seconds: float = 5.0):
        super().__init__()
        self.path = user_path(path)
        self.description = f"video {self.path}"
        self._lock = threading.Lock()
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise DeepVisError(f"{self.path}: cannot open as a video")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self._interval = 1.0 / (fps if 0 < fps < 1000 else _DEFAULT_FPS)
        self._count = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._seek_frames = max(1, round(seek_seconds / self._interval))
        self._next_position = 0     # the frame capture.read() returns next
        self._current: Optional[Frame] = None
        if not self._show(0):
            self._capture.release()
            raise DeepVisError(f"{self.path}: no readable video frames")
        self._due = time.monotonic() + self._interval

    def read(self) -> Optional[Frame]:
        with self._lock:
            if self._capture is None:
                return None
            now = time.monotonic()
            if not self.frozen and now >= self._due:
                self._show(self._current.index + 1)
                self._due = max(self._due + self._interval, now)
            if not self._unread:
                return None
            self._unread = False
            return self._current

    def next(self) -> None:
        self._jump(1 if self.frozen else self._seek_frames)

    def previous(self) -> None:
        self._jump(-1 if self.frozen else -self._seek_frames)

    def close(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None

    def _jump(self, frames: int) -> None:
        with self._lock:
            if self._capture is None:
                return
            target = self._current.index + frames
            if self._count:
                target %= self._count
            self._show(max(target, 0))

    def _show(self, position: int) -> bool:
        """Decode frame ``position`` (from the start past the end: the video loops)."""
        image = self._decode(position)
        if image is None and position > 0:
            if not 0 < self._count <= position:
                self._count = position   # the file ended before its header said (or never said)
            position = 0
            image = self._decode(0)
        if image is None:
            return False
        self._current = Frame((as_bgr_uint8(image, self.path.name),), f"{self.path.name} #{position}",
                              None, position, self._count, "")
        self._unread = True
        return True

    def _decode(self, position: int):
        if position != self._next_position:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, position)
        ok, image = self._capture.read()
        self._next_position = position + 1
        return image if ok and image is not None and image.size else None
