"""What the offline jobs wrote under a units folder, read as typed records (nothing is recomputed).

    DIR/maxes.json                          tools.find_maxes: each unit's top-k (value, image, y, x)
    DIR/<layer>/unit_NNNN/info.json         tools.crop_max_patches: crops' values, sources, boxes
    DIR/<layer>/unit_NNNN/<kind>_KKK.png    the crops (maxim, deconv, guided, backprop)
    DIR/<layer>/unit_NNNN/opt.png, opt_raw.png, opt_transparency.png, opt.json   tools.optimize_image
    DIR/stats/<layer>/stats.npz, correlation.png, inactivity.png, histograms.png tools.layer_stats

Any subset may exist. Layers are found by the folder each tool names after them
(``unit_images.folder_name``), so the caller passes the model's layer names in its order.
"""
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from app.errors import DeepVisError
from app.files import read_npz
from app.offline.crops import KINDS as CROP_KINDS
from app.offline.layer_stats import layer_folder
from app.offline.maxes import MAXES_FILE, read_maxes
from app.paths import user_path
from app.unit_images import crop_path, folder_name, montage_path, unit_dir

OPT_FILES = {"opt": "opt.png", "raw": "opt_raw.png", "transparency": "opt_transparency.png"}
STATS_PICTURES = ("correlation", "inactivity", "histograms")


@dataclass(frozen=True)
class Crop:
    """One of a unit's top images as info.json lists it, with its crop files by kind."""
    rank: int
    value: float
    source: str             # the image's path as maxes.json names it
    y: Optional[int]
    x: Optional[int]
    box: tuple              # the receptive field (y0, y1, x0, x1) in net input pixels, end exclusive
    shown: tuple            # the part of the input the crop shows
    files: dict             # kind -> Path
    all_zero: tuple = ()    # kinds whose backward pass was all zero (drawn crossed)


@dataclass(frozen=True)
class Optimized:
    files: dict             # "opt", "raw", "transparency" -> Path (those that exist)
    record: dict            # opt.json as written


@dataclass(frozen=True)
class Unit:
    unit: int
    crops: tuple = ()                       # Crop per rank, from info.json
    crop_kinds: tuple = ()
    optimized: Optional[Optimized] = None


@dataclass(frozen=True)
class LayerStats:
    """stats.npz of a layer (arrays as written) and its pictures."""
    percent_dead: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    correlation: np.ndarray
    images: int
    pictures: dict          # "correlation", "inactivity", "histograms" -> Path


@dataclass(frozen=True)
class Layer:
    name: str
    top: Optional[list] = None              # maxes.json's entries of each unit (best first)
    units: dict = field(default_factory=dict)   # unit -> Unit, the units with files of their own
    stats: Optional[LayerStats] = None

    @property
    def unit_count(self) -> int:
        counts = [len(self.top)] if self.top is not None else []
        counts += [len(self.stats.percent_dead)] if self.stats is not None else []
        return max(counts + [max(self.units, default=-1) + 1])


@dataclass(frozen=True)
class UnitsDir:
    root: Path
    maxes: Optional[dict]                   # maxes.json, or None when find_maxes did not run here
    layers: dict                            # name -> Layer, in the model's order, only layers with files
    problems: list = field(default_factory=list)   # one line per file that could not be read (left out)

    @property
    def maxes_file(self) -> Path:
        return self.root / MAXES_FILE


def read_units_dir(root, layer_names) -> UnitsDir:
    """Everything under ``root`` for ``layer_names`` (the model's layers, in its order)."""
    root = user_path(root)
    if not root.is_dir():
        raise DeepVisError(f"{root}: no such folder (the --out of tools.find_maxes / crop_max_patches / "
                           "optimize_image)")
    maxes = read_maxes(root / MAXES_FILE) if (root / MAXES_FILE).is_file() else None
    layers, problems = {}, []
    for name in layer_names:
        top = maxes["layers"].get(name) if maxes else None
        layer = Layer(name, top, _units(root, name, problems), _stats(root, name, problems))
        if layer.top is not None or layer.units or layer.stats is not None:
            layers[name] = layer
    return UnitsDir(root, maxes, layers, problems)


