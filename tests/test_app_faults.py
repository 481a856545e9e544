"""The app keeps running and says what happened, rendered headless (app.ui.app.screenshot and
compute()): NaN / Inf activations, a backward pass meeting an op without a rule, a corrupt per-unit
image, a camera that is not there (its waiting frame never reaches the net)."""
import json
import warnings

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.inputs import CameraSource, open_source
from app.net import Net
from app.ui import app as ui_app
from app.ui import draw as paint
from app.ui.app import App, screenshot
from app.unit_images import montage_path
from app.views.unit_maps import finite
from tests import ui_support

SHOTS = {}


def _model(path, middle: list, layers: list) -> Net:
    """conv1 (3 -> 6) -> the ``middle`` nodes (reading conv1, ending in "mid") -> relu -> conv2 -> softmax."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 1, (6, 3, 3, 3)).astype(np.float32), "W"),
               numpy_helper.from_array(rng.normal(0, 1, (4, 6, 1, 1)).astype(np.float32), "W2")]
    nodes = ([helper.make_node("Conv", ["data", "W"], ["conv1"], pads=[1, 1, 1, 1], name="conv1")] + middle
             + [helper.make_node("Relu", ["mid"], ["relu"], name="relu"),
                helper.make_node("Conv", ["relu", "W2"], ["conv2"], name="conv2"),
                helper.make_node("GlobalAveragePool", ["conv2"], ["pool"], name="pool"),
                helper.make_node("Flatten", ["pool"], ["flat"], name="flat"),
                helper.make_node("Softmax", ["flat"], ["prob"], name="prob")])
    graph = helper.make_graph(nodes, "faults", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, None)], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"deepvis.layers": json.dumps(layers)})
    onnx.save(model, str(path))
    return Net.load(str(path), provider="cpu")


@pytest.fixture(scope="module")
def nan_net(tmp_path_factory):
    """log(conv1) is NaN where conv1 < 0; 1 / log is Inf where log is 0."""
    middle = [helper.make_node("Log", ["conv1"], ["log"], name="log"),
              helper.make_node("Reciprocal", ["log"], ["mid"], name="recip")]
    return _model(tmp_path_factory.mktemp("nan") / "nan.onnx", middle, ["conv1", "log", "mid", "relu", "conv2", "prob"])


@pytest.fixture(scope="module")
def sin_net(tmp_path_factory):
    """Sin has no backward rule."""
    middle = [helper.make_node("Sin", ["conv1"], ["mid"], name="the_sine")]
    return _model(tmp_path_factory.mktemp("sin") / "sin.onnx", middle, ["conv1", "mid", "relu", "conv2", "prob"])


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    cv2.imwrite(str(folder / "photo.png"), cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), np.uint8), (5, 5), 2))
    return folder


def _render(net, folder, keys, tmp_path, **settings):
    """The screenshot (no RuntimeWarning allowed: nothing divides by zero) and its panes."""
    app_settings = ui_support.settings(**settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = screenshot(net, app_settings, open_source(str(folder)), tmp_path / "shot.png", keys)
    image = cv2.imread(str(out))
    rects = App(net, app_settings).rects
    return image, {name: image[r.top:r.top + r.height, r.left:r.left + r.width] for name, r in rects.items()}


def _spread(image) -> float:
    """The 1st-99th percentile spread of the gray levels: what a reader can tell apart."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    low, high = np.percentile(gray, (1, 99))
    return float(high - low)


def test_nan_and_inf_activations_show_as_tiles_with_a_count(nan_net, photos, tmp_path):
    _, panes = _render(nan_net, photos, "o", tmp_path)   # the log layer: about half NaN
    assert _spread(panes["layers"]) > 150
    _, panes = _render(nan_net, photos, "oo", tmp_path)  # 1 / log: NaN and Inf
    assert _spread(panes["layers"]) > 100


