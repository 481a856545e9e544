"""The input shown with no --input: scikit-image's colour sample photos, written once to a folder.

They ship inside the scikit-image package, so nothing is downloaded.
"""
from pathlib import Path

import cv2
from skimage import data

from app.files import write_image_atomic

SAMPLES = {  # file name -> photo (RGB) from skimage.data
    "astronaut.jpg": data.astronaut,
    "chelsea.jpg": data.chelsea,
    "coffee.jpg": data.coffee,
    "hubble_deep_field.jpg": data.hubble_deep_field,
    "immunohistochemistry.jpg": data.immunohistochemistry,
    "motorcycle.jpg": lambda: data.stereo_motorcycle()[0],
    "retina.jpg": data.retina,
    "rocket.jpg": data.rocket,
}
FOLDER_NAME = "sample_images"


def default_input_dir(root=None) -> Path:
    """``root``/sample_images holding the sample photos (written on the first call).

    ``root`` None is the user cache dir ($DEEPVIS_CACHE, else ~/.cache/deepvis).
    """
    if root is None:
        from app.paths import cache_dir
        root = cache_dir()
    folder = Path(root) / FOLDER_NAME
    folder.mkdir(parents=True, exist_ok=True)
    for name, photo in SAMPLES.items():
        path = folder / name
        if not path.is_file():
            # an interrupted first run never leaves a half-written photo
            write_image_atomic(path, cv2.cvtColor(photo(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder

