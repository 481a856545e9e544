"""On-demand activation maximization: key 2 (and, with optimize_on_select, the cursor resting on a unit)
optimizes the selected unit's image in a background thread while the window and the compute thread go
on; the jpgvis pane shows the best image so far and a progress line.

A job runs app.offline.optimize on one unit and writes what tools.optimize_image writes for the same
preset, seed and steps (opt.png, opt_raw.png, opt.json and the layer's sprite_opt.png), so the app,
the atlas and the next run reuse it. Moving to another unit cancels the job and nothing is written
(docs/app.md says why).
"""
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from app.errors import DeepVisError
from app.offline import optimize
from app.offline.montage import write_sprite
from app.unit_images import find_unit_image, montage_path, sprite_path
from app.ui.workers import Heartbeat, Worker, guarded_call

SEED = 0            # tools.optimize_image's default seed: the app's image of a unit is the tool's
PICTURE_EVERY = 5   # steps between the pictures the pane shows while a job runs


@dataclass(frozen=True)
class Job:
    """One unit to optimize, how, and the unit image folder its files go to."""

    root: str
    layer: str
    unit: int
    preset: object                         # 1-5, "lucid" or "maco" (optimize.preset_named)
    steps: int
    sprite_tile: int

    @property
    def files(self) -> tuple:
        """The images a finished job writes again, which the app's image loader must read anew."""
        return montage_path(self.root, self.layer, self.unit, "opt"), sprite_path(self.root, self.layer, "opt")


def job_for(root, layer: str, unit: int, settings) -> Job:
    """The job of ``unit`` of ``layer`` with the settings' preset and step count."""
    preset, recipe = optimize.preset_named(settings.optimize_preset)
    steps = settings.optimize_app_steps or recipe.iterations
    return Job(str(root), layer, unit, preset, steps, settings.offline_sprite_tile)


@dataclass(frozen=True)
class Progress:
    """Where a job stands: replaced (never changed) as it goes, so the window redraws on a new one."""

    job: Job
    step: int = 0                          # steps done
    activation: Optional[float] = None     # the unit's best value so far
    picture: Optional[np.ndarray] = None   # the best image so far, contrast stretched as opt.png is
    outcome: str = ""                      # "" while it runs; "written", "cancelled", or the error line

    @property
    def running(self) -> bool:
        return not self.outcome

    @property
    def line(self) -> str:
        """The progress line under the picture."""
        if self.outcome == "written":
            return f"done: {self.job.steps} steps{self._value}"
        if self.outcome == "cancelled":
            return f"cancelled at step {self.step} / {self.job.steps}"
        return self.outcome or f"step {self.step} / {self.job.steps}{self._value}"

    @property
    def summary(self) -> str:
        """The status line's message once the job ended."""
        unit = f"{self.job.layer}:{self.job.unit}"
        if self.outcome == "written":
            return f"optimized {unit} ({self.job.steps} steps{self._value}) -> {self.job.files[0]}"
        return f"{unit}: {self.line}"

    @property
    def _value(self) -> str:
        return "" if self.activation is None else f", activation {self.activation:.3g}"


def run_job(net, job: Job, on_progress: Callable[[Progress], None] = lambda progress: None,
            keep_going: Callable[[], bool] = lambda: True) -> Progress:
    """Optimize the job's unit, reporting a Progress every PICTURE_EVERY steps, and write its files;
    stops without writing anything once ``keep_going()`` is False. Returns the final Progress."""
    progress = Progress(job)

    def on_step(step, glimpse) -> bool:
        nonlocal progress
        if not keep_going():
            return False
        if (step + 1) % PICTURE_EVERY == 0:
            (picture, value), = glimpse()
            progress = replace(progress, step=step + 1, activation=value, picture=picture)
            on_progress(progress)
        return True

    result, = optimize.optimize_group(net, job.layer, [job.unit], job.preset, SEED, job.steps, on_step=on_step)
    progress = replace(progress, activation=result.activation, picture=result.shown)
    if not keep_going():
        return replace(progress, outcome="cancelled")
    try:
        optimize.write_results(net, job.root, job.layer, [result], job.preset, SEED, job.steps)
        write_sprite(job.root, job.layer, "opt", net.layer(job.layer).shape[0], job.sprite_tile)
    except OSError as error:   # a read-only unit_jpg_dir, a full disk: the status line says so
        raise DeepVisError(f"{job.root}: cannot write the unit's image ({error.strerror or error}); "
                           "choose a writable unit_jpg_dir") from None
    return replace(progress, step=job.steps, outcome="written")


