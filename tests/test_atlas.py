"""The atlas over a small real run: the default model, scikit-image's sample photos, three layers
(the first, one in the middle, the logits), all four offline jobs; the site checked file by file and
in Debian's Chromium (every image loads, keys and the jump box move, sorting orders, no script error)."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.files import read_npz
from app.views.dataset_order import dataset_order
from tests.atlas_support import LAYERS, build, html_links, layer_file, link_target, script_data
from tools import atlas, optimize_image


@pytest.fixture()
def page(chromium):
    """A page that fails the test on a script error or a dialog (alert, confirm)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield page
    context.close()
    assert not problems, problems


def open_page(page, site: Path, relative: str):
    page.goto((site / relative.split("#")[0]).as_uri() + ("#" + relative.split("#", 1)[1] if "#" in relative else ""))
    wait_drawn(page)


def wait_drawn(page):
    """Until the page shows what its address asks for (the scripts mark it on the body)."""
    page.wait_for_function("document.body && document.body.dataset.drawn === location.hash")


SHOWN_IMAGES = "[...document.querySelectorAll('img')].filter((img) => !img.closest('[hidden]'))"


def all_images_load(page) -> list:
    """Every <img> shown on the page loaded (lazy ones too): the list of their sources."""
    page.evaluate(f"{SHOWN_IMAGES}.forEach((img) => {{ img.loading = 'eager'; }})")
    page.wait_for_function(f"{SHOWN_IMAGES}.every((img) => img.complete)")
    broken = page.evaluate(f"{SHOWN_IMAGES}.filter((img) => !(img.naturalWidth > 0)).map((img) => img.outerHTML)")
    assert broken == []
    return page.evaluate(f"{SHOWN_IMAGES}.map((img) => img.getAttribute('src'))")


def page_links(page) -> list:
    return page.evaluate("[...document.querySelectorAll('[href], [src]')]"
                         ".map((e) => e.getAttribute('href') || e.getAttribute('src'))")


def contrast(path: Path) -> float:
    gray = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
    low, high = np.percentile(gray, [1, 99])
    return float(high - low)


# -- files --------------------------------------------------------------------------------------
def test_a_few_files_per_layer_not_one_per_unit(atlas_run):
    units, site, _ = atlas_run
    pages = sorted(path.name for path in site.glob("*.html"))
    assert pages == ["index.html", "layer.html", "unit.html"]
    data = sorted(path.name for path in (site / "data").iterdir())
    grids = [layer_file(site, name, "grid").name for name in LAYERS]
    assert data == sorted(["site.js", "size.js"] + [layer_file(site, name).name for name in LAYERS] + grids)
    grid = script_data(layer_file(site, "fc", "grid"))["units"]
    assert grid == [{key: unit[key] for key in ("unit", "top", "dead", "thumb")}
                    for unit in script_data(layer_file(site, "fc"))["units"]]
    assert len(list((units / "fc").glob("unit_*"))) == 4   # the data still covers fc's 1000 units
    assert len(script_data(layer_file(site, "fc"))["units"]) == 1000


def test_images_are_stored_once_by_content(atlas_run):
    units, site, _ = atlas_run
    crops = list(units.glob("*/unit_*/*.png")) + list(units.glob("stats/*/*.png"))
    stored = list((site / "img").rglob("*.*"))
    contents = {path.read_bytes() for path in crops}
    assert len(stored) <= len(contents) + 8 + 32   # + the 8 source photos and the stem's 32 filters
    assert len({path.read_bytes() for path in stored}) == len(stored)


