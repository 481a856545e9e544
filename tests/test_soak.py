"""Soak: the app's compute loop (compute() and the panes drawn from its snapshot) over 2000 frames,
switching layers, units, backprop modes and views, pattern modes, boosts and colormaps at random,
keeps its memory within 10 % of its level after warm-up, in at most 3 minutes."""
import random
import time

import numpy as np

from app.inputs import Frame
from app.ui.app import App
from app.ui.compute import compute, request_for
from app.ui.state import BACKPROP_MODES
from tests import ui_support

FRAMES, WARM_UP = 2000, 300
SECONDS = 180
# every action that changes what is computed or drawn, but none that starts slow work (occlusion,
# optimizing, exporting, saving) or needs a typed entry
ACTIONS = ("next_layer", "previous_layer", "left", "right", "up", "down", "fast_right", "fast_down",
           "next_backprop_mode", "previous_backprop_mode", "next_backprop_view", "toggle_diffs",
           "next_pattern", "previous_pattern", "next_weights_view", "next_channel_order", "next_colormap",
           "next_gamma_boost", "next_indiv_boost", "toggle_score_overlay", "next_input_overlay",
           "cycle_zoom", "freeze_backprop", "toggle_labels", "class_layer", "toggle_fit", "reset")


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_two_thousand_frames_of_random_switching_keep_memory_flat(testdata):
    net = ui_support.mnist_net()
    app = App(net, ui_support.settings(model_input=ui_support.MNIST_INPUT))
    images = [ui_support.digit_image(size) for size in (64, 96, 128)]
    chooser = random.Random(20)
    started, levels, baseline, snapshot, visited = time.monotonic(), [], None, None, set()
    for index in range(FRAMES):
        for _ in range(chooser.randint(0, 2)):
            app.act(chooser.choice(ACTIONS), snapshot)
        # a new frame object every time, as a camera gives
        frame = Frame((np.roll(images[index % 3], index % 7, axis=1),), "camera 0", index=index, count=0)
        snapshot = compute(net, request_for(app.state, frame), settings=app.settings)
        app.render(app.view(frame, snapshot, 30.0))
        visited.add((app.state.layer, app.state.backprop_mode, app.state.pattern))
        if index == WARM_UP:
            baseline = _resident_bytes()
        elif index > WARM_UP and index % 50 == 0:
            levels.append(_resident_bytes())
        assert time.monotonic() - started < SECONDS, f"{index} frames in {SECONDS} s"
    assert len({layer for layer, _, _ in visited}) == len(net.layers)
    assert {mode for _, mode, _ in visited} == set(BACKPROP_MODES)
    assert len({pattern for _, _, pattern in visited}) > 3
    growth = max(levels) / baseline - 1
    print(f"\nsoak: {FRAMES} frames in {time.monotonic() - started:.0f} s; resident {baseline / 2 ** 20:.0f} MiB "
          f"after warm-up, at most {max(levels) / 2 ** 20:.0f} MiB after ({growth:+.1%})")
    assert growth < 0.10
