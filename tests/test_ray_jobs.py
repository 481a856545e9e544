"""The offline jobs on Ray (--ray) write the very same files as in one process: find_maxes (maxes.json
and the chunks of channel maxima, an unreadable image skipped and counted alike, a folder given as a
URI), after its driver was SIGKILLed half-way and restarted, and with an actor killed mid-run;
layer_stats, crop_max_patches and optimize_image, also after their driver was SIGKILLed once its
first layer or unit group was written and then restarted. Without --ray, Ray is not imported.
One Ray instance (2 CPUs) for the module; every test has a time bound."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from app.errors import DeepVisError
from app.files import read_npz
from app.net import Net, providers
from app.offline import layer_stats, maxes as find
from tests import kill_support
from tests.kill_support import assert_same_files, files_of, kill_after, kill_at
from tests.ray_support import ReportingPool, failing_job, random_net_file, sample_images, time_bound

ray = pytest.importorskip("ray")
from app.offline.on_ray import Pool, Resources, actor_resources  # noqa: E402  (needs ray)

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = dict(top=3, minima=True, batch=2, checkpoint_every=2)


@pytest.fixture(scope="module")
def cluster():
    with time_bound(60):
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(cluster):
    return Pool(actors=2, provider="cpu")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The net, the sample images and find_maxes's files of them in one process."""
    folder = tmp_path_factory.mktemp("ray_jobs")
    model = random_net_file()
    net = Net.load(str(model), provider="cpu")
    paths = sample_images(folder / "images")
    layers = find.choose_layers(net)
    find.FindMaxes(net, paths, layers, folder / "here", model=str(model), **OPTIONS).run(progress=False)
    return {"folder": folder, "model": model, "net": net, "paths": paths, "layers": layers}


def test_find_maxes_and_layer_stats_on_ray_write_the_same_files(setup, pool, tmp_path):
    net, paths, here = setup["net"], setup["paths"], setup["folder"] / "here"
    with time_bound(90):
        summary = find.FindMaxes(net, paths, setup["layers"], tmp_path / "ray", model=str(setup["model"]),
                                 **OPTIONS).run(progress=False, pool=pool)
    assert summary["skipped"] == [str(Path(paths[0]).parent / "broken.png")] and summary["skipped_count"] == 1
    assert summary["stats"]["images"] == len(paths) - 1 and len(summary["stats"]["chunks"]) > 2
    assert_same_files(here, tmp_path / "ray")

    here = Path(shutil.copytree(here, tmp_path / "here"))   # the module's own run stays as find_maxes wrote it
    with time_bound(90):
        alone = layer_stats.layer_stats(here / "maxes.json", "relu1,ip1", bins=10, progress=False)
        spread = layer_stats.layer_stats(tmp_path / "ray" / "maxes.json", "relu1,ip1", bins=10, progress=False,
                                         pool=pool)
    for layer in alone:   # stats.npz also records its chunks' times, which differ between the folders
        for name, value in alone[layer].arrays().items():
            np.testing.assert_array_equal(value, spread[layer].arrays()[name], err_msg=f"{layer} {name}")
        for picture in ("histograms.png", "inactivity.png", "correlation.png"):
            first, second = (layer_stats.layer_folder(out, layer) / picture for out in (here, tmp_path / "ray"))
            assert first.read_bytes() == second.read_bytes(), picture


def test_a_folder_uri_is_listed_and_read_through_pyarrow(setup, pool, tmp_path):
    uri = Path(setup["paths"][0]).parent.as_uri()
    paths, _ = find.list_images(uri)
    assert paths == [Path(path).as_uri() for path in setup["paths"]]
    with time_bound(90):
        find.FindMaxes(setup["net"], paths, setup["layers"], tmp_path / "uri", model=str(setup["model"]),
                       **OPTIONS).run(progress=False, pool=pool)
    here = json.loads((setup["folder"] / "here" / "maxes.json").read_text())
    remote = json.loads((tmp_path / "uri" / "maxes.json").read_text())
    assert remote["layers"] == here["layers"] and remote["layers_min"] == here["layers_min"]
    assert remote["skipped"] == [uri + "/broken.png"] and remote["images"] == paths
    with pytest.raises(DeepVisError, match="no such folder"):
        find.list_images(uri + "/nothing")


def test_an_actor_killed_mid_run_is_restarted_and_its_shard_done_again(setup, pool, tmp_path):
    from ray.util.queue import Queue

    reports = Queue(actor_options={"num_cpus": 0})
    killed = []

    def kill_one():   # the first actor to start a shard is killed while it works on it
        handle = reports.get(timeout=60)
        ray.kill(handle, no_restart=False)
        killed.append(handle)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    with time_bound(120):
        find.FindMaxes(setup["net"], setup["paths"], setup["layers"], tmp_path / "killed", model=str(setup["model"]),
                       **OPTIONS).run(progress=False, pool=ReportingPool(pool, reports, pause=0.5))
    killer.join(timeout=5)
    assert killed, "no actor was killed"
    assert_same_files(setup["folder"] / "here", tmp_path / "killed")


