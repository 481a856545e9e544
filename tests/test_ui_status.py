"""The status line never passes the window's edge: fields kept by priority, long ones cut in the middle;
it shows random weights, freeze and the siamese pair even beside a long message."""
import cv2
import numpy as np
import pytest

from app.inputs.source import Frame
from app.ui import draw as paint
from app.ui.app import App
from app.ui.panes import status
from app.ui.panes.status import Field, fit
from tests import ui_support

LONG_MESSAGE = "view saved: /home/someone/projects/deepvis/out/views/" + "very_long_folder_name/" * 6 + \
    "mnist-8_Convolution28_Output_0_unit0_20261203-140509.png"


def test_fit_keeps_fields_by_priority_in_their_order():
    fields = [Field("aaaa", 10), Field("bbbb", 50), Field("cccc", 30), Field("dddd", 40)]
    assert fit(fields, 100, len) == "aaaa | bbbb | cccc | dddd"
    assert fit(fields, 18, len) == "bbbb | cccc | dddd"          # the least important goes first
    assert fit(fields, 11, len) == "bbbb | dddd"


def test_fit_cuts_a_long_field_in_the_middle_keeping_its_end():
    fields = [Field("layer:3", 90), Field("saved: /a/very/long/path/to/the/file_name.png", 50, elide=True)]
    line = fit(fields, 40, len)
    assert len(line) <= 40 and line.startswith("layer:3 | saved") and line.endswith("file_name.png") and ".." in line
    assert fit(fields, 15, len) == "layer:3"                       # not even a few characters fit: left out


@pytest.fixture(scope="module")
def random_net(testdata):
    from app.net import Net

    net = Net.load(str(ui_support.MNIST), provider="cpu", input=ui_support.MNIST_INPUT)
    net.spec.random_weights_seed = 3
    return net


def busy_view(net, **settings):
    """A siamese pair with a label, frozen, with a long message: everything wants room."""
    app = App(net, ui_support.settings(**settings))
    app.message = LONG_MESSAGE
    image = ui_support.digit_image(96)
    frame = Frame((image, image), "left_image_of_the_pair_0042.png + right_image_of_the_pair_0042.png",
                  label="seven", index=41, count=100)
    return app, app.view(frame, None, 27.5, frozen=True)


@pytest.mark.parametrize("scale", [1.0, 0.6])
def test_a_long_message_leaves_the_file_pair_freeze_and_random_weights_on_screen(random_net, scale):
    app, view = busy_view(random_net, global_scale=scale)
    width = app.rects["status"].width - 16
    first, second = status.lines(view, width)
    for line in (first, second):
        assert paint.text_width(line, view.font) <= width, line
    assert first.startswith("RANDOM WEIGHTS (seed 3) | fwd ")
    assert "FROZEN" in second and "pair: first" in second and "(42/100)" in second
    assert "unit0_20261203-140509.png" in second or scale < 1   # the message's end, when it fits at all
    image = app.render(view)
    rect = app.rects["status"]
    pane = image[rect.top:rect.top + rect.height, rect.left:rect.left + rect.width]
    assert np.all(pane[:, -8:] == 20), "text reaches the window's right edge"


def test_without_a_width_the_lines_are_whole(random_net):
    _, view = busy_view(random_net)
    assert LONG_MESSAGE in status.lines(view)[1]


def test_f_on_a_video_shows_frozen(testdata, tmp_path):
    from app.inputs import open_source
    from app.ui.app import screenshot

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 96))
    for _ in range(5):
        writer.write(ui_support.digit_image(96))
    writer.release()
    settings = ui_support.settings()
    app = App(ui_support.mnist_net(), settings)
    rect = app.rects["status"]
    shots = {}
    for keys in ("", "f"):
        out = screenshot(ui_support.mnist_net(), settings, open_source(str(path), settings), tmp_path / f"{keys}.png", keys)
        shots[keys] = cv2.imread(str(out))[rect.top + 21:rect.top + rect.height]   # the second line (no fps)
    assert not np.array_equal(shots[""], shots["f"])   # it says FROZEN


def test_a_mode_that_starts_from_the_frozen_unit_names_where_it_starts(testdata, monkeypatch):
    """The origin field comes from the entry's own words (registry: Entry.origin), whatever its name."""
    from dataclasses import replace

    from app.views import registry

    net = ui_support.mnist_net()
    app = App(net, ui_support.settings())
    frame = Frame((ui_support.digit_image(96),), "seven.png")
    pretty, top = app.info.pretty_names, app.info.pretty_names[-1]
    app.state = replace(app.state, pattern="weight grads")
    assert f"weight grads of {top} strongest / second / weakest (d: one)" in status.lines(app.view(frame, None))[1]
    app.state = replace(app.state, frozen_origin=(2, 3))
    assert f"weight grads of {pretty[2]} unit 3" in status.lines(app.view(frame, None))[1]
    monkeypatch.setitem(registry._ENTRIES, ("layers", "filters"),
                        replace(registry.entry("layers", "filters"), origin="its own words"))
    app.state = replace(app.state, pattern="filters", frozen_origin=None)
    assert f"filters of {top} its own words" in status.lines(app.view(frame, None))[1]
    app.state = replace(app.state, pattern="weights histogram")
    assert " of " not in status.lines(app.view(frame, None))[1]
