"""Headless rendering (--screenshot): every backprop mode and view draws its panes; messy folders."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.inputs import open_source
from app.ui import keys
from app.ui.app import App, _first_frame, screenshot
from app.ui.compute import compute, request_for
from app.ui import draw as paint
from app.ui.panes import layers, status
from app.ui.state import BACKPROP_MODES, BACKPROP_VIEWS, next_state
from tests import ui_support

ROOT = Path(__file__).resolve().parents[1]
TO_RELU = "oo"   # mnist-8: conv, add, relu -> the third layer (8 x 28 x 28)


@pytest.fixture(scope="module")
def net(testdata):
    return ui_support.mnist_net()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return ui_support.write_images(tmp_path_factory.mktemp("digits"))


def render(net, folder, keys, tmp_path, name="shot.png", **settings):
    app_settings = ui_support.settings(**settings)
    out = screenshot(net, app_settings, open_source(str(folder)), tmp_path / name, keys)
    image = cv2.imread(str(out))
    rects = App(net, app_settings).rects
    return image, {name: image[r.top:r.top + r.height, r.left:r.left + r.width] for name, r in rects.items()}


def share(pane, value) -> float:
    return float(np.mean(np.all(pane == value, axis=2)))


def assert_tiles_drawn(pane):
    assert pane.std() > 5 and len(np.unique(pane)) > 10


def test_backprop_off_leaves_the_back_pane_gray(net, digits, tmp_path):
    image, panes = render(net, digits, TO_RELU, tmp_path)
    assert share(panes["back"], 128) > 0.9
    assert_tiles_drawn(panes["layers"])
    assert_tiles_drawn(panes["input"])
    assert image.shape[:2] == (978, 1500)


@pytest.mark.parametrize("mode_index", range(1, len(BACKPROP_MODES)))
@pytest.mark.parametrize("view_index", range(len(BACKPROP_VIEWS)))
def test_every_backprop_mode_and_view_draws_the_back_pane(net, digits, tmp_path, mode_index, view_index):
    keys = TO_RELU + "b" * mode_index + "n" * view_index
    _, panes = render(net, digits, keys, tmp_path, occlusion_patch=8, occlusion_stride=4)
    back = panes["back"]
    assert share(back, 128) < 0.5, "back pane is gray"
    assert share(back, 30) < 0.9, "back pane shows a message instead of the backprop"
    assert back.std() > 3
    assert_tiles_drawn(panes["layers"])


def test_occlusion_maps_where_the_digit_is(net, digits, tmp_path):
    _, panes = render(net, digits, TO_RELU + "x", tmp_path, occlusion_patch=6, occlusion_stride=2)
    back = panes["back"]
    assert share(back, 128) < 0.5, "back pane is gray"
    assert back.std() > 3
    # the digit covers the middle of mnist's input; its corners are black background
    gray = back.mean(axis=2)
    height, width = gray.shape
    middle = gray[height // 3:2 * height // 3, width // 3:2 * width // 3]
    corner = gray[:height // 8, :width // 8]
    assert middle.std() > corner.std()
    _, off = render(net, digits, TO_RELU + "xx", tmp_path, "off.png")
    assert share(off["back"], 128) > 0.9


def test_diffs_zoom_pattern_overlay_and_help_render(net, digits, tmp_path):
    _, diffs = render(net, digits, "oooobdua", tmp_path, "diffs.png")   # frozen at conv2:0, diffs of pool1
    assert diffs["layers"][..., 2].max() > 40 and diffs["layers"][..., 1].max() > 100   # red and green
    _, zoomed = render(net, digits, TO_RELU + "bzz", tmp_path)
    assert np.array_equal(zoomed["layers"][:300, :300].shape, (300, 300, 3))
    assert zoomed["layers"].std() > 3
    _, overlaid = render(net, digits, TO_RELU + "by", tmp_path)
    _, plain = render(net, digits, TO_RELU + "b", tmp_path)
    assert not np.array_equal(overlaid["input"], plain["input"])
    helped, _ = render(net, digits, "h", tmp_path)
    normal, _ = render(net, digits, "", tmp_path)
    assert helped.mean() < normal.mean()
    _, pattern = render(net, digits, TO_RELU + "s", tmp_path, unit_jpg_dir=str(tmp_path))
    assert pattern["layers"].std() > 3   # a message: no per-unit images yet


def test_diffs_above_the_backprop_origin_or_all_zero_say_so(net, digits, tmp_path):
    _, above = render(net, digits, "oooobdoa", tmp_path, "above.png")    # frozen at conv2:0, diffs of the layer above
    _, off = render(net, digits, "a", tmp_path, "off.png")                 # backprop off: another message
    assert share(above["layers"], 30) > 0.9 and not np.array_equal(above["layers"], off["layers"])
    app = App(net, ui_support.settings())
    for action in tuple(keys.key_actions(TO_RELU + "ba", lambda: False)):
        app.state = next_state(app.state, action)
    source = open_source(str(digits))
    frame = _first_frame(source)
    source.close()
    snapshot = compute(net, request_for(app.state, frame))
    zero = dataclasses.replace(snapshot, diffs={name: np.zeros_like(d) for name, d in snapshot.diffs.items()})
    title = np.array(ui_support.settings().ui_colors["title"])
    drawn, labelled = (layers.draw(app.view(frame, shown), 870, 900) for shown in (snapshot, zero))
    lettered = [int(np.all(np.abs(pane[:30].astype(int) - title) < 60, axis=2).sum()) for pane in (drawn, labelled)]
    assert lettered[0] == 0 and lettered[1] > 100     # the label over the top row of (black) tiles


def test_vector_layers_and_colormaps(net, digits, tmp_path):
    _, last = render(net, digits, "o" * 9, tmp_path)
    assert_tiles_drawn(last["layers"])
    _, jet = render(net, digits, TO_RELU + "m", tmp_path)
    assert np.abs(jet["layers"][..., 0].astype(int) - jet["layers"][..., 2]).max() > 50   # not gray


def test_a_folder_with_broken_files_never_crashes(net, tmp_path):
    folder = tmp_path / "messy"
    ui_support.write_images(folder, 1)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("not an image\n")
    deep = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
    cv2.imwrite(str(folder / "deep16.png"), deep)
    for steps in range(5):
        image, panes = render(net, folder, "e" * steps, tmp_path, f"messy{steps}.png")
        assert_tiles_drawn(panes["layers"])
    source, messages = open_source(str(folder)), []
    app = App(net, ui_support.settings())
    for _ in range(4):
        frame = _read(source)
        messages.append(status.lines(app.view(frame, None))[1])
        source.next()
    said = " ".join(messages)
    assert "broken.jpg" in said and "notes.txt" in said and "deep16.png" in said


def _read(source):
    for _ in range(500):
        frame = source.read()
        if frame is not None:
            return frame
    raise AssertionError("no frame")


def test_any_rank_of_layer_is_drawn(testdata, tmp_path):
    net = ui_support.ultraface_net()
    ranks = {len(layer.shape) for layer in net.layers}
    assert ranks - {1, 3}, "UltraFace has layers that are neither vectors nor maps"
    folder = ui_support.write_images(tmp_path / "faces", 1)
    for index, layer in enumerate(net.layers):
        if len(layer.shape) not in (1, 3):
            _, panes = render(net, folder, "o" * index + "b", tmp_path, f"rank{index}.png")
            assert_tiles_drawn(panes["layers"])
            break


def test_command_line_screenshot(testdata, tmp_path):
    folder = ui_support.write_images(tmp_path / "in", 2)
    out = tmp_path / "cli.png"
    command = [sys.executable, str(ROOT / "run_toolbox.py"), "--model", str(ui_support.MNIST), "--input",
               str(folder), "--cpu", "--screenshot", str(out), "--keys", "oob<Right>n", "--settings",
               str(_mnist_settings(tmp_path))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(out)).shape == (978, 1500, 3)
    bad = subprocess.run(command[:-4] + ["--keys", "Q"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --keys")


def _mnist_settings(tmp_path) -> Path:
    path = tmp_path / "mnist_settings.py"
    path.write_text(f"model_input = {ui_support.MNIST_INPUT!r}\n")
    return path


@pytest.fixture(scope="module")
def default_net(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPVIS_CACHE", str(tmp_path_factory.mktemp("deepvis-cache")))
        from app.net import Net

        yield Net.load(provider="cpu")


def test_the_default_model_and_sample_photos(default_net, tmp_path):
    from app.inputs import default_input_dir

    photos = default_input_dir(tmp_path)
    middle = len(default_net.layers) // 2
    _, panes = render(default_net, photos, "o" * middle + "bbbnn", tmp_path)   # guided backprop, norm view
    assert share(panes["back"], 128) < 0.5 and panes["back"].std() > 3
    assert_tiles_drawn(panes["layers"])
    _, top = render(default_net, photos, "<Up>", tmp_path, "labels.png")     # cursor on the layer list
    bars = np.all(top["aux"] == ui_support.settings().ui_colors["bar"], axis=2)
    assert bars.sum() > 100     # the top-5 prediction bars


def test_weights_patterns(net, digits, tmp_path):
    _, histogram = render(net, digits, "gg", tmp_path, "histogram.png")        # conv1's 8 units
    assert share(histogram["layers"], 30) < 0.5 and histogram["layers"].std() > 10
    _, correlation = render(net, digits, "GG", tmp_path, "correlation.png")
    red = (correlation["layers"][..., 2] > 200) & (correlation["layers"][..., 0] < 80)
    assert red.sum() > 1000                                                    # the diagonal, at least
    _, none = render(net, digits, "oGG", tmp_path, "none.png")                # an Add: no weights of its own
    assert share(none["layers"], 30) > 0.8
    _, off = render(net, digits, "ggggg", tmp_path, "off.png")
    assert not np.array_equal(off["layers"], histogram["layers"]) and off["layers"].std() > 3


def test_filters_view_draws_each_units_weights_in_its_tile(net, digits, tmp_path):
    from app.ui.panes.layers import PATTERN_TILE
    from app.views.weights import unit_weights

    _, shot = render(net, digits, "g", tmp_path, "filters.png")               # conv1: 8 filters of 1 x 5 x 5
    pane = shot["layers"]
    weights = unit_weights(net, net.layers[0].name)
    layout = paint.grid_for(len(weights), PATTERN_TILE, PATTERN_TILE, *pane.shape[:2])
    for unit in (0, 5):
        top, left, height, width = layout.cell(unit)
        tile = cv2.resize(pane[top:top + height, left:left + width, 1], (5, 5), interpolation=cv2.INTER_AREA)
        assert np.corrcoef(tile.ravel(), weights[unit, 0].ravel())[0, 1] > 0.9


def test_ground_truth_and_siamese_pairs(net, digits, tmp_path):
    photos = sorted(digits.glob("*.png"))
    labels = tmp_path / "labels.txt"
    labels.write_text(f"{photos[0]} 7\n{photos[1]} a seven\n")
    app = App(net, ui_support.settings())
    names = dict(app.info.__dict__, labels=tuple(f"digit {i}" for i in range(10)))
    app.info = type(app.info)(**names)
    source = open_source(str(labels))
    first = status.lines(app.view(_read(source), None))[1]
    source.next()
    second = status.lines(app.view(_read(source), None))[1]
    assert "truth: digit 7 (7)" in first and "truth: a seven" in second
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"{photos[0]} {photos[1]}\n")
    _, one = render(net, pairs, "", tmp_path, "first.png")
    _, both = render(net, pairs, "vv", tmp_path, "both.png")
    assert _stroke_span(both["input"]) > _stroke_span(one["input"])


def test_siamese_both_runs_the_pair_as_one_batch_and_every_pane_shows_both(net, digits, tmp_path):
    from app.ui.compute import Computer, request_for

    photos = sorted(digits.glob("*.png"))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"{photos[0]} {photos[2]}\n")
    relu, both_view, grad = ("next_layer", "next_layer"), ("cycle_siamese_view",) * 2, ("next_backprop_mode",)
    app, frame, both = _snapshot(net, pairs, relu + both_view + grad)
    first = _snapshot(net, pairs, relu + grad)[2]
    second = _snapshot(net, pairs, relu + both_view[:1] + grad)[2]
    assert first.second is None and both.second is not None
    for shown, alone in ((both, first), (both.second, second)):          # the batch of two = each image alone
        for name, activation in alone.activations.items():
            np.testing.assert_allclose(shown.activations[name], activation, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(shown.input_diff, alone.input_diff, atol=1e-4 * np.abs(alone.input_diff).max())
        assert shown.predictions[0][0] == alone.predictions[0][0]
    assert not np.allclose(both.input_diff, both.second.input_diff)

    computer = Computer(net)                      # occlusion runs one image at a time; the next backprop
    occluded = computer(request_for(run_actions(app.state, "toggle_occlusion"), frame))   # still reads the pair
    assert occluded.input_diff is not None and occluded.second.input_diff is not None
    again = computer(request_for(app.state, frame))
    np.testing.assert_allclose(again.second.input_diff, both.second.input_diff, atol=1e-6)

    view = app.view(frame, both)
    rect = app.rects["layers"]
    layout = paint.grid_for(8, 28, 57, rect.height, rect.width)         # each tile: first | second
    for unit in range(8):
        top, left, height, width = layout.cell(unit)
        assert app.click(view, rect.top + top + height // 2, rect.left + left + width * 3 // 4) == ("select_unit", unit)
    app.act("down", both)                         # the cursor keys step over the pair tiles as drawn
    assert app.state.unit == layout.columns
    assert "pair: both, first | second" in status.lines(view)[1]

    _, one = render(net, pairs, "oob", tmp_path, "first.png")
    _, two = render(net, pairs, "oovvb", tmp_path, "both.png")
    assert not np.array_equal(one["layers"], two["layers"])
    for pane in ("back", "aux"):                 # each image's half drawn
        halves = np.array_split(two[pane][:-30], 2, axis=1)
        assert all(half.std() > 5 for half in halves) and not np.array_equal(*[h[:, :145] for h in halves])
    _, labels = render(net, pairs, "vv<Up>", tmp_path, "labels.png")      # both images' predictions
    bars = np.all(labels["aux"] == (200, 150, 60), axis=2)
    assert all(half.sum() > 100 for half in np.array_split(bars, 2, axis=0))


def run_actions(state, *actions):
    from app.ui.state import next_state

    for action in actions:
        state = next_state(state, action)
    return state


def _stroke_span(pane) -> int:
    """How many columns lie between the leftmost and rightmost white stroke."""
    columns = np.flatnonzero(pane.max(axis=(0, 2)) > 100)
    return int(columns.max() - columns.min())


def test_channel_order_reorders_the_tiles_and_clicks_select_the_real_unit(net, digits, tmp_path):
    _, plain = render(net, digits, TO_RELU, tmp_path, "plain.png")
    _, ordered = render(net, digits, TO_RELU + "pp", tmp_path, "pca.png")     # the relu's 8 maps by PCA
    assert not np.array_equal(plain["layers"], ordered["layers"])
    assert_tiles_drawn(ordered["layers"])

    app, frame, snapshot = _snapshot(net, digits, ("next_layer", "next_layer", "next_channel_order",
                                                   "next_channel_order"))
    order = snapshot.order
    assert sorted(order.units) == list(range(8)) and list(order.units) != list(range(8))
    view = app.view(frame, snapshot)
    rect = app.rects["layers"]
    layout = paint.grid_for(8, 28, 28, rect.height, rect.width)
    for position, unit in enumerate(order.units):
        top, left, height, width = layout.cell(position)
        click = app.click(view, rect.top + top + height // 2, rect.left + left + width // 2)
        assert click == ("select_unit", unit)
    app.act("right", snapshot)                          # the cursor keys follow the tiles as shown
    assert app.state.unit == order.units[order.position_of(0) + 1]


def test_dataset_channel_order_from_find_maxes_and_clicks_select_the_real_unit(net, digits, tmp_path):
    from app.offline.maxes import FindMaxes
    from app.views.dataset_order import dataset_order

    relu = net.layers[2].name
    photos = sorted(ui_support.write_images(tmp_path / "dataset", count=9).glob("*.png"))
    FindMaxes(net, [str(p) for p in photos], [relu], tmp_path / "stats", batch=4).run(progress=False)
    stats = dict(dataset_stats_dir=str(tmp_path / "stats"))
    _, this_input = render(net, digits, TO_RELU + "pp", tmp_path, "input_pca.png", **stats)
    _, dataset = render(net, digits, TO_RELU + "ppP", tmp_path, "dataset_pca.png", **stats)
    assert not np.array_equal(this_input["layers"], dataset["layers"])
    assert_tiles_drawn(dataset["layers"])

    app, frame, snapshot = _snapshot(net, digits, ("next_layer", "next_layer", "next_channel_order",
                                                   "next_channel_order", "next_order_source"), **stats)
    order = snapshot.order
    assert order == dataset_order(tmp_path / "stats", relu, "pca", 8) and list(order.units) != list(range(8))
    view = app.view(frame, snapshot)
    assert "order pca (dataset)" in status.lines(view)[1]
    rect = app.rects["layers"]
    layout = paint.grid_for(8, 28, 28, rect.height, rect.width)
    for position, unit in enumerate(order.units):
        top, left, height, width = layout.cell(position)
        assert app.click(view, rect.top + top + height // 2, rect.left + left + width // 2) == ("select_unit", unit)

    app, frame, snapshot = _snapshot(net, digits, ("next_layer", "next_channel_order", "next_order_source"), **stats)
    line = status.lines(app.view(frame, snapshot))[1]          # the add layer was not scored: unit order
    assert "order kmeans (dataset): " in line and "not scored by find_maxes" in line
    _, unscored = render(net, digits, "o" + "pP", tmp_path, "unscored.png", **stats)
    _, unordered = render(net, digits, "o", tmp_path, "unordered.png", **stats)
    assert np.array_equal(unscored["layers"], unordered["layers"])


def test_volume_view_and_export(net, digits, tmp_path):
    from app.views.volume import read_volume

    _, unit = render(net, digits, TO_RELU, tmp_path, "unit.png")
    _, shown = render(net, digits, TO_RELU + "34", tmp_path, "volume.png", volume_dir=str(tmp_path / "volumes"))
    aux = shown["aux"]
    assert not np.array_equal(aux, unit["aux"])
    orange = (aux[..., 2] > 200) & (aux[..., 1] > 80) & (aux[..., 0] < 100)   # inferno's bright end
    assert orange.sum() > 100
    written = sorted((tmp_path / "volumes").iterdir())
    assert [path.suffix for path in written] == [".npy", ".nrrd"]
    activation = _snapshot(net, digits, ("next_layer", "next_layer"))[2].activations[net.layers[2].name]
    for path in written:
        assert np.allclose(read_volume(path), activation, atol=1e-4)


def _snapshot(net, folder, actions, **settings):
    """(app, first frame, snapshot) after ``actions``, computed as the screenshot does."""
    from app.ui.app import _first_frame
    from app.ui.compute import compute, request_for
    from app.ui.state import next_state

    app = App(net, ui_support.settings(**settings))
    for action in actions:
        app.state = next_state(app.state, action)
    source = open_source(str(folder))
    frame = _first_frame(source)
    source.close()
    return app, frame, compute(net, request_for(app.state, frame))


def test_weight_gradients_view_follows_the_frozen_origin(net, digits, tmp_path):
    top, top_panes = render(net, digits, "gggg", tmp_path, "grads.png")            # conv1, from the best class
    assert share(top_panes["layers"], 30) < 0.5 and top_panes["layers"].std() > 3
    frozen, frozen_panes = render(net, digits, "o" * 9 + "llld" + "u" * 9 + "gggg", tmp_path, "grads3.png")
    assert share(frozen_panes["layers"], 30) < 0.5
    assert not np.array_equal(top_panes["layers"], frozen_panes["layers"])
    assert not np.array_equal(top_panes["status"], frozen_panes["status"])         # names the origin
    compared, single = top_panes["jpgvis"], frozen_panes["jpgvis"]                # 3 units, then 1 unit
    assert compared.std() > 3 and single.std() > 3 and not np.array_equal(compared, single)
    rows_drawn = [band.std() > 3 for band in np.array_split(compared, 3)]
    assert all(rows_drawn)


def test_a_missing_camera_shows_waiting_and_runs_no_net(net, tmp_path, monkeypatch):
    class NoCamera:
        def __init__(self, index):
            pass

        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", NoCamera)
    ran = []
    monkeypatch.setattr("app.ui.app.compute", lambda *args: ran.append(args))
    app_settings = ui_support.settings()
    out = screenshot(net, app_settings, open_source("camera:3"), tmp_path / "camera.png", "b")
    image = cv2.imread(str(out))
    rects = App(net, app_settings).rects
    assert not ran
    for name in ("input", "layers", "back"):
        r = rects[name]
        pane = image[r.top:r.top + r.height, r.left:r.left + r.width]
        assert share(pane, 30) > 0.9, name                    # the dark message pane, no tiles
        assert len(np.unique(pane.reshape(-1, 3), axis=0)) > 3, name   # with its line of text