def find_maxes_tool(images, model, out, *extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "tools.find_maxes", "--images", str(images), "--model", str(model), "--top", "3",
               "--min", "--batch", "1", "--checkpoint-every", "1", "--cpu", "--quiet", "--out", str(out), *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def shards_done(out: Path) -> int:
    try:
        return len(json.loads(str(read_npz(out / find.STATE_FILE)["state"]))["done"])
    except (OSError, ValueError, KeyError):
        return 0


def test_driver_killed_half_way_and_restarted_ends_with_the_same_files(setup, cluster, tmp_path):
    listing = tmp_path / "list.txt"   # the sample images twice over: one shard each
    listing.write_text("".join(f"{path}\n" for path in setup["paths"] * 2))
    total = 2 * len(setup["paths"])
    with time_bound(150):
        paths, labels = find.list_images(listing)
        find.FindMaxes(setup["net"], paths, setup["layers"], tmp_path / "whole", model=str(setup["model"]),
                       top=3, minima=True, batch=1, checkpoint_every=1).run(progress=False)

        killed = find_maxes_tool(listing, setup["model"], tmp_path / "killed", "--ray", cluster)
        while shards_done(tmp_path / "killed") < total // 3 and killed.poll() is None:
            threading.Event().wait(0.002)
        os.kill(killed.pid, signal.SIGKILL)
        assert killed.wait() == -signal.SIGKILL
        assert total // 3 <= shards_done(tmp_path / "killed") < total
        assert not (tmp_path / "killed" / find.MAXES_FILE).exists()

        resumed = find_maxes_tool(listing, setup["model"], tmp_path / "killed", "--ray", cluster)
        assert resumed.wait() == 1, resumed.stderr.read().decode()[-2000:]   # broken.png, twice
    assert_same_files(tmp_path / "whole", tmp_path / "killed")


def test_driver_killed_inside_its_checkpoint_writes_ends_with_the_same_files(setup, cluster, tmp_path):
    arguments = ["--images", Path(setup["paths"][0]).parent, "--model", setup["model"], "--top", "3", "--min",
                 "--batch", "2", "--checkpoint-every", "2", "--cpu", "--quiet", "--out", tmp_path / "killed",
                 "--ray", cluster]   # OPTIONS: the module's own run is the uninterrupted one
    with time_bound(150):
        # a shard's writes: its chunk, then the checkpoint; the first shard's, then (restarted) the second's
        for write in (2, 4):
            assert kill_at("find_maxes", arguments, write, inside=True).endswith(find.STATE_FILE)
        done = kill_support.run_tool("find_maxes", arguments)
    assert done.returncode == 1, done.stderr[-2000:]   # broken.png
    assert_same_files(setup["folder"] / "here", tmp_path / "killed")


def run_tool(module: str, arguments: list) -> None:
    __import__(f"tools.{module}", fromlist=["main"]).main([str(argument) for argument in arguments])


def test_crop_max_patches_and_optimize_image_on_ray_write_the_same_files(setup, pool, tmp_path, capsys):
    maxes, model = setup["folder"] / "here" / "maxes.json", setup["model"]
    crops = ["--maxes", maxes, "--layers", "relu1,ip1", "--units", "0-5", "--batch", "4", "--cpu"]
    optimize = ["--layer", "relu2", "--units", "0-4", "--preset", "3", "--iters", "4", "--batch", "2",
                "--model", model, "--cpu"]
    with time_bound(150):
        run_tool("crop_max_patches", crops + ["--out", tmp_path / "crops_here"])
        run_tool("crop_max_patches", crops + ["--ray", "--out", tmp_path / "crops_ray"])
        run_tool("optimize_image", optimize + ["--out", tmp_path / "opt_here"])
        run_tool("optimize_image", optimize + ["--ray", "--out", tmp_path / "opt_ray"])
    assert "cropped 6 units" in capsys.readouterr().out
    assert len(files_of(tmp_path / "crops_ray")) > 6 * 9
    assert_same_files(tmp_path / "crops_here", tmp_path / "crops_ray")
    assert len(files_of(tmp_path / "opt_ray")) == 5 * 3 + 1
    assert_same_files(tmp_path / "opt_here", tmp_path / "opt_ray")


@pytest.mark.parametrize("tool, ending, arguments", [
    ("crop_max_patches", "info.json", ["--layers", "relu1,ip1", "--units", "0-3", "--batch", "2"]),
    ("optimize_image", "opt.json", ["--layer", "relu2", "--units", "0-3", "--preset", "3", "--iters", "2",
                                    "--batch", "2"]),
    ("layer_stats", "stats.npz", ["--layers", "relu1,ip1", "--quiet"]),
])
def test_a_driver_killed_after_its_first_group_and_restarted_ends_with_the_same_files(setup, cluster, tmp_path,
                                                                                       tool, ending, arguments):
    """One kill each, just after the first unit group's or layer's last file was written."""
    here, killed = tmp_path / "here", tmp_path / "killed"
    if tool == "layer_stats":   # writes beside maxes.json: two copies of find_maxes's files (times kept)
        for out in (here, killed):
            shutil.copytree(setup["folder"] / "here", out)
        alone = ["--maxes", here / "maxes.json"] + arguments
        spread = ["--maxes", killed / "maxes.json", "--ray", cluster] + arguments
    else:
        source = ["--maxes", setup["folder"] / "here" / "maxes.json"] if tool == "crop_max_patches" else \
            ["--model", setup["model"]]
        alone = source + arguments + ["--cpu", "--out", here]
        spread = source + arguments + ["--cpu", "--ray", cluster, "--out", killed]
    with time_bound(120):
        run_tool(tool, alone)
        assert kill_after(tool, spread, ending).endswith(ending)
        done = kill_support.run_tool(tool, spread)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(files_of(killed)) > 4
    assert_same_files(here, killed)


def test_a_workers_error_reaches_the_driver_as_its_one_line(pool):
    with time_bound(60), pytest.raises(DeepVisError, match=r"^shard 7: cannot decode$"):
        list(pool.map(failing_job, {"message": "cannot decode"}, ["shard 7"]))


def test_the_tools_do_not_import_ray_without_the_option(setup, tmp_path):
    script = ("import sys\n"
              "from tools import find_maxes, layer_stats, crop_max_patches, optimize_image\n"
              "try:\n"
              f"    find_maxes.main(['--images', {str(Path(setup['paths'][0]).parent)!r}, '--model', "
              f"{str(setup['model'])!r}, '--layers', 'ip1', '--quiet', '--cpu', '--out', {str(tmp_path)!r}])\n"
              "except SystemExit as stop:\n"
              "    assert stop.code == 1, stop.code   # broken.png\n"
              "else:\n"
              "    raise AssertionError('exit status 0 with broken.png among the images')\n"
              f"layer_stats.main(['--maxes', {str(tmp_path / 'maxes.json')!r}, '--quiet'])\n"
              f"crop_max_patches.main(['--maxes', {str(tmp_path / 'maxes.json')!r}, '--units', '0', '--cpu', "
              f"'--out', {str(tmp_path / 'units')!r}])\n"
              f"optimize_image.main(['--layer', 'ip1', '--units', '0', '--preset', '3', '--iters', '1', '--model', "
              f"{str(setup['model'])!r}, '--cpu', '--out', {str(tmp_path / 'units')!r}])\n"
              "assert 'ray' not in sys.modules, 'ray was imported'\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 unreadable skipped" in done.stdout and "ip1: optimized 1 units" in done.stdout


def test_the_pool_takes_gpus_when_cuda_works_else_a_share_of_each_node():
    gpu_here = dict(available=[providers.CUDA, providers.CPU], device_count=2)
    assert actor_resources({"CPU": 2.0}, [2.0]) == Resources(1, 1.5, 0.0, "cpu")
    assert actor_resources({"CPU": 2.0}, [2.0], actors=2) == Resources(2, 0.75, 0.0, "cpu")
    assert actor_resources({"CPU": 2.0}, [1.0, 1.0]) == Resources(2, 0.75, 0.0, "cpu")   # one on each node
    assert actor_resources({"CPU": 48.0}, [16.0, 32.0]) == Resources(2, 12.0, 0.0, "cpu")
    assert actor_resources({"CPU": 16.0, "GPU": 2.0}, [16.0], "auto", **gpu_here) == Resources(2, 1.0, 1.0, "cuda")
    assert actor_resources({"CPU": 16.0, "GPU": 2.0}, [16.0], "auto", actors=4, **gpu_here) == \
        Resources(4, 1.0, 0.5, "cuda")
    assert actor_resources({"CPU": 16.0, "GPU": 2.0}, [16.0], "cpu", **gpu_here).provider == "cpu"
    no_driver = dict(available=[providers.CUDA, providers.CPU], device_count=0)
    assert actor_resources({"CPU": 16.0, "GPU": 2.0}, [16.0], "auto", **no_driver) == Resources(1, 12.0, 0.0, "cpu")
    assert actor_resources({"CPU": 4.0, "GPU": 1.0}, [4.0], "auto", available=[providers.CPU]).provider == "cpu"
    with pytest.raises(DeepVisError, match="--actors -1"):
        actor_resources({"CPU": 2.0}, [2.0], actors=-1)
