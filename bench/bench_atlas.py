"""The atlas at ResNet-50's size: seconds and site size for every unit, and the first paint of a
2048-unit layer page in Chromium.

    python bench/bench_atlas.py [--scale 1.0] [--top 9] [--crop-units 4] [--images 64] [--link] [--keep DIR]

Writes a synthetic units folder with ResNet-50's layers (the stem, every bottleneck's two inner ReLUs
and its output, fc: 50 layers, 23 720 units; --scale shrinks every layer): maxes.json with each
unit's top --top over --images source photos and their channel maxima, an optimized image and
opt.json for every unit, crops and info.json of the first --crop-units units of each layer, and each
layer's stats.npz. Then builds the site twice (the second run writes nothing), and opens the widest
layer's page in Chromium (Debian's, through Playwright): milliseconds from navigation until the grid
of every unit is drawn and painted, and until the first contentful paint, medians of --paints loads.
"""
import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.atlas import site  # noqa: E402
from app.atlas.model_facts import LayerFacts, ModelFacts  # noqa: E402
from app.atlas.units_dir import read_units_dir  # noqa: E402
from app.files import write_npz_atomic  # noqa: E402
from app.unit_images import crop_path, unit_dir  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# The paint is taken two animation frames after the page marks its grid drawn.
PAINTED = """
new MutationObserver((changes, observer) => {
  if (!document.body.dataset.drawn) return;
  observer.disconnect();
  requestAnimationFrame(() => requestAnimationFrame(() => { window.atlasPainted = performance.now(); }));
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-drawn"]});
"""


def resnet50_layers() -> list:
    """(name, channels, side) of the layers find_maxes scores in ResNet-50 (torchvision's names)."""
    layers = [("relu", 64, 112)]
    for stage, (width, blocks, side) in enumerate([(64, 3, 56), (128, 4, 28), (256, 6, 14), (512, 3, 7)], 1):
        for block in range(blocks):
            prefix = f"layer{stage}.{block}"
            layers += [(f"{prefix}.relu1", width, side), (f"{prefix}.relu2", width, side),
                       (f"{prefix}.relu", 4 * width, side)]
    return layers + [("fc", 1000, None)]


def scaled(layers: list, scale: float) -> list:
    return [(name, max(1, round(channels * scale)), side) for name, channels, side in layers]


def png(rng, side: int) -> bytes:
    return cv2.imencode(".png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))[1].tobytes()


def write_units(root: Path, layers: list, top: int, crop_units: int, images: int, rng) -> None:
    """The synthetic units folder (see the module's docstring)."""
    sources = []
    for index in range(images):
        path = root / "photos" / f"photo_{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(rng, 64))
        sources.append(str(path))
    maxes = {"model": "resnet50-synthetic", "images": sources, "layers": {}, "shapes": {},
             "stats": {"folder": "channel_maxima", "chunks": ["chunk_000000.npz"], "layers": [], "images": images}}
    maxima = {}
    for index, (name, channels, side) in enumerate(layers):
        values = np.sort(rng.gamma(2.0, 2.0, (channels, top)), axis=1)[:, ::-1]
        picks = rng.integers(0, images, (channels, top))
        position = 0 if side else None
        maxes["layers"][name] = [[{"value": float(v), "image": int(i), "y": position, "x": position}
                                  for v, i in zip(values[u], picks[u])] for u in range(channels)]
        maxes["shapes"][name] = [channels, side, side] if side else [channels]
        maxes["stats"]["layers"].append(name)
        maxima[f"l{index}"] = np.maximum(rng.normal(0.5, 1.0, (images, channels)), 0).astype(np.float32)
        for unit in range(channels):
            folder = unit_dir(root, name, unit)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "opt.png").write_bytes(png(rng, 32))
            (folder / "opt.json").write_text(json.dumps({
                "unit": unit, "layer": name, "activation": float(values[unit, 0]), "start_activation": 0.1,
                "step": 10, "preset": "lucid", "objective": "channel", "iterations": 512, "seed": 0}))
            if unit < crop_units:
                entries = []
                for rank in range(top):
                    crop_path(root, name, unit, "maxim", rank).write_bytes(png(rng, 24))
                    entries.append({"rank": rank, "value": float(values[unit, rank]),
                                    "image": sources[picks[unit, rank]], "image_index": int(picks[unit, rank]),
                                    "y": 0, "x": 0, "box": [0, 24, 0, 24], "shown": [0, 24, 0, 24]})
                (folder / "info.json").write_text(json.dumps({"layer": name, "unit": unit, "kinds": ["maxim"],
                                                              "all_zero": {}, "entries": entries}))
        edges = np.linspace(0, values[:, :1], 51, axis=1)[..., 0]
        correlation = np.corrcoef(maxima[f"l{index}"].T.astype(np.float64)) if channels > 1 else np.ones((1, 1))
        write_npz_atomic(root / "stats" / name / "stats.npz", layer=np.array(name), images=np.array(images),
                         percent_dead=rng.uniform(0, 100, channels), edges=edges,
                         counts=rng.integers(0, images, (channels, 50)), correlation=np.nan_to_num(correlation))
    (root / "maxes.json").write_text(json.dumps(maxes))
    write_npz_atomic(root / "channel_maxima" / "chunk_000000.npz", image=np.arange(images), **maxima)