def test_finite_counts_and_replaces_every_non_finite_value():
    maps = (np.array([[[np.nan, 1.0], [np.inf, -np.inf]]], np.float32), np.array([[[2.0, 3.0]]], np.float32))
    fixed, note = finite(maps)
    assert np.array_equal(fixed[0], [[[1.0, 1.0], [3.0, 1.0]]]) and np.array_equal(fixed[1], maps[1])
    assert note.startswith("1 NaN, 1 +Inf, 1 -Inf of 6 values")
    signed, _ = finite(maps, signed=True)
    assert signed[0][0, 0, 0] == 0
    assert finite((np.ones((1, 2, 2), np.float32),))[1] == ""


def test_backprop_through_nan_says_so_in_the_back_pane(nan_net, photos, tmp_path):
    _, panes = _render(nan_net, photos, "ooob", tmp_path)
    assert _spread(panes["back"]) > 100   # a message, not a flat gray picture


def test_a_histogram_of_values_with_nan_and_inf_draws_and_counts_them():
    values = np.array([np.nan, np.inf, -np.inf, 1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        chart = paint.histogram(values, 120, 240)
        empty = paint.histogram(np.full(5, np.nan), 120, 240)
    assert _spread(chart) > 100 and _spread(empty) > 50


def test_an_op_without_a_backward_rule_is_named_in_the_back_pane(sin_net, photos, tmp_path):
    from app.ui.compute import compute, request_for
    from app.ui.state import next_state

    app = App(sin_net, ui_support.settings())
    state = app.state
    for action in ("next_layer", "next_layer", "next_backprop_mode"):   # relu, then backprop on
        state = next_state(state, action)
    frame = open_source(str(photos)).read()
    snapshot = compute(sin_net, request_for(state, frame))
    assert "node 'the_sine': no backward rule for op Sin" in snapshot.backprop_message
    _, panes = _render(sin_net, photos, "oob", tmp_path)
    assert _spread(panes["back"]) > 100   # the message is drawn


def test_a_corrupt_per_unit_image_shows_why_in_its_place(photos, tmp_path):
    net = ui_support.mnist_net()
    root = tmp_path / "units"
    layer = net.layers[2].name
    for kind in ("opt", "maxim", "deconv"):
        path = montage_path(root, layer, 0, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\ndamaged" if kind == "maxim" else cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1])
    picture = ui_app.read_unit_image(montage_path(root, layer, 0, "maxim"))
    assert picture.shape[2] == 3 and _spread(picture) > 100
    _, panes = _render(net, photos, "oo", tmp_path, unit_jpg_dir=str(root), model_input=ui_support.MNIST_INPUT)
    assert _spread(panes["jpgvis"]) > 100


def test_a_missing_camera_waits_and_its_frame_never_reaches_the_net(nan_net, tmp_path, monkeypatch):
    camera = CameraSource(index=97, retry_seconds=60)
    frame = ui_app._first_frame(camera)
    assert frame.waiting and frame.images == () and "camera 97: not found" in frame.message
    monkeypatch.setattr(ui_app, "compute", lambda *args, **kwargs: pytest.fail("the net ran on no image"))
    camera.reshow()
    out = screenshot(nan_net, ui_support.settings(), camera, tmp_path / "camera.png")   # closes the camera
    rect = App(nan_net, ui_support.settings()).rects["input"]
    image = cv2.imread(str(out))
    pane = cv2.cvtColor(image[rect.top:rect.top + rect.height, rect.left:rect.left + rect.width], cv2.COLOR_BGR2GRAY)
    assert (pane > 120).sum() > 100   # the message is written on the dark pane


def test_the_live_loop_shows_why_a_unit_image_failed_once_its_loader_tried(tmp_path):
    import time

    from app.ui.session import LiveSession
    from app.ui.workers import UnitImageLoader

    damaged = tmp_path / "montage_maxim.png"
    damaged.write_bytes(b"\x89PNG\r\n\x1a\ndamaged")
    session = LiveSession.__new__(LiveSession)   # only its per-unit image lookup is used here (window and web)
    session.images = UnitImageLoader(10 ** 6).start()
    try:
        assert session._unit_image(damaged) is None   # queued: still loading
        deadline = time.monotonic() + 5
        while session.images.failure(damaged) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        picture = session._unit_image(damaged)
    finally:
        session.images.stop()
    assert picture is not None and _spread(picture) > 100
