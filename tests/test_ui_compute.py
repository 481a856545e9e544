"""The compute step: snapshots, a clear message when backprop fails or gives all zeros, staleness."""
from types import SimpleNamespace

import numpy as np
import pytest

from app.errors import DeepVisError
from app.inputs import Frame
from app.net.autodiff import Backward
from app.net.preprocess import InputSpec
from app.net.run import Run
from app.ui.compute import Backprop, Computer, Request, compute, request_for
from app.ui.state import AppState, LayerInfo
from app.views.backprop import to_image_layout


class FakeNet:
    """Just enough of a Net: one 2-unit layer; its runs' backward gives ``diff`` or raises ``error``."""

    def __init__(self, diff=None, error=None):
        self.spec = SimpleNamespace(input=InputSpec(size=(4, 4)), name="fake")
        self.input_name, self.layers = "data", [SimpleNamespace(name="out")]
        self.labels = ["cat", "dog"]
        self.diff, self.error = diff, error
        self.forwards = 0

    def forward(self, images, outputs=None):
        self.forwards += 1
        return FakeRun(self, np.zeros((len(images), 3, 4, 4), np.float32), {"out": np.array([[0.2, 0.8]])})

    def prob_layer(self):
        return "out"


class FakeRun(Run):
    def backward(self, layer, unit, **options):
        if self.net.error:
            raise DeepVisError(self.net.error)
        return Backward(self.net.diff)


def request(backprop=True):
    frame = Frame((np.zeros((8, 8, 3), np.uint8),), "x.png")
    return Request(frame, "crop", "first", Backprop("out", 1, "grad") if backprop else None, False)


def test_forward_only_snapshot_has_predictions():
    snapshot = compute(FakeNet(), request(backprop=False))
    assert snapshot.predictions[0][0] == "dog" and snapshot.predictions[0][1] == pytest.approx(0.8)
    assert snapshot.input_diff is None and snapshot.net_image.shape == (4, 4, 3)


def test_all_zero_backprop_says_so():
    snapshot = compute(FakeNet(diff=np.zeros((1, 3, 4, 4), np.float32)), request())
    assert "all zeros" in snapshot.backprop_message


def test_failed_backprop_says_why():
    snapshot = compute(FakeNet(error="fake: out: no backward rule for op Foo"), request())
    assert snapshot.backprop_message == "no backprop: fake: out: no backward rule for op Foo"


def test_input_diff_back_in_bgr_image_layout():
    net = FakeNet()
    diff = np.stack([np.full((4, 4), value, np.float32) for value in (1, 2, 3)])   # R, G, B as fed
    image = to_image_layout(net, diff)
    assert image.shape == (4, 4, 3) and list(image[0, 0]) == [3, 2, 1]


def test_requests_compare_frames_by_identity_and_follow_the_origin():
    layers = (LayerInfo("a", 4, (2, 2)), LayerInfo("b", 4, (2, 2)))
    frame = Frame((np.zeros((8, 8, 3), np.uint8),), "x.png")
    state = AppState(layers=layers, backprop_mode="guided")
    assert request_for(state, frame) == request_for(state, frame)
    same_pixels = Frame(frame.images, "x.png")
    assert request_for(state, frame) != request_for(state, same_pixels)
    moved = AppState(layers=layers, backprop_mode="guided", unit=1)
    assert request_for(moved, frame).backprop == Backprop("a", 1, "guided")
    frozen = AppState(layers=layers, backprop_mode="guided", unit=1, frozen_origin=(1, 3))
    assert request_for(frozen, frame).backprop == Backprop("b", 3, "guided")
    assert request_for(AppState(layers=layers), frame).backprop is None


def test_moving_the_backprop_origin_reuses_the_forward_pass():
    net = FakeNet(diff=np.ones((1, 3, 4, 4), np.float32))
    computer = Computer(net)
    first = request()
    computer(first)
    moved = Request(first.frame, "crop", "first", Backprop("out", 0, "guided"), False)
    snapshot = computer(moved)
    assert net.forwards == 1 and "forward" not in snapshot.seconds and snapshot.input_diff is not None
    computer(Request(first.frame, "stretch", "first", None, False))
    computer(request())                              # a new frame
    assert net.forwards == 3
