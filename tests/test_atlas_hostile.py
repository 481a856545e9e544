"""Names from a model are data: layers named like markup or like a path out of the site, and a source
image named like markup, show as text in the atlas, run no script and write no file outside the site."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.atlas_support import build, html_links, layer_file, link_target, offline_run, script_data
from tests.test_atlas import all_images_load, open_page, page  # noqa: F401  (the page fixture)
from tests.test_find_maxes import renamed_tiny_net, write_images

MARKUP = "<img src=x onerror=alert(1)>"
OUT_OF_SITE = "../../x"
SCRIPT = '"><script>alert(2)</script>'
IMAGE_NAME = "<img src=y onerror=alert(3)>.png"
RENAMED = {"relu1": MARKUP, "relu2": OUT_OF_SITE, "fc": SCRIPT}


def files_under(folder: Path) -> set:
    return {path for path in folder.rglob("*")}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "a" / "b"
    folder.mkdir(parents=True)
    model = renamed_tiny_net(folder, RENAMED)
    images = folder / "images"
    write_images(images, 6)
    cv2.imwrite(str(images / IMAGE_NAME), np.full((40, 48, 3), 200, np.uint8))
    units = offline_run(images, folder / "units", list(RENAMED.values()), "0-2", {OUT_OF_SITE: "0"}, model=model)
    before = files_under(folder.parents[1])
    site = folder / "site"
    build(units, site, model)
    return site, model, units, before, folder.parents[1]


def test_no_file_outside_the_site_and_no_markup_in_file_names(hostile):
    site, _, _, before, top = hostile
    new = files_under(top) - before
    assert new and all(path == site or site in path.parents for path in new)
    assert not any(character in path.name for path in files_under(site) for character in "<>\"'")


def test_names_are_data_in_the_files(hostile):
    site, *_ = hostile
    for name in RENAMED.values():
        assert script_data(layer_file(site, name))["name"] == name
    index = (site / "index.html").read_text()
    assert MARKUP not in index and "<script>alert" not in index
    assert "&lt;img src=x onerror=alert(1)&gt;" in index
    for html in site.glob("*.html"):
        assert all(link_target(site, html, link) for link in html_links(html))


def test_no_script_runs_and_names_show_as_text(hostile, page):  # noqa: F811
    site, *_ = hostile
    open_page(page, site, "index.html")
    all_images_load(page)
    assert MARKUP in page.text_content("table.layers")
    assert page.locator("table.layers img[src='x']").count() == 0
    for name in RENAMED.values():
        page.click(f"text={name}") if name != SCRIPT else page.locator("a.layer-link").last.click()
        page.wait_for_function("document.body.dataset.drawn === location.hash")
        assert page.text_content("#layer-name") == name
        all_images_load(page)
        page.go_back()
        page.wait_for_function("document.body.dataset.drawn === location.hash")
    open_page(page, site, "unit.html#layer=" + MARKUP.replace("<", "%3C").replace(">", "%3E") + "&unit=1")
    assert page.text_content("#unit-title") == f"{MARKUP} : unit 1"
    all_images_load(page)
    assert page.locator("img[src='x'], img[src='y']").count() == 0
    units = script_data(layer_file(site, OUT_OF_SITE))["units"]
    named = next(unit["unit"] for unit in units
                 if any(top["source"] == IMAGE_NAME for top in unit["crops"] + unit.get("maxes", [])))
    open_page(page, site, f"unit.html#layer=..%2F..%2Fx&unit={named}")
    sources = page.eval_on_selector_all("#crop-table .sources td, #max-list a",
                                        "(cells) => cells.map((c) => c.textContent)")
    assert IMAGE_NAME in sources
    all_images_load(page)
    page.fill("#jump-box", f"{OUT_OF_SITE}:0")
    page.press("#jump-box", "Enter")
    page.wait_for_function("document.body.dataset.drawn === location.hash")
    assert page.text_content("#unit-title") == f"{OUT_OF_SITE} : unit 0"
    all_images_load(page)


def test_link_hard_links_the_images_instead_of_copying(hostile, tmp_path):
    _, model, units, _, _ = hostile
    linked = tmp_path / "linked"
    build(units, linked, model, "--link")
    sources = {path.stat().st_ino for path in units.rglob("*.png")}
    crop = next(units.rglob("maxim_000.png"))
    stored = [path for path in (linked / "img").rglob("*.png") if path.read_bytes() == crop.read_bytes()]
    assert len(stored) == 1   # one file per content: a crop equal to another is stored once
    assert stored[0].stat().st_ino in sources and stored[0].stat().st_nlink >= 2


def test_a_broken_json_is_one_line_naming_the_file(hostile, tmp_path, capsys):
    import shutil

    from tools import atlas

    _, model, units, _, _ = hostile
    copied = tmp_path / "units"
    shutil.copytree(units, copied)
    broken = next(copied.rglob("info.json"))
    broken.write_text('{"entries": [{"rank": 0}]')
    with pytest.raises(SystemExit) as exited:
        atlas.main(["--units-dir", str(copied), "--model", str(model), "--out", str(tmp_path / "site"), "--cpu"])
    error = capsys.readouterr().err.strip().splitlines()[0]   # the count follows; the site is written
    assert exited.value.code == 1 and error.startswith(f"error: {broken}: not an info.json of crop_max_patches "
                                                       "(unreadable")
    broken.write_text('{"entries": [{"rank": 0}]}')
    with pytest.raises(SystemExit) as exited:
        atlas.main(["--units-dir", str(copied), "--model", str(model), "--out", str(tmp_path / "site"), "--cpu"])
    error = capsys.readouterr().err.strip().splitlines()[0]
    assert exited.value.code == 1 and error.startswith(f"error: {broken}: not an info.json of crop_max_patches")
