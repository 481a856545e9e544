"""The atlas site: index, layer and unit pages over what the offline jobs wrote under a units folder.

    SITE/index.html            the model, every layer with its facts and a thumbnail strip
    SITE/layer.html            one page for every layer: #layer=NAME[&sort=...] draws its grid
    SITE/unit.html             one page for every unit: #layer=NAME&unit=N[&source=RANK]
    SITE/data/site.js          the layers and their data files
    SITE/data/layer-NNN-<name>.js   one layer's units (layer_data.py), loaded by a script tag
    SITE/data/size.js          the site's size, shown by the index
    SITE/img/ab/<digest>.png   every image once, by content
    SITE/static/               CSS and JavaScript
    SITE/atlas.json            the layers and their unit counts, for the app's key

Data goes to the browser as scripts that call a function (never fetch()), so the site works from
file:// as well as from any static host. Names from the model are data: files are named by the
layer's index and a sanitized form, and the pages set names as text.
"""
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

import jinja2

from app.atlas.layer_data import layer_data
from app.atlas.model_facts import ModelFacts
from app.atlas.published import IMAGE_FOLDER, MANIFEST, SiteFiles
from app.atlas.units_dir import UnitsDir
from app.errors import DeepVisError
from app.paths import user_path
from app.unit_images import folder_name

SITE_FILE = "atlas.json"
SIZE_FILE = "data/size.js"
STATIC = ("atlas.css", "atlas.js")
PAGES = ("index.html", "layer.html", "unit.html")
STRIP = 8      # thumbnails on the index per layer
# every name the site's folder holds (published.py adds its manifest and images)
SITE_ENTRIES = {SITE_FILE, "data", "static", *PAGES, MANIFEST, IMAGE_FOLDER}


@dataclass(frozen=True)
class Built:
    written: list       # site-relative paths written by this run
    files: int
    bytes: int
    problems: list      # one line per file of the units folder that could not be read (left out)
    removed: list = ()  # site-relative paths of earlier runs' images and layer data no page uses now


def site_folder(atlas_dir, model: str) -> Path:
    """Where a model's site lives: settings.py's ``atlas_dir``, or <cache dir>/atlas/<model name>."""
    if atlas_dir:
        return user_path(atlas_dir)
    from app.paths import cache_dir

    return cache_dir() / "atlas" / folder_name(model)


def check_folder(folder, model: str) -> None:
    """Refuse a site folder that holds another model's site, or files that are not a site's (an
    --out mistyped as a folder of other work): never mixed, never overwritten."""
    folder = user_path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise DeepVisError(f"{folder}: not a folder (choose another --out)")
    foreign = sorted(path.name for path in folder.iterdir()
                     if path.name not in SITE_ENTRIES and not path.name.startswith("."))
    if foreign:
        raise DeepVisError(f"{folder}: not an atlas site (it holds {foreign[0]!r}); choose another --out, "
                           "or an empty folder")
    for relative, read in ((SITE_FILE, json.loads), ("data/site.js", _script_value)):
        try:
            made_for = read((folder / relative).read_text(encoding="utf-8")).get("model")
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError) as error:
            raise DeepVisError(f"{folder / relative}: unreadable ({error}); delete {folder} to build the "
                               "site again") from None
        if made_for != model:
            raise DeepVisError(f"{folder / relative}: the site of {made_for}, not {model}; choose another --out, "
                               f"or delete {folder} to build {model}'s site there")


