"""The site's files, written only when they change: a rerun over the same units folder writes nothing.

Images are stored once under content-addressed names (``img/ab/<digest>.png``), copied or
hard-linked, so a picture shown by several pages, units or layers is one file. A manifest maps each
source file, by size and modification time, to the name it got, so a rerun reads only new or
changed sources. Files of the site's own making that this run did not produce (images no page
shows any more, the data of a layer left out) are removed at the end of a run, never during it.
"""
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import cv2

from app.errors import DeepVisError
from app.files import write_bytes_atomic
from app.net.image_file import read_image
from app.paths import user_path

MANIFEST = "atlas-files.json"
IMAGE_FOLDER = "img"
BROWSER_IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
# what _content_name makes: safe to join to the site's folder without resolving the path
CONTENT_NAME = re.compile(r"img/[0-9a-f]{2}/[0-9a-f]{20}\.[a-z]+")
DATA_NAME = re.compile(r"data/layer-[0-9]{3}-[A-Za-z0-9._~-]*\.js")   # site.data_file's names


class SiteFiles:
    """Writes under ``root``; ``written`` lists the paths (relative, POSIX) written by this run."""

    def __init__(self, root, link: bool = False):
        self.root, self.link = user_path(root).resolve(), link
        self.written = []
        self.produced = set()   # every path this run wrote or found already holding what it would write
        self.problems = []      # one line per image file that could not be read (left out of the site)
        self._manifest = self._read_manifest()
        self._seen = {}

    def _read_manifest(self) -> dict:
        try:
            manifest = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
            return manifest if isinstance(manifest, dict) else {}
        except (OSError, ValueError):
            return {}

    def path(self, relative: str) -> Path:
        """``relative`` under the site, refused when it would lead out of it."""
        path = (self.root / relative).resolve()
        if self.root not in path.parents:
            raise DeepVisError(f"{self.root}: {relative!r} would be written outside the site")
        return path

    def write_bytes(self, relative: str, data: bytes) -> str:
        """``data`` at ``relative`` unless the file already holds it; returns ``relative``."""
        path = self.path(relative)
        self.produced.add(relative)
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return relative
        except OSError:
            pass
        write_bytes_atomic(path, data)
        self.written.append(relative)
        return relative

    def write_text(self, relative: str, text: str) -> str:
        return self.write_bytes(relative, text.encode("utf-8"))

    def image_bytes(self, data: bytes, suffix: str = ".png") -> str:
        """An image held in memory, under its content's name; returns the site-relative URL."""
        relative = _content_name(hashlib.sha256(data).hexdigest(), suffix)
        if not (self.root / relative).is_file():
            self.write_bytes(relative, data)
        self.produced.add(relative)
        return relative

    def image_file(self, source) -> str:
        """A copy (or hard link) of the image file ``source`` under its content's name; returns the
        site-relative URL, or None when the file is missing. Formats a browser cannot show are
        stored as PNG."""
        source = Path(source)
        key = str(source)
        if key in self._seen:
            return self._seen[key]
        try:
            stat = source.stat()
        except OSError:
            return None
        known = self._manifest.get(key)
        if (isinstance(known, list) and known[:2] == [stat.st_size, stat.st_mtime_ns]
                and CONTENT_NAME.fullmatch(str(known[2])) and (self.root / known[2]).is_file()):
            self._seen[key] = known[2]
            self.produced.add(known[2])
            return known[2]
        try:
            image = read_image(source)   # new or changed: the one reader's limits, and decodable
        except DeepVisError as error:
            self.problems.append(f"{error}; the site shows no image there: make it again with the tool that "
                                 "wrote it and rerun tools.atlas")
            self._seen[key] = None
            return None
        suffix = source.suffix.lower()
        if suffix not in BROWSER_IMAGES:
            relative = self.image_bytes(cv2.imencode(".png", image)[1].tobytes())
        else:
            relative = _content_name(_file_digest(source), suffix)
            if not (self.root / relative).is_file():
                self._place(source, relative)
        if relative is not None:
            self._manifest[key] = [stat.st_size, stat.st_mtime_ns, relative]
            self.produced.add(relative)
        self._seen[key] = relative
        return relative

    def _place(self, source: Path, relative: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.part")
        temporary.unlink(missing_ok=True)
        try:
            if self.link:
                os.link(source, temporary)
            else:
                shutil.copyfile(source, temporary)
        except OSError:   # a link across file systems: copy instead
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
        self.written.append(relative)

    def save_manifest(self) -> None:
        """The manifest of the sources this run used (those of files removed as unused are dropped)."""
        used = {key: entry for key, entry in self._manifest.items()
                if isinstance(entry, list) and len(entry) == 3 and entry[2] in self.produced}
        self.write_text(MANIFEST, json.dumps(used, indent=0, sort_keys=True))

    def remove_unused(self) -> list:
        """Remove the images and layer data of earlier runs that this run did not produce (and image
        folders left empty); returns their site-relative paths. Only names of the site's own making
        are touched: other files in the folder stay."""
        removed = []
        for pattern, folder in ((CONTENT_NAME, IMAGE_FOLDER), (DATA_NAME, "data")):
            for path in sorted((self.root / folder).rglob("*")):
                relative = path.relative_to(self.root).as_posix()
                if path.is_file() and pattern.fullmatch(relative) and relative not in self.produced:
                    path.unlink()
                    removed.append(relative)
        for folder in sorted((self.root / IMAGE_FOLDER).glob("*"), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return removed

    def size(self, leave_out=()) -> tuple:
        """(files, bytes) of the whole site, but the files named in ``leave_out``."""
        skipped = {self.path(relative) for relative in leave_out}
        files = [path for path in self.root.rglob("*")
                 if path.is_file() and path not in skipped and not _unfinished(path)]
        return len(files), sum(path.stat().st_size for path in files)


def _unfinished(path: Path) -> bool:
    """The temporary file of a write a kill cut short (app/files.py, _place): not part of the site."""
    return path.name.startswith(".") and path.name.endswith(".part")


def _content_name(digest: str, suffix: str) -> str:
    return f"{IMAGE_FOLDER}/{digest[:2]}/{digest[:20]}{suffix}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