def facts_of(layers: list) -> ModelFacts:
    return ModelFacts("resnet50-synthetic", "ResNet-50's layers and unit counts, synthetic images", (224, 224), (),
                      tuple(LayerFacts(name, index, (channels, side, side) if side else (channels,),
                                       "map" if side else "vector", "Relu" if side else "Gemm",
                                       (99, 99) if side else None, (4, 4) if side else None)
                            for index, (name, channels, side) in enumerate(layers)))


def first_paint(site_root: Path, layer: str, loads: int) -> tuple:
    """Median milliseconds to the painted grid and to the first contentful paint of ``layer``'s page."""
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    grid, contentful = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.add_init_script(PAINTED)
            page.goto((site_root / "layer.html").as_uri() + f"#layer={quote(layer)}")
            page.wait_for_function("window.atlasPainted !== undefined", timeout=60_000)
            grid.append(page.evaluate("window.atlasPainted"))
            contentful.append(page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime"))
            assert page.locator("#grid .tile").count() == len(read_layer_units(site_root, layer))
            context.close()
        browser.close()
    return statistics.median(grid), statistics.median(contentful)


def read_layer_units(site_root: Path, layer: str) -> list:
    listed = (site_root / "data" / "site.js").read_text()
    entry = next(e for e in json.loads(listed[len("atlasSite("):-3])["layers"] if e["name"] == layer)
    return json.loads((site_root / entry["file"]).read_text()[len("atlasLayer("):-3])["units"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="units of each layer, times ResNet-50's (1.0)")
    parser.add_argument("--top", type=int, default=9, help="top images per unit in maxes.json (9)")
    parser.add_argument("--crop-units", type=int, default=4, help="units per layer with crops (4)")
    parser.add_argument("--images", type=int, default=64, help="source photos (64)")
    parser.add_argument("--paints", type=int, default=3, help="page loads timed (3)")
    parser.add_argument("--link", action="store_true", help="hard-link the images into the site")
    parser.add_argument("--keep", default=None,
                        help="write the units folder and the site here, the units only once (default: a temporary folder)")
    args = parser.parse_args(argv)
    layers = scaled(resnet50_layers(), args.scale)
    with tempfile.TemporaryDirectory(prefix="bench_atlas_") as temporary:
        folder = Path(args.keep or temporary)
        units_root, site_root = folder / "units", folder / "site"
        started = time.perf_counter()
        reused = (units_root / "maxes.json").is_file()   # a --keep folder's units are used again
        if not reused:
            write_units(units_root, layers, args.top, args.crop_units, args.images, np.random.default_rng(0))
        shutil.rmtree(site_root, ignore_errors=True)
        print(f"synthetic units folder: {len(layers)} layers, {sum(c for _, c, _ in layers)} units"
              + (" (reused)" if reused else f", {time.perf_counter() - started:.1f} s to write"))
        facts = facts_of(layers)
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            units = read_units_dir(units_root, [name for name, _, _ in layers])
            built = site.build_site(units, facts, site_root, link=args.link)
            runs.append((time.perf_counter() - started, built))
        (first, built), (second, again) = runs
        pages, scripts = len(list(site_root.glob("*.html"))), len(list((site_root / "data").glob("*.js")))
        print(f"site: {built.files} files, {built.bytes / 2 ** 20:.1f} MiB ({pages} pages, {scripts} data scripts)")
        print(f"build: {first:.1f} s; rerun with nothing changed: {second:.1f} s, {len(again.written)} files written")
        widest = max(layers, key=lambda layer: layer[1])[0]
        grid, contentful = first_paint(site_root, widest, args.paints)
        print(f"layer page of {widest} ({max(c for _, c, _ in layers)} units): grid painted {grid:.0f} ms, "
              f"first contentful paint {contentful:.0f} ms after navigation (median of {args.paints})")


if __name__ == "__main__":
    main()
