"""Forward only what is needed: Net.forward(outputs=...) and the app's compute asking only for what
the panes show and the backward reads."""
import dataclasses
import threading
import time

import numpy as np
import pytest

from app.inputs import Frame
from app.net.run import MissingTensor
from app.settings import load_settings
from app.ui.app import App
from app.ui.compute import Computer, compute, request_for
from app.ui.keys import key_actions
from app.ui.state import BACKPROP_MODES, next_state


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPVIS_CACHE", str(tmp_path_factory.mktemp("deepvis-cache")))
        from app.net import Net

        yield Net.load(provider="cpu")


@pytest.fixture(scope="module")
def photo():
    return (np.random.default_rng(3).random((240, 320, 3)) * 255).astype(np.uint8)


def test_outputs_equal_the_full_forward_and_nothing_else_is_read(net, photo):
    full = net.forward([photo])
    names = [net.layers[7].name, net.layers[30].name, net.prob_layer()]
    part = net.forward([photo], outputs=names)
    assert set(part) == set(names) and part.partial and not full.partial
    for name in names:
        np.testing.assert_allclose(part[name], full[name], rtol=1e-5, atol=1e-6 * np.abs(full[name]).max())
    assert part.top_classes()[0][0] == full.top_classes()[0][0]
    with pytest.raises(MissingTensor, match=f"{net.layers[8].name!r} was not computed"):
        part.tensors[net.layers[8].name]
    with pytest.raises(MissingTensor):   # a backward from a layer whose path was not asked for
        part.backward(names[1], 0, mode="guided", engine="numpy")


def test_sessions_per_output_set_stay_bounded(net, photo):
    net.forward_sessions = 2
    try:
        for layer in net.layers[3:8]:
            net.forward([photo], outputs=[layer.name])
        assert len(net._forward_sessions) == 2
        assert list(net._forward_sessions) == [frozenset([net.layers[6].name]), frozenset([net.layers[7].name])]
    finally:
        net.forward_sessions = 4


def test_threads_share_the_sessions(net, photo):
    full = net.forward([photo])
    layers = [layer.name for layer in net.layers[10:16]]
    failures = []

    def forward(name):
        for _ in range(3):
            value = net.forward([photo], outputs=[name])[name]
            if not np.allclose(value, full[name], rtol=1e-5, atol=1e-6 * np.abs(full[name]).max()):
                failures.append(name)

    threads = [threading.Thread(target=forward, args=(name,)) for name in layers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(net._forward_sessions) <= net.forward_sessions


def new_frame(image):
    """The same picture as a new frame (requests compare frames by identity), as a camera gives."""
    return Frame((image.copy(),), "photo.png")


def app_after(net, keys: str, photo=None) -> App:
    """The app after ``keys``; with ``photo``, the selected unit is the layer's most active on it."""
    app = App(net, load_settings(provider="cpu"))
    for action in key_actions(keys, lambda: False):
        app.state = next_state(app.state, action)
    if photo is not None:
        activation = compute(net, request_for(app.state, new_frame(photo))).activations[app.state.layer_info.name]
        app.state = dataclasses.replace(app.state, unit=int(activation.reshape(len(activation), -1).sum(1).argmax()))
    return app


def live_snapshot(net, app, photo):
    """The first snapshot of the app's compute on camera frames that computed only some tensors (what
    the backward reads is learned from the frames before; the set's session is made meanwhile),
    and the forward run it was made from."""
    computer = Computer(net)
    for _ in range(200):
        frame = new_frame(photo)
        snapshot = computer(request_for(app.state, frame))
        if computer._run.partial:
            return frame, snapshot, computer._run
        time.sleep(0.05)
    raise AssertionError("every frame computed every tensor")


def test_the_session_of_a_new_set_is_made_in_the_background(net, photo):
    app = app_after(net, "o" * 12)
    computer = Computer(net)
    first = computer(request_for(app.state, new_frame(photo)))
    assert not computer._run.partial   # its session was not made yet: every tensor, no pause
    for _ in range(200):
        if net.prepare_forward([app.state.layer_info.name, net.prob_layer()]):
            break
        time.sleep(0.05)
    second = computer(request_for(app.state, new_frame(photo)))
    assert computer._run.partial and set(second.activations) == {app.state.layer_info.name, net.prob_layer()}
    name = app.state.layer_info.name
    np.testing.assert_allclose(second.activations[name], first.activations[name], atol=1e-5)


MIDDLE = "o" * 40   # a middle layer of the default model (blocks.3...)


@pytest.mark.parametrize("mode", range(len(BACKPROP_MODES)))
@pytest.mark.parametrize("order", ["", "p"])
def test_screens_equal_the_full_forward(net, photo, mode, order, tmp_path):
    import cv2

    app = app_after(net, MIDDLE + "b" * mode + order, photo)
    frame, snapshot, run = live_snapshot(net, app, photo)
    full = compute(net, dataclasses.replace(request_for(app.state, frame), layer=None))
    assert run.partial and len(run.tensors) < len(net.tensor_types) / 4   # only what is shown and read
    if BACKPROP_MODES[mode] != "off":
        assert snapshot.input_diff is not None and np.abs(snapshot.input_diff).max() > 0
        np.testing.assert_allclose(snapshot.input_diff, full.input_diff,
                                   atol=1e-4 * np.abs(full.input_diff).max())
    live, reference = app.render(app.view(frame, snapshot, 0.0)), app.render(app.view(frame, full, 0.0))
    cv2.imwrite(str(tmp_path / "live.png"), live)
    low, high = np.percentile(live, [1, 99])
    assert high - low > 100   # a picture, not a blank window
    assert np.abs(live.astype(int) - reference.astype(int)).max() <= 1


def test_a_missing_tensor_runs_the_whole_forward_again(net, photo):
    """When the backward reads more than the last pass did (its graph made again, say), the frame is
    computed again from every tensor: never drawn from a silent zero."""
    app = app_after(net, MIDDLE + "bbb", photo)
    frame, snapshot, _ = live_snapshot(net, app, photo)
    computer = Computer(net)
    asked = request_for(app.state, frame)
    origin = (asked.backprop.layer, asked.backprop.mode)
    computer(request_for(app.state, new_frame(photo)))
    computer._reads[origin] = frozenset()   # as if the last pass had read nothing
    again = computer(asked)
    assert not computer._run.partial and computer._reads[origin]
    np.testing.assert_allclose(again.input_diff, snapshot.input_diff, atol=1e-4 * np.abs(snapshot.input_diff).max())


def test_the_status_line_names_the_graph_fallback(net, photo, monkeypatch, tmp_path):
    import cv2

    from app.net.run import Run
    from app.ui.panes import status

    app = app_after(net, MIDDLE + "bbb", photo)
    frame = new_frame(photo)
    graph_made = compute(net, request_for(app.state, frame))
    assert graph_made.backward_fallback == ""
    assert not any("NumPy" in line for line in status.lines(app.view(frame, graph_made, 0.0)))
    monkeypatch.setattr(Run, "graph_session", lambda run, key, make: "node 'x' (Foo): no graph rule for Foo")
    walked = compute(net, request_for(app.state, frame))
    assert walked.backward_fallback == "node 'x' (Foo): no graph rule for Foo"
    np.testing.assert_allclose(walked.input_diff, graph_made.input_diff, atol=1e-4 * np.abs(walked.input_diff).max())
    view = app.view(frame, walked, 0.0)
    assert "backward in NumPy: node 'x' (Foo): no graph rule for Foo" in status.lines(view)[1]
    cv2.imwrite(str(tmp_path / "fallback.png"), app.render(view))
