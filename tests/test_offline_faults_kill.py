"""The offline jobs killed by SIGKILL at chosen moments (inside a whole-file write, with its temporary
file written, or just after one), restarted with the same command each time, end with the same files,
byte for byte, as a run never interrupted. One run is killed five times in a row, then finishes."""
import shutil

import pytest

from tests.kill_support import assert_same_files, files_of, kill_at, run_tool
from tests.test_find_maxes import tiny_net_file, write_images

# (write number, inside it): counted from each restart, so a later kill lands further on
MOMENTS = [(1, True), (2, False), (3, True), (2, True), (4, False)]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A tiny random conv net, 24 small images, find_maxes's files of them (uninterrupted)."""
    folder = tmp_path_factory.mktemp("offline_kill")
    model = tiny_net_file(folder)
    write_images(folder / "images", 24)
    whole = folder / "whole"
    done = run_tool("find_maxes", find_maxes_arguments(model, folder / "images", whole))
    assert done.returncode == 0, done.stderr[-2000:]
    return {"folder": folder, "model": model, "maxes": whole / "maxes.json", "whole": whole}


def find_maxes_arguments(model, images, out):
    return ["--images", images, "--model", model, "--batch", "2", "--checkpoint-every", "2", "--min", "--top", "3",
            "--cpu", "--quiet", "--out", out]


def killed_and_restarted(tool: str, arguments: list) -> list:
    """Kills the tool at every moment of MOMENTS (restarting it each time), then runs it to its end;
    returns the files it was writing when killed."""
    cut = []
    for write, inside in MOMENTS:
        cut.append(kill_at(tool, arguments, write, inside))
    done = run_tool(tool, arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    return cut


def test_find_maxes_killed_five_times_ends_as_one_run(job, tmp_path):
    out = tmp_path / "killed"
    cut = killed_and_restarted("find_maxes", find_maxes_arguments(job["model"], job["folder"] / "images", out))
    assert any(path.endswith("find_maxes.state.npz") for path in cut)   # killed inside a checkpoint write
    assert sum(bool(path) for path in cut) == len(MOMENTS)
    assert_same_files(job["whole"], out)


def copy_of_find_maxes(job, folder):
    """find_maxes's files (maxes.json and chunks, with their times: layer_stats records them) in a
    fresh folder, as layer_stats writes beside them."""
    shutil.copytree(job["whole"], folder)
    return folder / "maxes.json"


def test_layer_stats_killed_five_times_ends_as_one_run(job, tmp_path):
    whole, killed = copy_of_find_maxes(job, tmp_path / "whole"), copy_of_find_maxes(job, tmp_path / "killed")
    done = run_tool("layer_stats", ["--maxes", whole, "--layers", "relu2,fc", "--quiet"])
    assert done.returncode == 0, done.stderr[-2000:]
    cut = killed_and_restarted("layer_stats", ["--maxes", killed, "--layers", "relu2,fc", "--quiet"])
    assert any(path.endswith("stats.npz") for path in cut) and all(cut)
    assert_same_files(tmp_path / "whole", tmp_path / "killed")


def test_crop_max_patches_killed_five_times_ends_as_one_run(job, tmp_path):
    arguments = ["--maxes", job["maxes"], "--layers", "relu2,fc", "--units", "0-2", "--modes", "maxim,deconv",
                 "--batch", "2", "--cpu"]
    done = run_tool("crop_max_patches", arguments + ["--out", tmp_path / "whole"])
    assert done.returncode == 0, done.stderr[-2000:]
    cut = killed_and_restarted("crop_max_patches", arguments + ["--out", tmp_path / "killed"])
    assert all(cut)
    assert_same_files(tmp_path / "whole", tmp_path / "killed")


def test_optimize_image_killed_five_times_ends_as_one_run(job, tmp_path):
    arguments = ["--model", job["model"], "--layer", "relu2", "--units", "0-5", "--preset", "3", "--iters", "4",
                 "--batch", "2", "--cpu"]
    done = run_tool("optimize_image", arguments + ["--out", tmp_path / "whole"])
    assert done.returncode == 0, done.stderr[-2000:]
    cut = killed_and_restarted("optimize_image", arguments + ["--out", tmp_path / "killed"])
    assert any(path.endswith("opt.json") for path in cut) and all(cut)
    assert_same_files(tmp_path / "whole", tmp_path / "killed")