def test_numbers_on_the_data_equal_the_files(atlas_run):
    units, site, _ = atlas_run
    maxes = json.loads((units / "maxes.json").read_text())
    for name in LAYERS:
        data = script_data(layer_file(site, name))
        stats = read_npz(units / "stats" / name / "stats.npz")
        for unit in data["units"]:
            number = unit["unit"]
            assert unit["top"] == maxes["layers"][name][number][0]["value"]
            assert unit["dead"] == stats["percent_dead"][number]
            assert unit["hist"]["counts"] == stats["counts"][number].tolist()
            assert unit["hist"]["edges"] == stats["edges"][number].tolist()
            for other, r in unit["most"] + unit["least"]:
                assert r == stats["correlation"][number, other]
            best = max((r for u, r in enumerate(stats["correlation"][number]) if u != number))
            assert unit["most"][0][1] == best
            info = units / name / f"unit_{number:04d}" / "info.json"
            if info.is_file():
                entries = json.loads(info.read_text())["entries"]
                assert [crop["value"] for crop in unit["crops"]] == [entry["value"] for entry in entries]
                assert [crop["box"] for crop in unit["crops"]] == [entry["box"] for entry in entries]
                assert [crop["source"] for crop in unit["crops"]] == [Path(e["image"]).name for e in entries]
            else:
                assert unit["crops"] == []
            opt = units / name / f"unit_{number:04d}" / "opt.json"
            if opt.is_file():
                record = json.loads(opt.read_text())
                assert unit["opt"]["activation"] == record["activation"]
                assert unit["opt"]["start_activation"] == record["start_activation"]
                assert "--preset lucid --objective channel --iters 3" in unit["commands"][-1]
            else:
                assert unit["opt"] is None
    assert sum(unit["opt"] is not None for unit in script_data(layer_file(site, "fc"))["units"]) == 2


def test_dataset_orders_are_the_apps(atlas_run):
    units, site, _ = atlas_run
    data = script_data(layer_file(site, "blocks.2.1.add"))
    for mode in ("kmeans", "pca"):
        assert data["orders"][mode] == list(dataset_order(units, "blocks.2.1.add", mode, 40).units)


def test_first_layer_units_have_filters_and_later_ones_do_not(atlas_run):
    _, site, _ = atlas_run
    stem = script_data(layer_file(site, "stem"))["units"]
    assert all((site / unit["filter"]).is_file() for unit in stem)
    assert len({unit["filter"] for unit in stem}) == 32
    assert "filter" not in script_data(layer_file(site, "blocks.2.1.add"))["units"][0]


def test_every_link_in_every_file_leads_to_a_file_of_the_site(atlas_run):
    _, site, _ = atlas_run
    pages = list(site.glob("*.html"))
    links = [(page, link) for page in pages for link in html_links(page)]
    assert len(links) > 30
    assert [(page.name, link) for page, link in links if link_target(site, page, link) is None] == []
    for path in (site / "data").glob("layer-*.js"):
        for unit in script_data(path)["units"]:
            crops = unit.get("crops", [])   # the layer pages' grid scripts hold thumbnails only
            urls = [unit["thumb"], unit.get("filter")] + [crop["image"] for crop in crops]
            urls += [url for crop in crops for url in crop["files"].values()]
            urls += [value for key, value in (unit.get("opt") or {}).items() if key in ("opt", "raw", "transparency")]
            assert all(link_target(site, site / "index.html", url) for url in urls if url is not None)


def test_a_rerun_writes_nothing_and_one_more_optimized_unit_only_its_layer(atlas_run, tmp_path):
    units, site, _ = atlas_run
    copied = tmp_path / "units"
    shutil.copytree(units, copied)
    second = tmp_path / "site"
    assert len(build(copied, second)) > 100
    stamps = {path: path.stat().st_mtime_ns for path in second.rglob("*")}
    assert build(copied, second) == []
    assert stamps == {path: path.stat().st_mtime_ns for path in second.rglob("*")}
    optimize_image.main(["--layer", "stem", "--units", "5", "--iters", "2", "--preset", "lucid", "--out",
                         str(copied), "--cpu"])
    written = build(copied, second)
    images = [path for path in written if path.startswith("img/")]
    assert sorted(set(written) - set(images)) == sorted(
        ["atlas-files.json", "data/size.js", str(layer_file(second, "stem").relative_to(second)),
         str(layer_file(second, "stem", "grid").relative_to(second))])
    assert 1 <= len(images) <= 3   # opt.png, opt_raw.png, opt_transparency.png