class OptimizeWorker(Worker):
    """Runs one Job at a time; a new job cancels the one running (it stops at its next step)."""

    def __init__(self, net, heartbeat: Optional[Heartbeat] = None):
        super().__init__("optimize", heartbeat)
        self._net = net
        self._lock = threading.Lock()
        self._pending: Optional[Job] = None
        self._cancel = threading.Event()
        self._progress: Optional[Progress] = None

    def start_job(self, job: Job) -> None:
        """Run ``job`` next, cancelling the one running or waiting."""
        with self._lock:
            self._pending = job
            self._cancel.set()
        self._wake.set()

    def cancel(self) -> None:
        """Cancel the job running or waiting (nothing of it is written)."""
        with self._lock:
            self._pending = None
            self._cancel.set()

    def progress(self) -> Optional[Progress]:
        """The newest Progress of the job running, else of the last one; None before any."""
        return self._progress

    @property
    def busy(self) -> Optional[Job]:
        """The job waiting or running (and not cancelled), or None."""
        with self._lock:
            if self._pending is not None or self._cancel.is_set():
                return self._pending
        progress = self._progress
        return progress.job if progress is not None and progress.running else None

    def _step(self) -> bool:
        with self._lock:
            job, self._pending = self._pending, None
            if job is None:
                return False
            self._cancel.clear()
            self._progress = Progress(job)
        final, error = guarded_call(lambda job: run_job(self._net, job, self._report, self._keep_going), job)
        self._progress = final if final is not None else replace(self._progress, outcome=error)
        return True

    def _report(self, progress: Progress) -> None:
        self._progress = progress

    def _keep_going(self) -> bool:
        alive = self._heartbeat is None or self._heartbeat.alive()
        return alive and not self._cancel.is_set() and not self._stopping.is_set()


class OnDemand:
    """The window's on-demand optimization: starts jobs (key 2, or the cursor resting with
    optimize_on_select), cancels one whose unit is no longer shown, and has the image loader read a
    finished job's files again (``forget(path)``)."""

    def __init__(self, worker: OptimizeWorker, settings, forget: Callable[[Path], None]):
        self.worker = worker
        self.on_select = settings.optimize_on_select
        self.rest_seconds = settings.optimize_select_seconds
        self._forget = forget
        self._resting, self._since, self._fired = None, 0.0, False
        self._reloaded = None

    def start(self, job: Optional[Job], why_not: str = "") -> str:
        """Key 2: optimize ``job``'s unit now; returns the status line's message."""
        if job is None:
            return f"2: {why_not}"
        if self.worker.busy == job:
            return f"2: already optimizing {job.layer}:{job.unit}"
        self.worker.start_job(job)
        return f"optimizing {job.layer}:{job.unit} ({job.steps} steps of preset {job.preset})"

    def follow(self, job: Optional[Job], now: float) -> str:
        """Called every loop iteration with the job of the unit shown now (None: none can be made).
        Returns a message for the status line when a job just ended, else ""."""
        busy = self.worker.busy
        if busy is not None and busy != job:
            self.worker.cancel()
        if job != self._resting:
            self._resting, self._since, self._fired = job, now, False
        elif self.on_select and job is not None and not self._fired and now - self._since >= self.rest_seconds:
            self._fired = True
            if busy != job and find_unit_image(job.root, job.layer, job.unit, "opt") is None:
                self.worker.start_job(job)
        progress = self.worker.progress()
        if progress is None or progress.running or progress is self._reloaded:
            return ""
        self._reloaded = progress
        if progress.outcome == "written":
            for path in progress.job.files:
                self._forget(path)
        return progress.summary

    def shown(self, job: Optional[Job]) -> Optional[Progress]:
        """The progress the jpgvis pane shows for ``job``'s unit (None: no job of that unit)."""
        progress = self.worker.progress()
        return progress if progress is not None and job is not None and progress.job == job else None
