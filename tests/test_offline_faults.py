"""The offline tools' exit status and failure lines: an input that fails is named on stderr, one line
each, the rest is still done, and the exit status is 1; --help of every tool says so."""
import errno
import json
from pathlib import Path

import pytest

from app.unit_images import folder_name, unit_dir
from tests.kill_support import files_of
from tests.test_find_maxes import renamed_tiny_net, tiny_net_file, write_images
from tools import (atlas, cli, crop_max_patches, export_volume, find_maxes, layer_stats, layers, occlusion,
                   optimize_image, receptive_field)
import run_toolbox

TOOLS = [find_maxes, crop_max_patches, optimize_image, layer_stats, export_volume, occlusion, receptive_field,
         layers, atlas, run_toolbox]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("offline_faults")
    return tiny_net_file(folder), folder


def exit_status(tool, arguments: list) -> int:
    with pytest.raises(SystemExit) as stop:
        tool.main([str(argument) for argument in arguments])
    return stop.value.code


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.__name__.split(".")[-1])
def test_help_documents_the_exit_status(tool, capsys):
    assert exit_status(tool, ["--help"]) == 0
    assert " ".join(cli.EXIT_STATUS.split()) in " ".join(capsys.readouterr().out.split())


def test_find_maxes_names_each_unreadable_image_and_exits_1_after_ranking_the_others(tiny, tmp_path, capsys):
    model, _ = tiny
    images = write_images(tmp_path / "images", 6)
    images[2].write_bytes(b"")
    images[4].write_bytes(b"GIF89a broken")
    out = tmp_path / "out"
    assert exit_status(find_maxes, ["--images", tmp_path / "images", "--model", model, "--quiet", "--cpu",
                                    "--out", out]) == 1
    captured = capsys.readouterr()
    assert "4 images scored, 2 unreadable skipped" in captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert lines[0].startswith(f"error: {images[2]}: empty file") and "skipped" in lines[0]
    assert lines[1].startswith(f"error: {images[4]}: ") and "skipped" in lines[1]
    assert lines[2] == "error: 2 of 6 images could not be read (listed in maxes.json under skipped)"
    assert (out / "maxes.json").is_file()


def test_find_maxes_exits_0_when_every_image_was_read(tiny, tmp_path, capsys):
    model, _ = tiny
    write_images(tmp_path / "images", 3)
    find_maxes.main([str(a) for a in ["--images", tmp_path / "images", "--model", model, "--quiet", "--cpu",
                                      "--out", tmp_path / "out"]])
    assert capsys.readouterr().err == ""


def test_crop_max_patches_leaves_a_unit_whose_image_is_gone_and_crops_the_others(tiny, tmp_path, capsys):
    model, _ = tiny
    images = write_images(tmp_path / "images", 4)
    out = tmp_path / "out"
    find_maxes.main([str(a) for a in ["--images", tmp_path / "images", "--model", model, "--layers", "fc",
                                      "--top", "1", "--quiet", "--cpu", "--out", out]])
    maxes = json.loads((out / "maxes.json").read_text())
    top = [channel[0]["image"] for channel in maxes["layers"]["fc"]]
    gone = images[top[0]]
    saved = gone.read_bytes()
    gone.unlink()
    arguments = ["--maxes", out / "maxes.json", "--modes", "maxim", "--batch", "1", "--cpu", "--out", out]
    capsys.readouterr()
    assert exit_status(crop_max_patches, arguments) == 1
    captured = capsys.readouterr()
    failed = [unit for unit, image in enumerate(top) if image == top[0]]
    lines = [line for line in captured.err.splitlines() if "error" in line]   # the others: the progress bar
    assert lines[-1] == f"error: {len(failed)} units could not be cropped"
    assert all(line.startswith(f"error: {gone}: no such image file; fc units ") and line.endswith(
        "left undone (restore the image, then run again)") for line in lines[:-1])
    assert len(lines) - 1 == len(failed)
    assert f"cropped {10 - len(failed)} units, 0 already done, {len(failed)} failed" in captured.out
    assert [unit for unit in range(10) if not (unit_dir(out, "fc", unit) / "info.json").is_file()] == failed

    gone.write_bytes(saved)   # the image back: a second run does the units left and exits 0
    crop_max_patches.main([str(argument) for argument in arguments])
    assert f"cropped {len(failed)} units, {10 - len(failed)} already done" in capsys.readouterr().out
    assert all((unit_dir(out, "fc", unit) / "info.json").is_file() for unit in range(10))


