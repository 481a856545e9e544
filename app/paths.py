"""Where the toolbox keeps what it builds or downloads (converted models, sample images, weights),
and the content digests that name and check those files."""
import os
from pathlib import Path


def user_path(text) -> Path:
    """``text`` as a path with ``~`` and ``~user`` expanded; a ``~name`` of no known user (or with no
    home) stays as written, a file name like any other."""
    path = Path(text)
    try:
        return path.expanduser()
    except RuntimeError:   # pathlib: "Could not determine home directory"
        return path


def cache_dir() -> Path:
    """The user cache folder: $DEEPVIS_CACHE, else ~/.cache/deepvis (created on use)."""
    folder = user_path(os.environ.get("DEEPVIS_CACHE") or Path.home() / ".cache" / "deepvis")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def model_files_dir(entry: str) -> Path:
    """Where a model_zoo entry's downloaded files live."""
    return cache_dir() / "models" / entry


def feed_file(digest, path):
    """Feed a file's bytes to a hashlib object a megabyte at a time (big weights stay out of memory);
    returns the object."""
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest
