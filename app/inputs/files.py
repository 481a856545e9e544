"""Still images from files: a directory, a single image, and the stepping they share with lists.

A file is decoded only when the position changes. A file that cannot be read is skipped (in the
direction of travel) and the next frame's message says so; a 16-bit image is converted to 8 bits
with a message. Nothing here raises once the source is open.
"""
import os
import re
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from app.errors import DeepVisError
from app.inputs.source import Frame, InputSource
from app.net.preprocess import read_image_noted
from app.paths import user_path

_MAX_SKIPS_SHOWN = 3


class Entry(NamedTuple):
    """One position of a file sequence: one path (two for a siamese pair), its label, its name."""

    paths: Tuple[Path, ...]
    label: object
    name: str


def natural_key(name: str) -> list:
    """Sort key that puts img2 before img10 (digit runs compare as numbers, case ignored)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class FileSequence(InputSource):
    """A wrapping list of entries, decoded on demand; the base of directory and list sources."""

    def __init__(self, entries: List[Entry], description: str):
        super().__init__()
        self.entries = entries
        self.description = description
        self.index = 0
        self._step = 1

    def next(self) -> None:
        self._move(1)

    def previous(self) -> None:
        self._move(-1)

    def add(self, path, name: str) -> None:
        """Append the image file ``path`` (shown as ``name``) to the list and go to it."""
        self.entries.append(Entry((Path(path),), None, name))
        self._move(len(self.entries) - 1 - self.index)

    def _move(self, step: int) -> None:
        self.index = (self.index + step) % len(self.entries)
        self._step = step
        self._unread = True

    def read(self) -> Optional[Frame]:
        if not self._unread:
            return None
        self._unread = False
        return self._load_from(self.index)

    def _load_from(self, start: int) -> Frame:
        """The first readable entry from ``start`` on, going the way the user last went."""
        skipped = []
        for attempt in range(len(self.entries)):
            position = (start + self._step * attempt) % len(self.entries)
            entry = self.entries[position]
            try:
                loaded = [read_image_noted(path, path.name) for path in entry.paths]
            except DeepVisError as error:
                skipped.append(f"skipped {error}")
                continue
            self.index = position
            notes = _summary(skipped) + [note for _, note in loaded if note]
            return Frame(tuple(image for image, _ in loaded), entry.name, entry.label,
                         position, len(self.entries), "; ".join(notes))
        # no image: the app shows the message and runs no net (never on a picture of the message)
        message = f"no readable image in {self.description}: {skipped[-1]}"
        return Frame((), self.entries[start].name, None, start, len(self.entries), message)


def _summary(skipped: List[str]) -> List[str]:
    if len(skipped) <= _MAX_SKIPS_SHOWN:
        return skipped
    return skipped[:_MAX_SKIPS_SHOWN] + [f"and {len(skipped) - _MAX_SKIPS_SHOWN} more skipped"]


class DirectorySource(FileSequence):
    """Every file of a folder (not its subfolders), sorted naturally, optionally filtered by a regex
    searched in the file name. Hidden files are left out; other non-images are skipped when reached."""

    def __init__(self, folder, regex: Optional[str] = None):
        folder = user_path(folder)
        try:
            pattern = re.compile(regex) if regex else None
        except re.error as error:
            raise DeepVisError(f"settings: input_directory_regex: {regex!r}: {error}") from None
        try:
            names = [item.name for item in os.scandir(folder)
                     if item.is_file() and not item.name.startswith(".")]
        except OSError as error:
            raise DeepVisError(f"{folder}: cannot list ({error.strerror or error})") from None
        names = sorted((n for n in names if pattern is None or pattern.search(n)), key=natural_key)
        if not names:
            matching = f" matching {regex!r}" if regex else ""
            raise DeepVisError(f"{folder}: no files{matching}")
        entries = [Entry((folder / name,), None, name) for name in names]
        super().__init__(entries, f"directory {folder} ({len(names)} files)")


class ImageFileSource(FileSequence):
    """One image file."""

    def __init__(self, path):
        path = user_path(path)
        super().__init__([Entry((path,), None, path.name)], f"image {path}")