@pytest.mark.parametrize("tool, arguments", [
    (export_volume, ["--layer", "relu1", "--out", "volume"]),
    (occlusion, ["--layer", "fc", "--unit", "0", "--out", "map.png"]),
], ids=["export_volume", "occlusion"])
def test_a_one_image_tool_exits_1_with_one_line_when_its_image_fails(tool, arguments, tiny, tmp_path, capsys,
                                                                     monkeypatch):
    model, _ = tiny
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert exit_status(tool, ["broken.png"] + arguments + ["--model", model, "--cpu"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: broken.png: ") and captured.err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.png"]


def test_find_maxes_refuses_an_output_folder_of_another_model(tiny, tmp_path, capsys):
    model, folder = tiny
    other = tiny_net_file(tmp_path, size=36)
    write_images(tmp_path / "images", 3)
    arguments = ["--images", tmp_path / "images", "--quiet", "--cpu", "--out", tmp_path / "out"]
    find_maxes.main([str(a) for a in arguments + ["--model", model]])
    before = (tmp_path / "out" / "maxes.json").read_bytes()
    capsys.readouterr()
    for changed in (["--model", other], ["--model", model, "--top", "2"], ["--model", model, "--no-stats"]):
        assert exit_status(find_maxes, arguments + changed) == 2
        assert capsys.readouterr().err == (f"error: {tmp_path / 'out' / 'find_maxes.state.npz'}: made by a run with "
                                           "another model, other images, layers or options; delete it (or choose "
                                           "another --out) to start over\n")
    assert (tmp_path / "out" / "maxes.json").read_bytes() == before


@pytest.fixture(scope="module")
def two_rankings(tiny, tmp_path_factory):
    """maxes.json of the tiny net's fc over two sets of images."""
    model, _ = tiny
    folder = tmp_path_factory.mktemp("two_rankings")
    found = []
    for seed in (0, 1):
        write_images(folder / f"images{seed}", 3, seed=seed)
        find_maxes.main([str(a) for a in ["--images", folder / f"images{seed}", "--model", model, "--layers", "fc",
                                          "--top", "2", "--quiet", "--cpu", "--out", folder / f"maxes{seed}"]])
        found.append(folder / f"maxes{seed}" / "maxes.json")
    return found


def test_crop_max_patches_refuses_a_folder_of_other_rankings_or_modes(two_rankings, tmp_path, capsys):
    first, second = two_rankings
    out = tmp_path / "units"
    crop_max_patches.main([str(a) for a in ["--maxes", first, "--modes", "maxim", "--cpu", "--out", out]])
    before = files_of(out)
    capsys.readouterr()
    unit = out / "fc" / "unit_0000" / "info.json"
    assert exit_status(crop_max_patches, ["--maxes", second, "--modes", "maxim", "--cpu", "--out", out]) == 2
    assert capsys.readouterr().err == (f"error: {unit}: made by another run: other top images (another "
                                       f"maxes.json); choose another --out, or delete {out / 'fc'} to make its "
                                       "units again\n")
    assert exit_status(crop_max_patches, ["--maxes", first, "--modes", "maxim,deconv", "--cpu", "--out", out]) == 2
    assert f"error: {unit}: made by another run: modes maxim, this run asks maxim,deconv;" in capsys.readouterr().err
    assert files_of(out) == before


def test_optimize_image_refuses_a_folder_of_other_options_or_another_model(tiny, tmp_path, capsys):
    model, _ = tiny
    other = tiny_net_file(tmp_path, size=36)
    arguments = ["--layer", "fc", "--units", "0-1", "--preset", "3", "--cpu", "--out", tmp_path / "units"]
    optimize_image.main([str(a) for a in arguments + ["--model", model, "--iters", "2"]])
    before = files_of(tmp_path / "units")
    capsys.readouterr()
    unit = tmp_path / "units" / "fc" / "unit_0000" / "opt.json"
    assert exit_status(optimize_image, arguments + ["--model", model, "--iters", "3"]) == 2
    assert capsys.readouterr().err == (f"error: {unit}: made by another run: iterations 2, this run's 3; choose "
                                       f"another --out, or delete {tmp_path / 'units' / 'fc'} to make its units again\n")
    assert exit_status(optimize_image, arguments + ["--model", other, "--iters", "2"]) == 2
    assert "model 'tiny32_opset13', this run's 'tiny36_opset13'" in capsys.readouterr().err
    assert files_of(tmp_path / "units") == before


HOSTILE_LAYERS = {"relu1": "../../escaped", "pool1": "/tmp/absolute", "relu2": "nul\x00in/it",
                  "gap": "ünïcødé/层/" + "long" * 80, "fc": ".."}


def everything_under(folder: Path) -> set:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_layer_and_image_names_that_are_paths_stay_file_names_inside_the_output_folder(tmp_path, capsys):
    model = renamed_tiny_net(tmp_path, HOSTILE_LAYERS)
    images = tmp_path / "images"
    for index, name in enumerate(["a b.png", "ünï 层.png", "-rf.png", "line\nbreak.png", "x" * 240 + ".png"]):
        images.mkdir(exist_ok=True)
        write_images(tmp_path / "one", 1, seed=index)[0].rename(images / name)
    out = tmp_path / "out"
    session = tmp_path.parent   # this test session's folder: where "../../escaped" would land
    before = everything_under(session)
    find_maxes.main([str(a) for a in ["--images", images, "--model", model, "--layers", "all", "--top", "2",
                                      "--quiet", "--cpu", "--out", out]])
    maxes = json.loads((out / "maxes.json").read_text())
    assert set(HOSTILE_LAYERS.values()) <= set(maxes["layers"]) and len(maxes["images"]) == 5
    layer_stats.main(["--maxes", str(out / "maxes.json"), "--quiet"])
    crop_max_patches.main([str(a) for a in ["--maxes", out / "maxes.json", "--units", "0-1", "--modes", "maxim",
                                            "--cpu", "--out", out]])
    for layer in HOSTILE_LAYERS.values():
        optimize_image.main([str(a) for a in ["--model", model, "--layer", layer, "--units", "0", "--preset", "3",
                                              "--iters", "1", "--cpu", "--out", out]])
    export_volume.main([str(a) for a in [images / "a b.png", "--layer", HOSTILE_LAYERS["relu2"], "--model", model,
                                         "--cpu", "--out", out / "volume"]])
    capsys.readouterr()
    written = everything_under(session) - before
    inside = str(out.relative_to(session))
    assert written and all(path.startswith(inside) for path in written), \
        sorted(path for path in written if not path.startswith(inside))
    assert not Path("/tmp/absolute").exists()
    folders = {path.name for path in out.iterdir() if path.is_dir()} - {"channel_maxima", "stats"}
    assert folders == {folder_name(layer) for layer in maxes["layers"]} and len(folders) == 7
    assert all(len(name) <= 120 and name not in (".", "..") and "/" not in name and "\x00" not in name
               for name in folders)
    assert {path.name for path in (out / "stats").iterdir()} == folders
    for layer in HOSTILE_LAYERS.values():
        info = json.loads((unit_dir(out, layer, 1) / "info.json").read_text())
        assert info["layer"] == layer and {entry["image"] for entry in info["entries"]} <= set(maxes["images"])
        assert json.loads((unit_dir(out, layer, 0) / "opt.json").read_text())["layer"] == layer


def test_a_written_objective_longer_than_a_file_name_gets_a_cut_folder_name(tiny, tmp_path, capsys):
    model, _ = tiny
    text = " + ".join([f"relu2:{unit}" for unit in range(16)] + [f"0.25*relu1:{unit}" for unit in range(8)]
                     + [f"0.125*pool1:{unit}" for unit in range(8)])
    assert len(text.replace(" ", "")) > 255   # more than one file name holds
    optimize_image.main([str(a) for a in ["--model", model, "--objective", text, "--preset", "lucid", "--iters", "1",
                                          "--size", "32", "--cpu", "--out", tmp_path / "out"]])
    folder, = (tmp_path / "out" / "objectives").iterdir()
    assert len(folder.name) == 120 and folder.name.startswith("relu2_0+relu2_1+")
    assert json.loads((folder / "opt.json").read_text())["objective"] == text
    assert capsys.readouterr().out == f"{folder}: optimized {text!r}\n"


def no_space(*_):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("tool", ["find_maxes", "layer_stats", "crop_max_patches", "optimize_image", "export_volume",
                                  "atlas"])
def test_a_full_disk_is_one_line_naming_the_file_and_exit_2_with_no_half_file(tool, tiny, tmp_path, capsys,
                                                                              monkeypatch):
    model, _ = tiny
    images = write_images(tmp_path / "images", 3)
    out = tmp_path / "out"
    first = ["--images", tmp_path / "images", "--model", model, "--layers", "relu1,relu2", "--top", "2", "--quiet",
             "--cpu", "--out", out]
    if tool != "find_maxes":
        find_maxes.main([str(a) for a in first])
        crop_max_patches.main([str(a) for a in ["--maxes", out / "maxes.json", "--units", "0", "--modes", "maxim",
                                                "--cpu", "--out", out]])
    arguments = {
        "find_maxes": first,
        "layer_stats": ["--maxes", out / "maxes.json", "--quiet"],
        "crop_max_patches": ["--maxes", out / "maxes.json", "--units", "1", "--modes", "maxim", "--cpu", "--out", out],
        "optimize_image": ["--model", model, "--layer", "relu1", "--units", "0", "--iters", "1", "--cpu", "--out", out],
        "export_volume": [images[0], "--layer", "relu2", "--model", model, "--cpu", "--out", tmp_path / "volume"],
        "atlas": ["--units-dir", out, "--model", model, "--cpu", "--out", tmp_path / "site"],
    }[tool]
    capsys.readouterr()
    monkeypatch.setattr("app.files.os.fsync", no_space)   # every file the toolbox writes goes through it
    module = {tool.__name__.split(".")[-1]: tool for tool in TOOLS}[tool]
    assert exit_status(module, arguments) == 2
    monkeypatch.undo()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].endswith(": No space left on device"), lines
    assert Path(lines[0][len("error: "):].rsplit(": ", 1)[0]).parent.exists()   # the file meant, in its folder
    assert not [path for path in tmp_path.rglob("*.part")]