def test_a_rebuild_of_fewer_layers_removes_what_no_page_uses(atlas_run, tmp_path):
    units, site, _ = atlas_run
    second = tmp_path / "site"
    shutil.copytree(site, second)
    (second / "img" / "notes.txt").write_text("mine")   # not of the site's making: stays
    before = {path.relative_to(second).as_posix() for path in second.rglob("*") if path.is_file()}
    fc_data = layer_file(second, "fc")
    _, built, _ = atlas.build(["--units-dir", str(units), "--out", str(second), "--cpu", "--layers", "stem"])
    after = {path.relative_to(second).as_posix() for path in second.rglob("*") if path.is_file()}
    assert set(built.removed) == before - after and "img/notes.txt" in after
    assert sum(path.startswith("img/") for path in built.removed) > 20
    assert fc_data.relative_to(second).as_posix() in built.removed
    assert not fc_data.exists() and layer_file(second, "stem").exists()
    shown = {url for unit in script_data(layer_file(second, "stem"))["units"]
             for url in [unit["thumb"], unit.get("filter")] + [crop["image"] for crop in unit.get("crops", [])]
             + [url for crop in unit.get("crops", []) for url in crop["files"].values()] if url}
    assert shown and all((second / url).is_file() for url in shown)
    assert all(entry[2] in after for entry in json.loads((second / "atlas-files.json").read_text()).values())
    _, again, _ = atlas.build(["--units-dir", str(units), "--out", str(second), "--cpu"])   # every layer back
    assert again.removed == [] and set(built.removed) <= {path.relative_to(second).as_posix()
                                                           for path in second.rglob("*") if path.is_file()}


def test_tool_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for folder, says in (("none", "no such folder"), ("empty", "nothing of efficientnet-lite0's layers here")):
        with pytest.raises(SystemExit) as exited:
            atlas.main(["--units-dir", str(tmp_path / folder), "--out", str(tmp_path / "site"), "--cpu"])
        assert exited.value.code != 0
        error = capsys.readouterr().err
        assert error.strip().count("\n") == 0 and says in error, error
    assert not (tmp_path / "site").exists()


# -- in the browser -----------------------------------------------------------------------------
def test_index_layer_and_unit_pages_render_every_image(atlas_run, page):
    units, site, _ = atlas_run
    for relative, least in (("index.html", 3 * 4), ("layer.html#layer=blocks.2.1.add", 4),
                            ("unit.html#layer=stem&unit=1", 4 * 4 + 3 + 1),
                            ("unit.html#layer=fc&unit=0&source=0", 4 * 4 + 3 + 1)):
        open_page(page, site, relative)
        sources = all_images_load(page)
        assert len(sources) >= least, relative
        assert [link for link in page_links(page) if link_target(site, site / "index.html", link) is None] == []
    open_page(page, site, "index.html")
    assert page.text_content("#site-size").startswith("this site: ")


def test_unit_page_shows_the_files_numbers(atlas_run, page):
    units, site, _ = atlas_run
    open_page(page, site, "unit.html#layer=blocks.2.1.add&unit=2")
    entries = json.loads((units / "blocks.2.1.add" / "unit_0002" / "info.json").read_text())["entries"]
    shown = page.eval_on_selector_all("#crop-table .values .num",
                                      "(spans) => spans.map((s) => [s.dataset.value, s.textContent])")
    assert [float(value) for value, _ in shown] == [entry["value"] for entry in entries]
    assert [float(text) for _, text in shown] == pytest.approx([entry["value"] for entry in entries], rel=1e-4)
    stats = read_npz(units / "stats" / "blocks.2.1.add" / "stats.npz")
    dead = page.get_attribute("#histogram-facts .num", "data-value")
    assert float(dead) == stats["percent_dead"][2]
    bars = page.eval_on_selector_all("#histogram-plot rect", "(bars) => bars.map((b) => Number(b.dataset.count))")
    assert bars == stats["counts"][2].tolist()
    assert page.text_content("#command-lines").startswith("python -m tools.crop_max_patches")


def test_source_view_draws_the_receptive_field_box(atlas_run, page):
    units, site, _ = atlas_run
    open_page(page, site, "unit.html#layer=blocks.2.1.add&unit=1&source=0")
    entry = json.loads((units / "blocks.2.1.add" / "unit_0001" / "info.json").read_text())["entries"][0]
    assert page.text_content("#source-title").endswith(Path(entry["image"]).name)
    image = page.eval_on_selector("#source-image", "(img) => { const r = img.getBoundingClientRect(); "
                                  "return [r.left, r.top, r.width, r.height]; }")
    box = page.eval_on_selector("#source-box", "(b) => { const r = b.getBoundingClientRect(); "
                                "return [r.left, r.top, r.width, r.height]; }")
    y0, y1, x0, x1 = (min(max(v, 0), 224) for v in entry["box"])
    assert box[0] - image[0] == pytest.approx(x0 / 224 * image[2], abs=2)
    assert box[1] - image[1] == pytest.approx(y0 / 224 * image[3], abs=2)
    assert box[2] == pytest.approx((x1 - x0) / 224 * image[2], abs=3)


