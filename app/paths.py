"""Where the toolbox keeps what it builds or downloads: converted models, sample images, weights."""
import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache folder: $DEEPVIS_CACHE, else ~/.cache/deepvis (created on use)."""
    folder = Path(os.environ.get("DEEPVIS_CACHE") or Path.home() / ".cache" / "deepvis").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
