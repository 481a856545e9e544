"""What every input source gives the app: frames, and a small interface to step through them."""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One input for the net, with what the status line shows about it.

    ``images`` holds one H x W x 3 uint8 BGR image, or two for a siamese pair, or none while a
    camera is waiting for its first frame (``waiting``; ``message`` says why). A new Frame object
    is made for every new input, so ``frame is not last_frame`` tells the app something changed
    (frames compare by identity: their pixels are never compared).
    """

    images: Tuple[np.ndarray, ...]
    name: str                      # file name(s), "camera 0" or "clip.mp4 #42"
    label: object = None           # ground truth from an image list (str, or int class index), else None
    index: int = 0                 # position in the source's list (frame number for a video)
    count: int = 1                 # length of that list (0 when unknown: a camera)
    message: str = ""              # why a file was skipped or converted, or that the camera is lost

    @property
    def waiting(self) -> bool:
        """No image yet: nothing for the net to run on."""
        return not self.images

    @property
    def image(self) -> np.ndarray:
        """The first (or only) image."""
        return self.images[0]


class InputSource:
    """Base of every input source. Sources are used from one thread at a time (the input worker's).

    ``read()`` returns a Frame when there is something new since the last call, else None.
    ``next()`` / ``previous()`` step through a file list (wrapping) or, on a paused video, by one
    frame; a camera ignores them. ``toggle_freeze()`` pauses a live source (camera, video).
    """

    description = "input"     # one line for the status bar and logs
    is_camera = False
    is_live = False           # frames keep coming without next(): camera and video

    def __init__(self):
        self.frozen = False
        self._unread = True

    def read(self) -> Optional[Frame]:
        raise NotImplementedError

    def next(self) -> None:
        """Go to the following item (wraps around at the end)."""

    def previous(self) -> None:
        """Go to the preceding item (wraps around at the start)."""

    def toggle_freeze(self) -> None:
        """Pause or resume a live source; files are always still."""
        if self.is_live:
            self.frozen = not self.frozen

    def reshow(self) -> None:
        """Make the next read() return the current frame again (after switching back to this source)."""
        self._unread = True

    def close(self) -> None:
        """Release devices and files; the source returns no more frames."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"
