"""Image lists (``path [label]`` a line) and siamese lists (``path path [label]`` a line).

Relative paths are relative to the list file's folder. A path holding spaces can be quoted
("my photo.jpg"). Blank lines and lines starting with # are ignored; Windows line ends, a UTF-8
byte order mark and names in any encoding the file system takes are read as they are. A label
made of digits is a class index (int); any other label is kept as text, spaces included. Missing
files are found when read: the app skips them, the tools report each one.
"""
import re
from pathlib import Path
from typing import List, Optional

from app.errors import DeepVisError
from app.inputs.files import Entry, FileSequence
from app.paths import user_path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                    ".pbm", ".jp2", ".exr", ".hdr", ".gif"}
_SNIFF_LINES = 20


class _ListSource(FileSequence):
    """A list file read into entries of ``PATHS`` images each."""

    PATHS, KIND, ITEMS = 1, "image list", "images"

    def __init__(self, list_file):
        list_file = user_path(list_file)
        entries = [_entry(list_file, number, line, paths=self.PATHS) for number, line in _lines(list_file)]
        if not entries:
            raise DeepVisError(f"{list_file}: no {self.ITEMS} in the list")
        super().__init__(entries, f"{self.KIND} {list_file} ({len(entries)} {self.ITEMS})")


class ImageListSource(_ListSource):
    """One image per line, with an optional ground-truth label shown in the status line."""


class SiameseListSource(_ListSource):
    """Two images per line; each frame holds both (the app shows first, second or both)."""

    PATHS, KIND, ITEMS = 2, "siamese list", "image pairs"


def is_siamese_list(list_file) -> bool:
    """True when the list's lines (the first few) each name two images."""
    list_file = user_path(list_file)
    sample = [line for _, line in _lines(list_file)][:_SNIFF_LINES]
    return bool(sample) and all(_names_an_image(list_file, line) for line in sample)


def _names_an_image(list_file: Path, line: str) -> bool:
    """Whether the line's second token is an image path (by extension, or an existing file)."""
    tokens = _tokens(line, 2)
    if len(tokens) < 2:
        return False
    second = Path(tokens[1])
    return second.suffix.lower() in IMAGE_EXTENSIONS or _resolve(list_file, tokens[1]).is_file()


def _lines(list_file: Path):
    try:
        data = list_file.read_bytes()
    except OSError as error:
        raise DeepVisError(f"{list_file}: cannot read ({error.strerror or error})") from None
    if b"\0" in data:
        raise DeepVisError(f"{list_file}: a binary file, not a list (it holds NUL bytes)")
    # names that are not UTF-8 keep their bytes (as the file system gives them), a BOM is dropped
    text = data.decode("utf-8-sig", errors="surrogateescape")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def _tokens(line: str, paths: int) -> List[str]:
    """The first ``paths`` path tokens (quoted or not), then the rest of the line if any."""
    tokens, rest = [], line
    for _ in range(paths):
        rest = rest.lstrip()
        if not rest:
            break
        match = re.match(r'"([^"]*)"|\'([^\']*)\'|(\S+)', rest)
        tokens.append(next(group for group in match.groups() if group is not None))
        rest = rest[match.end():]
    if rest.strip():
        tokens.append(rest.strip())
    return tokens


def _entry(list_file: Path, number: int, line: str, paths: int) -> Entry:
    tokens = _tokens(line, paths)
    if len(tokens) < paths:
        raise DeepVisError(f"{list_file}: line {number}: expected {paths} image paths, got {line!r}")
    names, label = tokens[:paths], _label(tokens[paths] if len(tokens) > paths else None)
    return Entry(tuple(_resolve(list_file, name) for name in names), label, " | ".join(names))


def _label(text: Optional[str]):
    if text is None:
        return None
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _resolve(list_file: Path, name: str) -> Path:
    path = user_path(name)
    return path if path.is_absolute() else list_file.parent / path

