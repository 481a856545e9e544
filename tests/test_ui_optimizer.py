"""On-demand optimization in the app: the worker writes the files tools.optimize_image writes, a new
unit cancels a run, and optimize_on_select starts one after the rest delay and not before."""
import time

import numpy as np
import pytest

from app.ui.optimizer import Job, OnDemand, OptimizeWorker, Progress, job_for, run_job
from app.ui.workers import UnitImageLoader
from app.unit_images import montage_path
from tools import optimize_image
from tests import ui_support
from views_nets import PLAIN_INPUT, small_cnn


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return small_cnn(tmp_path_factory.mktemp("on_demand"))


def settings(**overrides):
    return ui_support.settings(**{"optimize_app_steps": 12, "optimize_preset": 3, "offline_sprite_tile": 96,
                                  **overrides})


def files_of(root) -> dict:
    return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def wait_for(condition, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("preset", [3, "lucid"])
def test_the_worker_writes_the_files_optimize_image_writes(net, tmp_path, preset):
    tool_settings = tmp_path / "settings.py"
    tool_settings.write_text(f"model_input = {PLAIN_INPUT!r}\n")   # the net's own preprocessing
    optimize_image.main(["--model", str(net.path), "--settings", str(tool_settings), "--layer", "conv2", "--units",
                         "4", "--iters", "12", "--preset", str(preset), "--seed", "0", "--cpu", "--out",
                         str(tmp_path / "tool")])
    worker = OptimizeWorker(net).start()
    try:
        worker.start_job(job_for(tmp_path / "app", "conv2", 4, settings(optimize_preset=preset)))
        wait_for(lambda: worker.progress() is not None and not worker.progress().running)
    finally:
        worker.stop()
    assert worker.progress().outcome == "written"
    tool, app = files_of(tmp_path / "tool"), files_of(tmp_path / "app")
    extra = ["conv2/unit_0004/opt_transparency.png"] if preset == "lucid" else []
    expected = ["conv2/sprite_opt.png", "conv2/unit_0004/opt.json", "conv2/unit_0004/opt.png",
                "conv2/unit_0004/opt_raw.png"] + extra
    assert sorted(map(str, app)) == sorted(expected)
    assert app == tool


def test_progress_comes_every_few_steps_with_the_best_picture(net, tmp_path):
    seen = []
    final = run_job(net, job_for(tmp_path, "conv2", 1, settings()), seen.append)
    assert [progress.step for progress in seen] == [5, 10]
    assert all(progress.running and progress.picture.shape == (16, 16, 3) for progress in seen)
    assert seen[0].activation <= seen[1].activation <= final.activation
    picture = seen[1].picture.astype(float)
    assert np.percentile(picture, 99) - np.percentile(picture, 1) > 100      # stretched like opt.png
    assert final.outcome == "written" and "done: 12 steps, activation" in final.line
    assert final.summary.startswith("optimized conv2:1 (12 steps, activation") and "opt.png" in final.summary
    assert "step 5 / 12" in seen[0].line


def test_a_cancelled_job_writes_nothing(net, tmp_path):
    final = run_job(net, job_for(tmp_path, "conv2", 1, settings()), keep_going=lambda: False)
    assert final.outcome == "cancelled" and not any(tmp_path.iterdir())


def long_settings(**overrides):
    return settings(**{"optimize_app_steps": 100000, **overrides})


def test_moving_to_another_unit_cancels_the_run(net, tmp_path):
    worker = OptimizeWorker(net).start()
    on_demand = OnDemand(worker, long_settings(optimize_on_select=False, optimize_select_seconds=1.0),
                         lambda path: None)
    first, second = (job_for(tmp_path, "conv2", unit, long_settings()) for unit in (0, 1))
    try:
        assert "optimizing conv2:0" in on_demand.start(first)
        wait_for(lambda: worker.progress() is not None and worker.progress().step >= 5)
        assert on_demand.follow(first, 0.0) == "" and worker.busy == first
        assert "already optimizing conv2:0" in on_demand.start(first)       # 2 again: it goes on
        on_demand.follow(second, 0.1)                       # the cursor moved on
        wait_for(lambda: not worker.progress().running)
        assert worker.progress().outcome == "cancelled" and worker.busy is None
        assert "cancelled at step" in on_demand.follow(second, 0.2)
        assert on_demand.shown(second) is None and on_demand.shown(first) is not None
    finally:
        worker.stop()
    assert not (tmp_path / "conv2").exists()


class FakeWorker:
    """Records the jobs started; never runs them."""

    def __init__(self):
        self.started, self.busy = [], None

    def start_job(self, job):
        self.started.append(job)
        self.busy = job

    def cancel(self):
        self.busy = None

    def progress(self):
        return None


def test_optimize_on_select_starts_after_the_rest_delay_and_not_before(tmp_path):
    worker = FakeWorker()
    on_demand = OnDemand(worker, settings(optimize_on_select=True, optimize_select_seconds=1.0), lambda path: None)
    first, second = Job(str(tmp_path), "conv2", 0, 3, 12, 96), Job(str(tmp_path), "conv2", 1, 3, 12, 96)
    on_demand.follow(first, 10.0)
    on_demand.follow(first, 10.9)
    on_demand.follow(second, 10.95)                          # moved on before the delay
    on_demand.follow(second, 11.9)
    assert worker.started == []
    on_demand.follow(second, 12.0)
    assert worker.started == [second]
    on_demand.follow(second, 15.0)                           # once per rest
    assert worker.started == [second]
    montage_path(tmp_path, "conv2", 0, "opt").parent.mkdir(parents=True)
    montage_path(tmp_path, "conv2", 0, "opt").write_bytes(b"")
    on_demand.follow(first, 16.0)
    on_demand.follow(first, 18.0)                            # it has an image already: left alone
    assert worker.started == [second] and worker.busy is None


def test_optimize_on_select_is_off_by_default(tmp_path):
    worker = FakeWorker()
    assert ui_support.settings().optimize_on_select is False
    on_demand = OnDemand(worker, ui_support.settings(), lambda path: None)
    job = Job(str(tmp_path), "conv2", 0, 3, 12, 96)
    for now in (0.0, 5.0, 50.0):
        on_demand.follow(job, now)
    assert worker.started == []


def test_a_written_job_has_the_loader_read_its_files_again(tmp_path):
    job = Job(str(tmp_path), "conv2", 3, 3, 12, 96)
    path = montage_path(tmp_path, "conv2", 3, "opt")
    path.parent.mkdir(parents=True)
    loader = UnitImageLoader(10 ** 6, load=lambda key: np.zeros((2, 2, 3), np.uint8))
    loader.get(path)
    loader._step()
    assert loader.get(path) is not None

    done = Progress(job, 12, 1.0, None, "written")

    class Done(FakeWorker):
        def progress(self):
            return done

    on_demand = OnDemand(Done(), settings(), loader.forget)
    assert str(path) in on_demand.follow(job, 0.0)
    assert loader.get(path) is None and loader.cached_bytes == 0     # loaded anew on the next get
    assert on_demand.follow(job, 1.0) == ""                          # once
