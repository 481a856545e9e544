"""One layer's data for the browser: every unit's numbers and image URLs, as the files hold them.

The layer page draws its grid from it and the unit page draws any unit of it, so a layer of 2048
units is one data file, not 2048 pages. Numbers are copied from maxes.json, info.json, opt.json and
stats.npz, never recomputed; the orders and correlated units are selections over them.
"""
import shlex
from pathlib import Path

import numpy as np

from app.atlas.units_dir import Layer, Unit
from app.errors import DeepVisError
from app.views.dataset_order import dataset_order

CORRELATED = 5          # most and least correlated units listed on a unit page
DATASET_ORDERS = ("kmeans", "pca")   # the app's dataset channel orders (layers pane, p / P)


def layer_data(units_root: Path, maxes: dict, layer: Layer, facts, model: str, site, filters=None,
               previous: dict = None) -> dict:
    """The data of ``layer`` (a units_dir.Layer); ``facts`` its model_facts.LayerFacts; ``site`` the
    published.SiteFiles the images go to; ``filters``: PNG bytes of each unit's filter, or None;
    ``previous``: the data an earlier run wrote, whose dataset orders are kept while maxes.json
    (and so the channel maxima) is the same file."""
    count = layer.unit_count
    stats = layer.stats
    related = correlated(stats.correlation) if stats is not None else []
    units = []
    for unit in range(count):
        files = layer.units.get(unit, Unit(unit))
        record = {"unit": unit, "top": _top_value(layer, files), "dead": None, "hist": None,
                  "crops": [_crop(crop, site) for crop in files.crops], "kinds": list(files.crop_kinds),
                  "opt": _optimized(files, site), "commands": _commands(units_root, layer.name, files, model)}
        if not files.crops and layer.top is not None:
            record["maxes"] = [_max_entry(entry, maxes, site) for entry in layer.top[unit]]
        record["thumb"] = _thumb(record)
        if stats is not None and unit < len(stats.percent_dead):
            record.update(dead=float(stats.percent_dead[unit]),
                          hist={"edges": stats.edges[unit].tolist(), "counts": stats.counts[unit].tolist()},
                          **related[unit])
        if filters is not None and unit < len(filters):
            record["filter"] = site.image_bytes(filters[unit])
        units.append(record)
    return {"name": layer.name, "index": facts.index, "shape": list(facts.shape), "kind": facts.kind,
            "op": facts.op_type, "field": list(facts.field) if facts.field else None,
            "stride": list(facts.stride) if facts.stride else None,
            "images": len(maxes["images"]) if maxes else None,
            "stats": _stats_pictures(stats, site), **_orders(units_root, maxes, layer.name, count, previous),
            "units": units}


def _top_value(layer: Layer, files: Unit):
    if layer.top is not None and layer.top[files.unit]:
        return float(layer.top[files.unit][0]["value"])
    return files.crops[0].value if files.crops else None


def _crop(crop, site) -> dict:
    return {"rank": crop.rank, "value": crop.value, "source": Path(crop.source).name,
            "image": site.image_file(crop.source), "box": list(crop.box), "shown": list(crop.shown),
            "y": crop.y, "x": crop.x, "files": _published(crop.files, site),
            "zero": list(crop.all_zero)}


def _max_entry(entry: dict, maxes: dict, site) -> dict:
    source = maxes["images"][entry["image"]]
    return {"value": float(entry["value"]), "source": Path(source).name, "image": site.image_file(source),
            "y": entry.get("y"), "x": entry.get("x")}


def _optimized(files: Unit, site):
    if files.optimized is None:
        return None
    record = files.optimized.record
    shown = _published(files.optimized.files, site)
    return {**shown, **{key: record.get(key) for key in ("activation", "start_activation", "step", "preset",
                                                        "objective", "iterations", "seed", "diversity")}}


def _published(paths: dict, site) -> dict:
    """kind -> the site's URL of each image file, those that could be read (site.problems says
    which could not)."""
    urls = {kind: site.image_file(path) for kind, path in paths.items()}
    return {kind: url for kind, url in urls.items() if url is not None}


def _thumb(record: dict):
    if record["opt"] and record["opt"].get("opt"):
        return record["opt"]["opt"]
    for crop in record["crops"]:
        if "maxim" in crop["files"]:
            return crop["files"]["maxim"]
    return None


def correlated(correlation: np.ndarray) -> list:
    """Per unit, the units whose maxima correlate most and least with its own (stats.npz's
    correlation, the unit itself left out): {"most": [[unit, r], ...], "least": [...]}."""
    matrix = np.array(correlation, dtype=np.float64)
    np.fill_diagonal(matrix, np.nan)   # sorts last either way
    pick = min(CORRELATED, len(matrix) - 1)
    most = np.argsort(-matrix, axis=1, kind="stable")[:, :pick]
    least = np.argsort(matrix, axis=1, kind="stable")[:, :pick]
    return [{"most": [[int(u), float(matrix[unit, u])] for u in most[unit]],
             "least": [[int(u), float(matrix[unit, u])] for u in least[unit]]} for unit in range(len(matrix))]


def _stats_pictures(stats, site):
    if stats is None:
        return None
    pictures = {name: site.image_file(path) for name, path in stats.pictures.items()}
    return {**pictures, "images": stats.images}


def _orders(units_root: Path, maxes, layer: str, count: int, previous: dict = None) -> dict:
    """The app's dataset orders of the layer's units (from find_maxes's channel maxima), by name,
    and the maxes.json they came from (size and time: unchanged, the previous run's orders hold)."""
    if not maxes or layer not in maxes.get("stats", {}).get("layers", ()):
        return {"orders": {}, "orders_of": None}
    stat = (Path(units_root) / "maxes.json").stat()
    stamp = [stat.st_size, stat.st_mtime_ns]
    if previous and previous.get("orders_of") == stamp and len(previous.get("units", ())) == count:
        return {"orders": previous["orders"], "orders_of": stamp}
    orders = {}
    for mode in DATASET_ORDERS:
        try:
            orders[mode] = list(dataset_order(units_root, layer, mode, count).units)
        except DeepVisError:
            return {"orders": {}, "orders_of": None}
    return {"orders": orders, "orders_of": stamp}


def _commands(root: Path, layer: str, files: Unit, model: str) -> list:
    """The commands that make this unit's images again, from what info.json and opt.json recorded."""
    quoted = shlex.quote
    commands = []
    if files.crops:
        commands.append(f"python -m tools.crop_max_patches --maxes {quoted(str(root / 'maxes.json'))} "
                        f"--modes {','.join(files.crop_kinds)} --layers {quoted(layer)} --units {files.unit} "
                        f"--model {quoted(model)} --out {quoted(str(root))}")
    if files.optimized is not None:
        record = files.optimized.record
        parts = ["python -m tools.optimize_image", f"--layer {quoted(layer)}", f"--units {files.unit}",
                 f"--preset {record.get('preset')}", f"--objective {record.get('objective')}",
                 f"--iters {record.get('iterations')}", f"--seed {record.get('seed')}"]
        if record.get("size"):
            height, width = record["size"]
            parts.append(f"--size {width}x{height}")
        if record.get("diversity", 1) != 1:
            parts.append(f"--diversity {record['diversity']}")
        parts += [f"--model {quoted(str(record.get('model') or model))}", f"--out {quoted(str(root))}"]
        commands.append(" ".join(parts))
    return commands
