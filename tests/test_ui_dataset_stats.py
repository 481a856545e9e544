"""The pattern modes "activation histogram" and "activation correlation": what tools.layer_stats wrote,
drawn per unit and per layer, and a one-line message where there is nothing to draw."""
from dataclasses import replace

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.inputs import open_source
from app.offline import layer_stats
from app.offline import maxes as find
from app.ui.app import App, screenshot
from app.ui.panes import status
from app.ui.state import PATTERNS
from app.views import dataset_stats, filters
from tests import ui_support

LAYER = "ReLU32_Output_0"   # mnist-8's third layer: 8 units of 28 x 28
TO_LAYER = "oo"
TO_HISTOGRAM = TO_LAYER + "s" * PATTERNS.index("activation histogram")


@pytest.fixture(scope="module")
def net(testdata):
    return ui_support.mnist_net()


@pytest.fixture(scope="module")
def scored(net, tmp_path_factory):
    """find_maxes and layer_stats over six digits and a blank image, on which most units stay dead:
    (images folder, find_maxes folder, LAYER's stats)."""
    folder = tmp_path_factory.mktemp("dataset")
    digits = ui_support.write_images(folder / "digits", 6)
    cv2.imwrite(str(digits / "digit_9_blank.png"), np.zeros((96, 96, 3), np.uint8))
    out = folder / "out"
    find.FindMaxes(net, sorted(str(p) for p in digits.iterdir()), [LAYER], out, batch=4).run(progress=False)
    stats = layer_stats.layer_stats(out / find.MAXES_FILE, bins=10, order="pca", progress=False)[LAYER]
    return digits, out, stats


def render(net, digits, out, keys, tmp_path):
    settings = ui_support.settings(dataset_stats_dir=str(out), unit_jpg_dir=str(tmp_path / "no_images"))
    shot = screenshot(net, settings, open_source(str(digits)), tmp_path / "shot.png", keys)
    image = cv2.imread(str(shot))
    return {name: image[r.top:r.top + r.height, r.left:r.left + r.width] for name, r in App(net, settings).rects.items()}


def reds(image) -> np.ndarray:
    return (image[..., 2] > 200) & (image[..., 0] < 120) & (image[..., 1] < 120)


def test_histogram_tiles_draw_each_units_counts_and_mark_the_dead(scored):
    _, out, stats = scored
    tiles, arrays = dataset_stats.picture(out, LAYER, dataset_stats.dead_marked_tiles, 8)
    assert tiles.shape == (8, 64, 96, 3)
    np.testing.assert_array_equal(arrays["counts"], stats.counts)
    assert 0 < (stats.percent_dead > 0).sum() < 8, "the data should hold dead and live units"
    for unit in range(8):
        bars = filters.histogram_image(stats.counts[unit], stats.edges[unit])
        written = reds(tiles[unit]).any()
        assert written == (stats.percent_dead[unit] > 0)
        if not written:
            np.testing.assert_array_equal(tiles[unit], bars)
        else:   # the text covers the top left only
            np.testing.assert_array_equal(tiles[unit][16:], bars[16:])


def test_correlation_picture_is_the_stats_matrix_in_its_order(scored):
    _, out, stats = scored
    picture, _ = dataset_stats.picture(out, LAYER, dataset_stats.correlation_picture, 8)
    np.testing.assert_array_equal(picture, filters.correlation_image(stats.correlation, 600, order=stats.order))


def test_missing_or_mismatched_statistics_say_what_to_run(scored, tmp_path):
    _, out, _ = scored
    with pytest.raises(DeepVisError, match="no statistics of Pooling66_Output_0 .*tools.layer_stats --maxes"):
        dataset_stats.picture(out, "Pooling66_Output_0", dataset_stats.dead_marked_tiles, 8)
    with pytest.raises(DeepVisError, match="8 channels in the statistics, .* has 16"):
        dataset_stats.picture(out, LAYER, dataset_stats.dead_marked_tiles, 16)
    broken = tmp_path / "stats" / LAYER / "stats.npz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not an npz")
    with pytest.raises(DeepVisError, match="unreadable statistics"):
        dataset_stats.picture(tmp_path, LAYER, dataset_stats.dead_marked_tiles, 8)


def test_the_app_shows_the_histograms_the_unit_and_the_correlation(net, scored, tmp_path):
    digits, out, stats = scored
    panes = render(net, digits, out, TO_HISTOGRAM, tmp_path)
    layers, jpgvis = panes["layers"], panes["jpgvis"]
    bar_color = np.all(layers == (80, 200, 255), axis=2)
    assert bar_color.sum() > 500, "no histogram bars in the layers pane"
    assert np.all(jpgvis == (80, 200, 255), axis=2).sum() > 500, "no histogram of the unit in the jpgvis pane"
    assert reds(layers).any()   # some units' percent dead
    app = App(net, ui_support.settings())
    app.state = replace(app.state, layer=2, pattern="activation histogram")
    assert status.lines(app.view(None, None))[0].startswith("pattern (activation histogram) ReLU32:0")
    correlation = render(net, digits, out, TO_HISTOGRAM + "s", tmp_path)["layers"]
    assert reds(correlation).sum() > 1000   # the diagonal at least
    elsewhere = render(net, digits, out, "o" + TO_HISTOGRAM, tmp_path)["layers"]   # a layer find_maxes did not score
    assert not np.all(elsewhere == (80, 200, 255), axis=2).any() and elsewhere.std() > 3
