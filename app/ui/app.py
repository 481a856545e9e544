"""The app: keys and mouse -> state -> compute request -> panes -> the window (or a PNG).

The main thread owns the window, the keys and all drawing; the input, compute and unit-image
threads (app/ui/workers.py) feed it and never wait on it. ``screenshot`` renders the same window
synchronously, without opening one (servers, documentation, tests).
"""
import os
import sys
import time
import types
import webbrowser
from pathlib import Path

import cv2
import numpy as np

from app.atlas.site import site_folder, unit_page
from app.errors import DeepVisError
from app.paths import user_path
from app.net import onnx_graph
from app.net.preprocess import read_image
from app.ui import draw as paint, keys, optimizer, panes, save_view, volume
from app.ui.compute import compute, request_for
from app.ui.panes.jpgvis import source_layer
from app.ui.panes.layers import layout, map_shape
from app.ui.state import BACKPROP_MODES, INPUT_ACTIONS, AppState, LayerInfo, next_state

REDRAW_SECONDS = 0.5   # redraw at least this often (the fps figure moves)
LAYERS_PANE = panes.Rect(0, 0, 870, 900)   # where the cursor keys' tiles lie when window_panes has no layers pane


def net_info(net, settings) -> panes.NetInfo:
    """The facts about ``net`` the panes show."""
    names = tuple(layer.name for layer in net.layers)
    width, height = net.spec.input.image_size()
    return panes.NetInfo(
        model_name=net.spec.name, names=names,
        pretty_names=tuple(settings.layer_pretty_name(name) for name in names),
        shapes=tuple(tuple(layer.shape) for layer in net.layers),
        receptive_fields=receptive_field_sizes(net),
        labels=tuple(net.labels) if net.labels else None, input_size=(height, width),
        activations=onnx_graph.in_place_activations(net.model, names),
        class_layers=tuple(dict.fromkeys(name for name in (net.logits_layer(), net.prob_layer()) if name in names)),
        random_weights_seed=net.spec.random_weights_seed)


def receptive_field_sizes(net) -> dict:
    """layer -> receptive field size in pixels; {} (shown as "?") when it cannot be worked out."""
    try:
        from app.net.receptive_field import receptive_fields
    except ImportError:
        return {}
    try:
        fields = receptive_fields(net)
    except DeepVisError:
        return {}
    sizes = {}
    for name, field in fields.items():
        size = getattr(field, "size", None)
        sizes[name] = "x".join(str(v) for v in size) if isinstance(size, (tuple, list)) else size
    return sizes


def resolved_settings(settings, net) -> types.SimpleNamespace:
    """A copy of ``settings`` with unit_jpg_dir and dataset_stats_dir filled in for ``net``."""
    values = dict(vars(settings))
    if values.get("unit_jpg_dir") is None:
        from app.paths import cache_dir

        values["unit_jpg_dir"] = str(cache_dir() / "unit_images" / net.spec.name)
    if values.get("dataset_stats_dir") is None:
        values["dataset_stats_dir"] = values["unit_jpg_dir"]
    values["atlas_dir"] = str(site_folder(values.get("atlas_dir"), net.spec.name))
    return types.SimpleNamespace(**values)


