"""Where per-unit visualizations live on disk: one layout for the offline tools and the app.

Ours (written by tools/crop_max_patches.py and tools/optimize_image.py)::

    OUT/<layer>/unit_0007/maxim_000.png ... maxim_008.png   receptive-field crops of the top-k images
    OUT/<layer>/unit_0007/deconv_000.png ...                 (and guided_, backprop_): backward passes
    OUT/<layer>/unit_0007/montage_maxim.png                  3x3 montage of each kind
    OUT/<layer>/unit_0007/opt.png, opt.json                  activation maximization (any preset)
    OUT/<layer>/unit_0007/opt_transparency.png               lucid, maco: where the gradient went
    OUT/<layer>/unit_0007/info.json                          values and sources of the crops
    OUT/<layer>/sprite_<kind>.png                            every unit's montage (or opt) of the layer

The original toolbox's layout is read too::

    OUT/regularized_opt/<L>/<L>_0007_montage.jpg, OUT/max_im/<L>/<L>_0007.jpg,
    OUT/max_deconv/<L>/<L>_0007.jpg
"""
import hashlib
import re
from pathlib import Path

from app.views.registry import Entry, add

# Every kind of per-unit image the offline tools write, and what the app calls it.
KINDS = {"opt": "optimized", "maxim": "max images", "deconv": "deconv of max", "guided": "guided backprop of max",
         "backprop": "backprop of max"}
SHOWN = ("opt", "maxim", "deconv")   # the jpgvis pane's rows, and pattern modes of the layers pane
for _place, _kind in enumerate(SHOWN):
    # drawn from the images on disk, which the app's loader thread reads (nothing to compute)
    add(Entry(_kind, "layers", None, (), 10 + _place, KINDS[_kind]))
_ORIGINAL = {"opt": ("regularized_opt", "{L}_{u:04d}_montage.jpg"),
             "maxim": ("max_im", "{L}_{u:04d}.jpg"),
             "deconv": ("max_deconv", "{L}_{u:04d}.jpg")}


NAME_LIMIT = 120   # characters of a folder name; file systems take 255 bytes


def folder_name(layer: str) -> str:
    """A layer name as a safe folder name (ONNX names may hold '/', ':', NUL, any character and any
    length; "." and ".." would name the folder itself or its parent). A name that had to change ends
    with a hash of the whole name, so "a/b" and "a_b" keep folders of their own; a name past
    NAME_LIMIT is cut and ends with a hash too, so long names that share a beginning stay apart."""
    name = plain_name(layer)
    if name != layer:
        name = f"{name}~{_digest(layer)[:8]}"
    return shortened(name, layer)


def plain_name(text: str) -> str:
    """``text`` in the characters A-Za-z0-9._- (others become "_"), never "", "." or "..": part of
    a file name where nothing else must tell names apart (a file name with a time in it, say)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    return name if name.strip(".") else name.replace(".", "_") or "_"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def shortened(name: str, whole: str) -> str:
    """``name`` (a file name made from the text ``whole``) cut to NAME_LIMIT characters, ending with
    a hash of ``whole`` when cut."""
    if len(name) <= NAME_LIMIT:
        return name
    digest = _digest(whole)[:16]
    return f"{name[:NAME_LIMIT - len(digest) - 1]}~{digest}"


def _original_folders(root, layer: str) -> list:
    """The original layout's folders of ``layer``, which use the name as it is: none when the name is
    no plain folder name (it could lead out of ``root``)."""
    if folder_name(layer) != layer:
        return []
    return [(kind, Path(root) / folder / layer, pattern) for kind, (folder, pattern) in _ORIGINAL.items()]


def unit_dir(root, layer: str, unit: int) -> Path:
    return Path(root) / folder_name(layer) / f"unit_{unit:04d}"


def crop_path(root, layer: str, unit: int, kind: str, rank: int) -> Path:
    return unit_dir(root, layer, unit) / f"{kind}_{rank:03d}.png"


def montage_path(root, layer: str, unit: int, kind: str) -> Path:
    """The image the app shows for a unit and kind ("opt" is a single image, others a montage)."""
    name = "opt.png" if kind == "opt" else f"montage_{kind}.png"
    return unit_dir(root, layer, unit) / name


def sprite_path(root, layer: str, kind: str) -> Path:
    return Path(root) / folder_name(layer) / f"sprite_{kind}.png"


def has_images(root, layer: str) -> bool:
    """Whether ``root`` holds images of ``layer`` in either layout."""
    folders = [Path(root) / folder_name(layer)] + [folder for _, folder, _ in _original_folders(root, layer)]
    return any(folder.is_dir() for folder in folders)


def find_unit_image(root, layer: str, unit: int, kind: str):
    """The file to show for (layer, unit, kind) in either layout, or None."""
    ours = montage_path(root, layer, unit, kind)
    if ours.is_file():
        return ours
    for original_kind, folder, pattern in _original_folders(root, layer):
        original = folder / pattern.format(L=layer, u=unit)
        if original_kind == kind and original.is_file():
            return original
    return None