def test_keys_move_between_units_and_layers(atlas_run, page):
    _, site, _ = atlas_run
    open_page(page, site, "unit.html#layer=blocks.2.1.add&unit=1")

    def where():
        wait_drawn(page)
        return page.text_content("#unit-title")
    assert where() == "blocks.2.1.add : unit 1"
    page.keyboard.press("l")
    assert where() == "blocks.2.1.add : unit 2"
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert where() == "blocks.2.1.add : unit 0"
    page.keyboard.press("o")
    assert where() == "fc : unit 0"
    page.keyboard.press("u")
    page.keyboard.press("u")
    assert where() == "stem : unit 0"
    page.keyboard.press("h")
    assert page.is_visible("#help")
    page.keyboard.press("h")
    assert not page.is_visible("#help")
    open_page(page, site, "layer.html#layer=stem")
    page.keyboard.press("o")
    wait_drawn(page)
    assert page.text_content("#layer-name") == "blocks.2.1.add"
    page.select_option("#sort", "activation")
    wait_drawn(page)
    page.locator("body").focus()
    for key in "llljl":   # the layer page's cursor over the tiles, in the order shown
        page.keyboard.press(key)
    third = page.eval_on_selector_all("#grid .tile", "(tiles) => tiles[2].dataset.unit")
    assert page.eval_on_selector("#grid .selected", "(tile) => tile.dataset.unit") == third
    page.keyboard.press("Enter")
    page.wait_for_selector("#unit-title")
    wait_drawn(page)
    assert page.text_content("#unit-title") == f"blocks.2.1.add : unit {third}"


def test_jump_box(atlas_run, page):
    _, site, _ = atlas_run
    open_page(page, site, "index.html")
    page.keyboard.press("/")
    page.keyboard.type("fc:817")
    page.keyboard.press("Enter")
    page.wait_for_selector("#unit-title")
    page.wait_for_function("document.querySelector('#unit-title').textContent === 'fc : unit 817'")
    page.fill("#jump-box", "1:")   # the second layer of the site, by number
    page.press("#jump-box", "Enter")
    page.wait_for_selector("#layer-name")
    page.wait_for_function("document.querySelector('#layer-name').textContent === 'blocks.2.1.add'")
    page.fill("#jump-box", "fc:1000")
    page.press("#jump-box", "Enter")
    assert "wrong" in page.get_attribute("#jump-box", "class")


def test_sorting_orders_the_grid(atlas_run, page):
    units, site, _ = atlas_run
    data = script_data(layer_file(site, "blocks.2.1.add"))
    open_page(page, site, "layer.html#layer=blocks.2.1.add")

    def order():
        wait_drawn(page)
        return [int(u) for u in page.eval_on_selector_all("#grid .tile", "(tiles) => tiles.map((t) => t.dataset.unit)")]
    assert order() == list(range(40))
    page.select_option("#sort", "activation")
    tops = [unit["top"] for unit in data["units"]]
    assert order() == sorted(range(40), key=lambda u: (-tops[u], u))
    page.select_option("#sort", "kmeans")
    assert order() == data["orders"]["kmeans"]
    page.select_option("#sort", "dead")
    dead = [unit["dead"] for unit in data["units"]]
    assert order() == sorted(range(40), key=lambda u: (-dead[u], u))
    page.select_option("#sort", "pca")
    assert order() == data["orders"]["pca"]
    assert "sort=pca" in page.url


def test_the_unit_page_is_a_picture_with_contrast(atlas_run, page, tmp_path):
    _, site, _ = atlas_run
    open_page(page, site, "unit.html#layer=blocks.2.1.add&unit=1")
    all_images_load(page)
    crops = page.locator("#crop-table")
    path = tmp_path / "atlas_unit_crops.png"
    crops.screenshot(path=str(path))
    assert contrast(path) > 100


