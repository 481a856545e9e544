"""tools.atlas against damaged units folders, other sites' folders and kills, over the atlas's run
of the session (tests/conftest.py): a unit's file that cannot be read is its own line and the rest
of the site is written (status 1); a folder of another model's site or of other files is refused
(status 2, nothing changed); killed at five moments and run again, the site is the same, byte for
byte, as one built in one go."""
import json
import shutil

import pytest

from app.offline.layer_stats import layer_folder
from app.unit_images import crop_path, unit_dir
from tests.atlas_support import build, layer_file, script_data
from tests.kill_support import assert_same_files, files_of, kill_at, run_tool
from tests.test_offline_faults_kill import MOMENTS
from tools import atlas


def run_atlas(units, site, capsys) -> tuple:
    """tools.atlas's exit status and its stderr lines."""
    with pytest.raises(SystemExit) as exited:
        atlas.main(["--units-dir", str(units), "--out", str(site), "--cpu"])
        raise SystemExit(0)
    return exited.value.code, capsys.readouterr().err.splitlines()


def test_damaged_unit_files_are_one_line_each_and_the_rest_of_the_site_is_written(atlas_run, tmp_path, capsys):
    units = tmp_path / "units"
    shutil.copytree(atlas_run[0], units)
    info = unit_dir(units, "stem", 1) / "info.json"
    info.write_text('{"entries": [{"rank": 0, "val')                   # cut short
    opt = unit_dir(units, "fc", 0) / "opt.json"
    opt.write_text("[1, 2, 3]")                                       # json, not a record
    crop = crop_path(units, "blocks.2.1.add", 2, "maxim", 0)
    crop.write_bytes(crop.read_bytes()[:200])                         # a truncated PNG
    picture = unit_dir(units, "stem", 0) / "opt.png"
    picture.write_bytes(b"")
    stats = layer_folder(units, "fc") / "stats.npz"
    stats.write_bytes(b"PK\x03\x04 not a zip")
    site = tmp_path / "site"

    status, lines = run_atlas(units, site, capsys)
    assert status == 1
    assert not any("Traceback" in line for line in lines)
    damaged = (info, opt, crop, picture, stats)
    assert len(lines) == len(damaged) + 1, lines
    for path in damaged:   # one line each: the file, what is wrong, what to do
        line = next(line for line in lines if str(path) in line)
        assert line.startswith("error: ") and (" again" in line or "make it again" in line), line
    assert lines[-1] == f"error: {len(damaged)} files of {units} could not be read; the rest of the site is written"

    stem = {unit["unit"]: unit for unit in script_data(layer_file(site, "stem"))["units"]}
    assert stem[1]["crops"] == [] and len(stem[0]["crops"]) == 4 and len(stem[2]["crops"]) == 4
    assert "opt" not in stem[0]["opt"] and stem[0]["opt"]["raw"] and stem[0]["thumb"]
    fc = {unit["unit"]: unit for unit in script_data(layer_file(site, "fc"))["units"]}
    assert fc[0]["opt"] is None and fc[1]["opt"]["opt"] and fc[0]["dead"] is None
    middle = {unit["unit"]: unit for unit in script_data(layer_file(site, "blocks.2.1.add"))["units"]}
    assert "maxim" not in middle[2]["crops"][0]["files"] and "maxim" in middle[2]["crops"][1]["files"]
    assert (site / "index.html").is_file() and json.loads((site / "atlas.json").read_text())["layers"]

    status, again = run_atlas(units, site, capsys)   # still damaged: said again on every run
    assert status == 1 and again == lines


def test_a_site_of_another_model_or_a_folder_of_other_files_is_refused(atlas_run, tmp_path, capsys):
    units, built, _ = atlas_run
    other = tmp_path / "other"
    shutil.copytree(built, other)
    record = json.loads((other / "atlas.json").read_text())
    (other / "atlas.json").write_text(json.dumps({**record, "model": "mnist-lenet"}))
    before = files_of(other)
    status, lines = run_atlas(units, other, capsys)
    assert status == 2 and lines == [f"error: {other / 'atlas.json'}: the site of mnist-lenet, not efficientnet-lite0; "
                                     f"choose another --out, or delete {other} to build efficientnet-lite0's "
                                     "site there"]
    assert files_of(other) == before

    (other / "atlas.json").unlink()   # a run killed before atlas.json: site.js names the model too
    site_js = other / "data" / "site.js"
    site_js.write_text(site_js.read_text().replace('"model":"efficientnet-lite0"', '"model":"mnist-lenet"'))
    status, lines = run_atlas(units, other, capsys)
    assert status == 2 and lines[0].startswith(f"error: {site_js}: the site of mnist-lenet") and len(lines) == 1

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    status, lines = run_atlas(units, work, capsys)
    assert status == 2 and lines == [f"error: {work}: not an atlas site (it holds 'notes.txt'); choose another "
                                     "--out, or an empty folder"]
    assert sorted(path.name for path in work.iterdir()) == ["notes.txt"]


def test_killed_at_five_moments_and_run_again_the_site_is_the_same(atlas_run, tmp_path):
    units, whole, _ = atlas_run
    arguments = ["--units-dir", units, "--out", tmp_path / "killed", "--cpu"]
    cut = [kill_at("atlas", arguments, write, inside) for write, inside in MOMENTS]
    assert all(cut), cut   # every kill landed inside or after a write
    done = run_tool("atlas", arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_files(whole, tmp_path / "killed")
    assert build(units, tmp_path / "killed") == []   # and a further run finds nothing to write