def unit_page(folder, model: str, layers, unit: int) -> tuple:
    """(``unit``'s page for the first of ``layers`` the site of ``model`` at ``folder`` holds, as a
    link relative to the site: "unit.html#layer=...&unit=...", "") or (None, why there is none: one line)."""
    folder = user_path(folder)
    try:
        site = json.loads((folder / SITE_FILE).read_text(encoding="utf-8"))
        held = site["layers"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"no atlas in {folder} (python -m tools.atlas --units-dir DIR --out {folder})"
    if site.get("model") != model:
        return None, f"the atlas in {folder} is of {site.get('model')}, not {model} (settings: atlas_dir)"
    layer = next((name for name in layers if name in held), None)
    if layer is None:
        return None, f"the atlas in {folder} has no page of {layers[0]}"
    if not 0 <= unit < held[layer]:
        return None, f"the atlas in {folder} has {held[layer]} units of {layer}, not unit {unit}"
    return "unit.html#" + urlencode({"layer": layer, "unit": unit}), ""


def data_file(layer_facts, part: str = "") -> str:
    """The layer's data file (``part`` "grid": what its layer page draws): its index in the model,
    then a sanitized, shortened form of its name."""
    return f"data/layer-{layer_facts.index:03d}-{folder_name(layer_facts.name)[:40]}{part and '-' + part}.js"


def build_site(units: UnitsDir, facts: ModelFacts, out, title: str = None, link: bool = False,
               filters: dict = None) -> Built:
    """Write the site for ``units`` (units_dir.read_units_dir) of the model ``facts`` into ``out``.
    filters: layer -> PNG bytes per unit (model_facts.first_layer_filters) for layers that read the image."""
    site = SiteFiles(out, link)
    filters = filters or {}
    layers = []
    for name, layer in units.layers.items():
        layer_facts = facts.layer(name)
        data = layer_data(units.root, units.maxes, layer, layer_facts, facts.name, site, filters.get(name),
                          _previous(site, data_file(layer_facts)))
        site.write_text(data_file(layer_facts), _script("atlasLayer", data))
        site.write_text(data_file(layer_facts, "grid"), _script("atlasGrid", _grid(data)))
        layers.append(_summary(layer, layer_facts, data))
    title = title or f"{facts.name} atlas"
    listed = [{key: entry[key] for key in ("name", "file", "grid", "units")} for entry in layers]
    site.write_text("data/site.js", _script("atlasSite", {"title": title, "model": facts.name,
                                                          "input": list(facts.input_size), "layers": listed}))
    site.write_text(SITE_FILE, json.dumps({"model": facts.name, "layers": {
        entry["name"]: entry["units"] for entry in layers}}, indent=1))
    environment = jinja2.Environment(loader=jinja2.PackageLoader("app.atlas", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    for page in PAGES:
        site.write_text(page, environment.get_template(page).render(title=title, model=facts, layers=layers,
                                                                     source=str(units.root)))
    for name in STATIC:
        site.write_bytes(f"static/{name}", resources.files("app.atlas").joinpath("static").joinpath(name).read_bytes())
    site.save_manifest()
    removed = site.remove_unused()
    files, size = site.size(leave_out=[SIZE_FILE])
    site.write_text(SIZE_FILE, _script("atlasSize", {"files": files + 1, "bytes": size}))
    return Built(site.written, files + 1, site.size()[1], units.problems + site.problems, removed)


def _script(function: str, value) -> str:
    """A script that hands ``value`` to the page (ASCII JSON: nothing in it can end the script)."""
    return f"{function}({json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(',', ':'))});\n"


def _grid(data: dict) -> dict:
    """What the layer page draws: the layer's facts and each unit's number, top value, percent dead
    and thumbnail (a 2048-unit layer's page then reads a tenth of its data)."""
    return {**{key: value for key, value in data.items() if key not in ("units", "orders_of")},
            "units": [{key: unit[key] for key in ("unit", "top", "dead", "thumb")} for unit in data["units"]]}


def _previous(site: SiteFiles, relative: str):
    """What a data script of an earlier run held, or None."""
    try:
        return _script_value(site.path(relative).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def _script_value(text: str):
    """The value a data script (``_script``) hands to its page."""
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


def _summary(layer, facts, data: dict) -> dict:
    """What the index says of a layer."""
    units = data["units"]
    dead = [unit["dead"] for unit in units if unit["dead"] is not None]
    strip = [(unit["unit"], crop["files"]["maxim"]) for unit in units for crop in unit["crops"][:1]
             if "maxim" in crop["files"]]
    if not strip:
        strip = [(unit["unit"], unit["thumb"]) for unit in units if unit["thumb"]]
    kinds = [kind for kind in ("maxim", "deconv", "guided", "backprop") if any(kind in unit["kinds"] for unit in units)]
    kinds += ["opt"] if any(unit["opt"] for unit in units) else []
    kinds += ["top-k values"] if layer.top is not None else []
    kinds += ["stats"] if layer.stats is not None else []
    return {"name": layer.name, "file": data_file(facts), "grid": data_file(facts, "grid"), "units": len(units),
            "facts": facts,
            "dead": sum(dead) / len(dead) if dead else None, "never": sum(value >= 100 for value in dead),
            "strip": strip[:STRIP], "kinds": kinds}