def test_the_app_key_gives_the_selected_units_page(atlas_run, page, monkeypatch, tmp_path):
    from app.net import Net
    from app.ui.app import App
    from tests import ui_support

    _, site, _ = atlas_run
    opened = []

    class Browser:
        @staticmethod
        def open(url):
            opened.append(url)
            return True

    app = App(Net.load(provider="cpu"), ui_support.settings(atlas_dir=str(site)))
    layer = app.info.names.index("blocks.2.1.add")
    app.state = replace(app.state, layer=layer, unit=3)
    monkeypatch.setenv("DISPLAY", ":99")
    app.open_atlas(Browser)
    assert app.message.startswith("atlas: opened file://") and len(opened) == 1
    page.goto(opened[0])
    wait_drawn(page)
    assert page.text_content("#unit-title") == "blocks.2.1.add : unit 3"
    app.state = replace(app.state, layer=app.info.names.index("stem.conv"), unit=5)
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    app.open_atlas(Browser)   # a conv shows its ReLU's page; no display: the URL only
    assert app.message.startswith("atlas: file://") and app.message.endswith("#layer=stem&unit=5")
    assert len(opened) == 1
    app.state = replace(app.state, layer=app.info.names.index("head"), unit=0)
    app.open_atlas(Browser)
    assert app.message == f"atlas: the atlas in {site} has no page of head"
    away = App(Net.load(provider="cpu"), ui_support.settings(atlas_dir=str(tmp_path / "none")))
    away.open_atlas(Browser)
    assert away.message.startswith(f"atlas: no atlas in {tmp_path / 'none'} (python -m tools.atlas")


def test_key_a_in_the_browser_app_opens_the_page_the_server_serves(atlas_run, page, tmp_path):
    import urllib.error
    import urllib.request

    from app.inputs import open_source
    from app.inputs.samples import default_input_dir
    from app.net import Net
    from app.web.server import WebServer
    from tests import ui_support

    _, site, _ = atlas_run
    settings = ui_support.settings(atlas_dir=str(site))
    images = default_input_dir(tmp_path)
    server = WebServer(Net.load(provider="cpu"), settings, lambda: open_source(str(images), settings), port=0).start()
    try:
        page.goto(server.url)
        page.wait_for_function("Number(document.getElementById('view').dataset.frames || 0) > 0", timeout=30000)
        with page.context.expect_page(timeout=20000) as opened:
            page.keyboard.press("A")
        unit_page = opened.value
        problems = []
        unit_page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        wait_drawn(unit_page)
        prefix = f"http://127.0.0.1:{server.port}/atlas/{server.token}/unit.html#layer="
        assert unit_page.url.startswith(prefix)
        layer, unit = unit_page.url[len(prefix):].split("&unit=")
        assert layer in LAYERS and unit_page.text_content("#unit-title") == f"{layer} : unit {unit}"
        assert len(all_images_load(unit_page)) > 4 and not problems
        # the token is in the path; a path with a ".." part or outside the site's files is not served
        base = f"http://127.0.0.1:{server.port}/atlas"
        for path, status in ((f"/{server.token}/index.html", 200), (f"/{server.token}/", 200),
                             ("/" + "x" * len(server.token) + "/index.html", 403), ("/index.html", 403),
                             (f"/{server.token}/%2e%2e/units/maxes.json", 404),
                             (f"/{server.token}/data/%2e%2e/%2e%2e/units/maxes.json", 404),
                             (f"/{server.token}/no-such-file.html", 404), (f"/{server.token}/data", 404)):
            try:
                with urllib.request.urlopen(base + path) as answer:
                    got, body = answer.status, answer.read()
            except urllib.error.HTTPError as error:
                got, body = error.code, error.read()
            assert got == status, path
            assert (b"<html" in body.lower()) == (status == 200), path
    finally:
        server.stop()


def test_the_site_works_from_a_static_http_server(atlas_run, page):
    import functools
    import http.server
    import threading

    _, site, _ = atlas_run
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page.goto(f"{base}/unit.html#layer=fc&unit=1")
        wait_drawn(page)
        assert page.text_content("#unit-title") == "fc : unit 1"
        assert len(all_images_load(page)) >= 4 * 4 + 3
        page.keyboard.press("u")
        wait_drawn(page)
        assert page.text_content("#unit-title") == "blocks.2.1.add : unit 1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
