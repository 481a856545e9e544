"""Save view (key W, button Save): the window's picture as a PNG in save_view_dir.

The file is named after the model, the layer, the unit and the time. Model and layer names come
from the model file: only letters, digits, '.', '-' and '_' of them reach the name, so the file
always lands in the folder.
"""
import time

from app.errors import DeepVisError
from app.files import write_image_atomic
from app.paths import user_path
from app.unit_images import plain_name

NAME_PART = 60   # characters kept of the model's and the layer's names


def file_name(model: str, layer: str, unit: int, when: float, attempt: int = 0) -> str:
    """<model>_<layer>_unit<N>_<YYYYmmdd-HHMMSS>[-attempt].png, each name made safe and short."""
    parts = [plain_name(name).strip(".")[:NAME_PART] or "_" for name in (model, layer)]
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when)) + (f"-{attempt + 1}" if attempt else "")
    return f"{parts[0]}_{parts[1]}_unit{unit}_{stamp}.png"


def save(image, folder, model: str, layer: str, unit: int, when: float = None) -> str:
    """Write ``image`` (the window as shown) to ``folder``; the status line's one-line message."""
    if image is None:
        return "save view: nothing drawn yet"
    when = time.time() if when is None else when
    folder = user_path(folder)
    attempt = 0
    while (folder / file_name(model, layer, unit, when, attempt)).exists():   # two saves in one second
        attempt += 1
    try:
        path = write_image_atomic(folder / file_name(model, layer, unit, when, attempt), image)
    except (OSError, DeepVisError) as error:
        return f"save view: {folder}: {error.strerror if isinstance(error, OSError) else error}"
    return f"view saved: {path}"
