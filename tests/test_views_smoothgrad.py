"""SmoothGrad on the default model: without noise it is the plain gradient; with the paper's noise it
differs and is smooth in the input (a small change of the image changes it much less than the
gradient); it is a back pane mode of the app, drawn with most of the gray range."""
import cv2
import numpy as np
import pytest
import skimage.data

from app.inputs import open_source
from app.settings import load_settings
from app.ui import keys
from app.ui.app import App, screenshot
from app.views.smoothgrad import smooth_gradient

LAYER = "head"   # the last conv layer: its gradient changes most from pixel to pixel of the input


@pytest.fixture(scope="module")
def net():
    from app.net import Net

    return Net.load(provider="cpu")


@pytest.fixture(scope="module")
def cat(net):
    image = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
    batch = net.preprocess([image])
    value = net.forward(batch)[LAYER][0]
    return image, batch, int(value.reshape(len(value), -1).max(axis=1).argmax())


def plain_gradient(net, batch, unit):
    return net.forward(batch).backward(LAYER, unit, mode="grad", seed="activation", seed_through_rectifier=True).input


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first.ravel(), second.ravel())[0, 1])


def test_without_noise_it_is_the_plain_gradient(net, cat):
    _, batch, unit = cat
    plain = plain_gradient(net, batch, unit)
    assert np.any(plain)
    np.testing.assert_allclose(smooth_gradient(net, batch, LAYER, unit, samples=3, noise=0.0), plain,
                               rtol=1e-4, atol=1e-6 * np.abs(plain).max())


def test_with_noise_it_differs_and_a_small_change_of_the_image_changes_it_less(net, cat):
    _, batch, unit = cat
    nudge = np.random.default_rng(1).normal(0.0, 0.02 * float(batch.max() - batch.min()), batch.shape)
    nudged = batch + nudge.astype(np.float32)      # 2 % of the range: the picture looks the same
    plain, smooth = plain_gradient(net, batch, unit), smooth_gradient(net, batch, LAYER, unit, samples=8)
    assert not np.allclose(smooth, plain, atol=0.1 * np.abs(plain).max())
    plain_kept = correlation(plain, plain_gradient(net, nudged, unit))
    smooth_kept = correlation(smooth, smooth_gradient(net, nudged, LAYER, unit, samples=8))
    assert smooth_kept > plain_kept + 0.2, (plain_kept, smooth_kept)   # measured: 0.26 -> 0.63


def test_it_is_in_the_back_pane_cycle_and_draws_a_readable_pane(net, tmp_path):
    app = App(net, load_settings())
    presses = 0
    while app.state.backprop_mode != "smoothgrad":
        app.act(keys.action_for(ord("b")), None)
        presses += 1
        assert presses < 20, "smoothgrad is not in the b cycle"
    photo = tmp_path / "photos" / "chelsea.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
    keys_pressed = "o" * 8 + "<Down>" + "b" * presses
    window = cv2.imread(str(screenshot(net, load_settings(), open_source(str(photo.parent)), tmp_path / "sg.png",
                                       keys_pressed)))
    back = window[600:870, 0:300]                  # the back pane above its caption row
    low, high = np.percentile(back, [1, 99])
    assert high - low >= 128