def recorded_model(root):
    """The model maxes.json was made with when it is a model_zoo name (loadable as it is), else None."""
    from app.net.spec import zoo_names

    try:
        model = json.loads((user_path(root) / MAXES_FILE).read_text(encoding="utf-8")).get("model")
    except (OSError, ValueError, AttributeError):
        return None
    return model if model in zoo_names() else None


def _units(root: Path, layer: str, problems: list) -> dict:
    folder = root / folder_name(layer)
    if not folder.is_dir():
        return {}
    units = {}
    for path in sorted(folder.glob("unit_[0-9][0-9][0-9][0-9]*")):
        if path.name[5:].isdigit():
            unit = _unit(root, layer, int(path.name[5:]), problems)
            if unit.crops or unit.optimized:
                units[unit.unit] = unit
    return units


def _json(path: Path, layer: str):
    """The json file's record, or None when it is another layer's (two layers share a folder name)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DeepVisError(f"{path}: unreadable ({error})") from None
    if not isinstance(record, dict):
        raise DeepVisError(f"{path}: not a record of the offline tools")
    return record if record.get("layer", layer) == layer else None


def _unit(root: Path, layer: str, unit: int, problems: list) -> Unit:
    """The unit's files; a json file that cannot be read is a line in ``problems`` and its part of
    the unit is left out (the other part and the other units are still read)."""
    folder = unit_dir(root, layer, unit)
    crops, kinds = (), ()
    try:
        info = _json(folder / "info.json", layer)
        if info is not None:
            kinds = tuple(kind for kind in info.get("kinds", CROP_KINDS) if kind in CROP_KINDS)
            zero = info.get("all_zero", {})
            crops = tuple(_crop(root, layer, unit, entry, kinds, zero) for entry in info["entries"])
    except (DeepVisError, AttributeError, KeyError, TypeError, ValueError) as error:
        crops, kinds = (), ()
        problems.append(f"{folder / 'info.json'}: not an info.json of crop_max_patches ({_reason(error)}); "
                        f"delete {folder} and run tools.crop_max_patches again")
    optimized = None
    try:
        record = _json(folder / "opt.json", layer)
    except DeepVisError as error:
        record = None
        problems.append(f"{folder / 'opt.json'}: not an opt.json of optimize_image ({_reason(error)}); "
                        f"delete it and run tools.optimize_image again for unit {unit}")
    if record is not None and montage_path(root, layer, unit, "opt").is_file():
        optimized = Optimized({key: folder / name for key, name in OPT_FILES.items() if (folder / name).is_file()},
                              record)
    return Unit(unit, crops, kinds, optimized)


def _reason(error: Exception) -> str:
    """What is wrong, without the path the caller's line already names."""
    text = str(error)
    return text.split(": ", 1)[1] if isinstance(error, DeepVisError) and ": " in text else f"{error!r}"


def _crop(root: Path, layer: str, unit: int, entry: dict, kinds: tuple, zero: dict) -> Crop:
    rank = int(entry["rank"])
    paths = {kind: crop_path(root, layer, unit, kind, rank) for kind in kinds}
    return Crop(rank, float(entry["value"]), str(entry["image"]), entry.get("y"), entry.get("x"),
                tuple(entry["box"]), tuple(entry["shown"]),
                {kind: path for kind, path in paths.items() if path.is_file()},
                tuple(kind for kind in kinds if rank in zero.get(kind, ())))


def _stats(root: Path, layer: str, problems: list) -> Optional[LayerStats]:
    folder = layer_folder(root, layer)
    if not (folder / "stats.npz").is_file():
        return None
    try:
        arrays = read_npz(folder / "stats.npz")
        if str(arrays["layer"]) != layer:
            return None   # another layer with the same folder name
        return LayerStats(arrays["percent_dead"], arrays["edges"], arrays["counts"], arrays["correlation"],
                          int(arrays["images"]),
                          {name: folder / f"{name}.png" for name in STATS_PICTURES
                           if (folder / f"{name}.png").is_file()})
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        problems.append(f"{folder / 'stats.npz'}: not a stats.npz of tools.layer_stats ({error!r}); "
                        f"delete it and run tools.layer_stats again")
        return None
