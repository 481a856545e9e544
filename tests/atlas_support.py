"""Helpers of the atlas tests: the offline jobs run for real, the site's data read back, links checked."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tools import atlas, crop_max_patches, find_maxes, layer_stats, optimize_image

LAYERS = ["stem", "blocks.2.1.add", "fc"]   # the first, one in the middle, the logits


def offline_run(images, out: Path, layers: list, crop_units: str, optimized: dict, model=None) -> Path:
    """The four offline jobs into ``out``: find_maxes (top 4), crops of ``crop_units`` of every layer,
    a few lucid steps for ``optimized`` (layer -> units), layer_stats."""
    model_args = ["--model", str(model)] if model else []
    find_maxes.main(["--images", str(images), "--layers", ",".join(layers), "--top", "4", "--out", str(out),
                     "--quiet", "--cpu", *model_args])
    crop_max_patches.main(["--maxes", str(out / "maxes.json"), "--units", crop_units, "--out", str(out), "--cpu",
                           *model_args])
    for layer, units in optimized.items():
        optimize_image.main(["--layer", layer, "--units", units, "--iters", "3", "--preset", "lucid",
                             "--out", str(out), "--cpu", *model_args])
    layer_stats.main(["--maxes", str(out / "maxes.json"), "--quiet"])
    return out


def build(units: Path, site: Path, model=None, *extra) -> list:
    """tools.atlas over ``units`` into ``site``; returns the files it wrote (relative, sorted)."""
    _, built, _ = atlas.build(["--units-dir", str(units), "--out", str(site), "--cpu",
                               *(["--model", str(model)] if model else []), *extra])
    return sorted(built.written)


def script_data(path: Path):
    """The value a data script (``function({...});``) hands to its page."""
    text = path.read_text(encoding="ascii")
    match = re.fullmatch(r"\w+\((.*)\);\n", text, re.S)
    assert match, f"{path}: not a data script"
    return json.loads(match.group(1))


def layer_file(site: Path, name: str, part: str = "file") -> Path:
    """A layer's data script: "file" (every unit's data) or "grid" (what the layer page draws)."""
    entry = next(layer for layer in script_data(site / "data" / "site.js")["layers"] if layer["name"] == name)
    return site / entry[part]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attributes):
        self.links += [value for name, value in attributes if name in ("href", "src") and value]


def html_links(path: Path) -> list:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.links


def link_target(site: Path, page: Path, link: str):
    """The file a page's link names (None: it leads off the site or to no file)."""
    parts = urlsplit(link)
    if parts.scheme == "file":
        target = Path(unquote(parts.path))
    elif parts.scheme or parts.netloc:
        return None
    else:
        target = page.parent / unquote(parts.path) if parts.path else page
    target = target.resolve()
    root = site.resolve()
    return target if target.is_file() and root in target.parents else None