class App:
    """The state, layout and net facts of one window; drawing and key handling without threads."""

    def __init__(self, net, settings):
        self.net = net
        self.settings = resolved_settings(settings, net)
        self.info = net_info(net, self.settings)
        self.rects = panes.layout(self.settings.window_panes, self.settings.global_scale)
        self.state = self.initial_state()
        self.message = ""

    def initial_state(self) -> AppState:
        layers = []
        for name, shape in zip(self.info.names, self.info.shapes):
            count, tile_h, tile_w = map_shape(shape)
            layers.append(LayerInfo(name, count, (tile_h, tile_w)))
        s = self.settings
        if s.backprop_mode not in BACKPROP_MODES:
            raise DeepVisError(f"settings: backprop_mode {s.backprop_mode!r}: choose from {', '.join(BACKPROP_MODES)}")
        return AppState(layers=tuple(layers), indiv_boosts=tuple(s.boost_indiv_choices),
                        gamma_boosts=tuple(s.boost_gamma_choices), backprop_mode=s.backprop_mode,
                        backprop_view=s.backprop_view, colormap=s.colormap, fit_mode=s.input_fit_mode,
                        dataset_stats=str(s.dataset_stats_dir), labels=self.info.labels or (),
                        class_layers=tuple(self.info.names.index(name) for name in self.info.class_layers))

    def view(self, frame, snapshot, fps: float = 0.0, unit_image=None, volume_image=None,
             frozen: bool = False, optimizing=None) -> panes.View:
        message = self.message or (frame.message if frame is not None else "")
        if frame is not None and frame.waiting:   # no image (a camera not found): no older results either
            snapshot = None
        return panes.View(self.state, self.info, self.settings, frame, snapshot,
                          request_for(self.state, frame) if frame is not None and not frame.waiting else None,
                          unit_image or read_unit_image, fps, message, volume_image, frozen, optimizing)

    def optimize_job(self):
        """(the on-demand optimization of the selected unit, "") or (None, why there is none): the
        unit of the layer whose images the jpgvis pane shows for the selected one (jpgvis_remap, or a
        conv's ReLU), so the result lands beside that layer's max images."""
        state, layer = self.state, source_layer(self.view(None, None))
        if layer is None:
            return None, f"no per-unit images for {self.info.names[state.layer]} (jpgvis_layers)"
        shape = self.info.shapes[self.info.names.index(layer)]
        if len(shape) not in (1, 3) or state.unit >= shape[0]:
            return None, f"{layer}: shape {'x'.join(map(str, shape))}: only maps and vectors are optimized"
        return optimizer.job_for(self.settings.unit_jpg_dir, layer, state.unit, self.settings), ""

    def act(self, action, snapshot) -> None:
        """Carry out a state ``action``; the cursor keys step over the layers pane's tiles as it
        draws them from ``snapshot``."""
        rect = self.rects.get("layers", LAYERS_PANE)
        self.state = next_state(self.state, action, layout(self.state, snapshot, rect.height, rect.width).tiling)

    def volume_job(self, snapshot, seconds: float):
        """The 3-D view's picture to render ``seconds`` after start, or None when it is not shown."""
        rect = self.rects.get("aux")
        if not self.state.volume_view or snapshot is None or rect is None:
            return None
        activation = snapshot.activations.get(self.info.names[self.state.layer])
        if activation is None:
            return None
        return volume.job_for(activation, self.settings, seconds, min(rect.height, rect.width))

    def export_volume(self, snapshot) -> None:
        """Key 4: write the selected layer's activation as a volume; the paths go to the status line."""
        name = self.info.names[self.state.layer]
        activation = snapshot.activations.get(name) if snapshot is not None else None
        self.message = volume.export(activation, name, self.settings)

    def save_view(self, image) -> None:
        """Key W: write ``image`` (the window as shown) to save_view_dir; the path goes to the status line."""
        self.message = save_view.save(image, self.settings.save_view_dir, self.info.model_name,
                                      self.info.names[self.state.layer], self.state.unit)

    def atlas_page(self) -> tuple:
        """(the selected unit's atlas page, relative to settings' atlas_dir, "") or (None, why): the
        page of its layer, else of the layer whose images the jpgvis pane shows for it."""
        name = self.info.names[self.state.layer]
        layers = [name, source_layer(self.view(None, None)) or name]
        return unit_page(self.settings.atlas_dir, self.info.model_name, layers, self.state.unit)

    def open_atlas(self, browser=webbrowser) -> None:
        """Key A: the selected unit's atlas page: its file:// URL in the status line, opened by
        ``browser`` where a display and a browser exist."""
        page, why = self.atlas_page()
        if page is None:
            self.message = f"atlas: {why}"
            return
        url = f"{user_path(self.settings.atlas_dir).resolve().as_uri()}/{page}"
        self.message = f"atlas: {url}"
        if _display() and browser.open(url):
            self.message = f"atlas: opened {url}"

    def render(self, view: panes.View) -> np.ndarray:
        return panes.compose(view, self.rects)

    def click(self, view: panes.View, y: int, x: int):
        """The action of a click at window pixel (y, x), or None."""
        return panes.hit(view, self.rects, y, x)


def _display() -> bool:
    """Whether a browser could show a page here: a desktop session (macOS, Windows) or an X / Wayland display."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def read_unit_image(path):
    """Synchronous per-unit image reading (headless mode): the image, or a picture of why it cannot be read."""
    try:
        return read_image(path, Path(path).name)
    except DeepVisError as error:
        return unreadable_picture(str(error))


def unreadable_picture(reason: str) -> np.ndarray:
    """What a per-unit image that cannot be read (damaged, truncated, deleted) shows in its place."""
    return paint.message(160, 240, [reason], 0.45)


def screenshot(net, settings, source, out, key_text: str = "") -> Path:
    """Render the whole window for ``source``'s first frame after the --keys sequence; write a PNG."""
    app = App(net, settings)
    frame = _first_frame(source)
    actions = []
    for action in keys.key_actions(key_text, lambda: app.state.class_entry is not None):
        actions.append(action)
        if action in INPUT_ACTIONS:
            frame = _input_action(source, action) or frame
        elif action == "optimize_unit":   # no window to go on drawing: run it to the end here
            app.message = optimize_now(net, *app.optimize_job())
        elif action == "open_atlas":
            app.open_atlas()
        else:
            app.act(action, None)   # the keys come before the first computation
    frozen = source.frozen
    source.close()
    snapshot = None if frame.waiting else compute(net, request_for(app.state, frame), settings=app.settings)
    if "export_volume" in actions:
        app.export_volume(snapshot)
    seconds = sum(snapshot.seconds.values()) if snapshot is not None else 0.0
    job = app.volume_job(snapshot, 0.0)
    image = app.render(app.view(frame, snapshot, 1.0 / seconds if seconds else 0.0,
                                volume_image=volume.render(job) if job is not None else None, frozen=frozen))
    if "save_view" in actions:
        app.save_view(image)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), image):
        raise DeepVisError(f"{out}: cannot write the screenshot (is the extension .png?)")
    return out


def optimize_now(net, job, why_not: str = "") -> str:
    """Key 2 without a window: optimize and write the unit's image; returns the status line's message."""
    if job is None:
        return f"2: {why_not}"
    return optimizer.run_job(net, job).summary


def _first_frame(source, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = source.read()
        if frame is not None:
            return frame
        time.sleep(0.01)
    raise DeepVisError(f"{source.description}: no frame within {timeout:g} s")


def _input_action(source, action):
    """Carry out an input action on ``source`` directly (headless); returns the new frame or None."""
    if action == "next_image":
        source.next()
    elif action == "previous_image":
        source.previous()
    elif action == "freeze_camera":
        source.toggle_freeze()
    return source.read()
