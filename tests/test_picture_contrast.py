"""Signed pictures of the default model use most of the gray range: the back pane in every view and
the backward crops that crop_max_patches writes (1st-99th percentile spread of their gray levels)."""
import json

import cv2
import numpy as np
import pytest
import skimage.data

from app.net.receptive_field import receptive_fields
from app.offline import crops
from app.ui.panes import back
from app.unit_images import crop_path, unit_dir
from app.views.backprop import to_image_layout

LAYERS = ("blocks.1.0.dw", "head")   # an early and a late layer
HALF = 128                           # of 255 gray levels
UNITS, TOP = 3, 2


def spread(picture: np.ndarray) -> float:
    low, high = np.percentile(picture, [1, 99])
    return float(high - low)


@pytest.fixture(scope="module")
def net():
    from app.net import Net

    return Net.load(provider="cpu")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("chelsea", "coffee"):
        paths.append(str(folder / f"{name}.png"))
        cv2.imwrite(paths[-1], cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2BGR))
    return paths


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("mode", ("guided", "deconv"))
def test_back_pane_spreads_over_half_the_gray_range_in_every_view(net, photos, layer, mode):
    run = net.forward(net.preprocess([cv2.imread(photos[0])]))
    value = run[layer][0]
    unit = int(value.reshape(len(value), -1).max(axis=1).argmax())
    diff = to_image_layout(net, run.backward(layer, unit, mode=mode, seed="activation").input[0])
    assert np.any(diff)
    height, width = diff.shape[:2]      # the pane as big as the picture: no fill to measure
    for view in ("raw", "gray", "norm", "normblur", "sum>0"):
        assert spread(back.render(diff, view, "gray", height, width)) >= HALF, view


def signal_pixels(picture: np.ndarray, box: list, size: tuple) -> np.ndarray:
    """The pixels of a backward crop that show signal: inside the image (not the padding or the black
    band of a scaled field), off the centre ring, and not mid-gray (an exact zero: where nothing flowed
    back, e.g. the blank around a sparse pass)."""
    y0, y1, x0, x1 = box
    place = crops.placement(box, size)
    keep = np.zeros(picture.shape[:2], bool)
    if place is None:
        keep[max(0, -y0):size[0] - y0, max(0, -x0):size[1] - x0] = True
    else:
        top, bottom, left, right = place.target
        keep[top:bottom, left:right] = True
        cv2.circle(keep.view(np.uint8), tuple(int(round(v)) for v in place.centre[::-1]), 12, 0, -1)
    keep &= np.any(picture != 128, axis=2)
    return picture[keep]


def _maxes(net, photos: list, layer: str) -> dict:
    """Each of the first UNITS units' TOP images at their highest position, as find_maxes keeps them."""
    value = net.forward(net.preprocess([cv2.imread(path) for path in photos]))[layer]
    units = []
    for unit in range(UNITS):
        planes = value[:, unit].reshape(len(photos), -1)
        units.append([{"value": float(planes[image].max()), "image": image,
                       "y": int(planes[image].argmax()) // value.shape[-1],
                       "x": int(planes[image].argmax()) % value.shape[-1]}
                      for image in np.argsort(-planes.max(axis=1))[:TOP].tolist()])
    return {"model": net.spec.name, "images": photos, "layers": {layer: units}}


@pytest.mark.parametrize("layer", LAYERS)
def test_written_backward_crops_spread_over_half_the_gray_range(net, photos, layer, tmp_path):
    maxes = _maxes(net, photos, layer)
    crops.crop_layer(net, maxes, layer, tmp_path, receptive_fields(net)[layer], kinds=tuple(crops.BACKWARD_MODES),
                     progress=False)
    height, width = net.input_shape[1:]
    checked = 0
    for unit in range(UNITS):
        info = json.loads((unit_dir(tmp_path, layer, unit) / "info.json").read_text())
        for entry in info["entries"]:
            for kind in crops.BACKWARD_MODES:
                picture = cv2.imread(str(crop_path(tmp_path, layer, unit, kind, entry["rank"])))
                if entry["rank"] in info["all_zero"].get(kind, []):
                    # a ReLU6 off or saturated at 6 passes no gradient; deconv's ReLU rule ignores the forward pass
                    assert kind != "deconv" and crops.is_all_zero_tile(picture)
                    continue
                assert spread(signal_pixels(picture, entry["box"], (height, width))) >= HALF, \
                    (unit, kind, entry["rank"])
                checked += 1
    assert checked >= UNITS * TOP



def test_a_unit_saturated_at_relu6_still_shows_what_drove_it(net, photos):
    """The default model's head units are ReLU6 outputs. At a position where one sits at 6 its
    gradient is zero; the pass from below its rectifier (the original's, used by the app and the
    crops) shows what drove it."""
    from app.inputs import Frame
    from app.ui.compute import Backprop, Request, compute, net_images

    image = cv2.imread(str(photos[0]))
    run = net.forward([image])
    head = run["head"][0]
    unit = next(unit for unit in range(len(head)) if head[unit].max() >= 6)
    at = np.unravel_index(head[unit].argmax(), head[unit].shape)
    assert not np.any(run.backward("head", unit, mode="guided", seed="onehot", at=at).input)   # the plain gradient
    through = run.backward("head", unit, mode="guided", seed="onehot", at=at, seed_through_rectifier=True).input
    assert spread(back.render(to_image_layout(net, through[0]), "raw", "gray", 224, 224)) >= HALF
    request = Request(Frame((image,), "photo.png"), "crop", "first", Backprop("head", unit, "guided"), False)
    snapshot, fitted = compute(net, request), net.forward(net_images(net, request))   # the image the app fits
    np.testing.assert_array_equal(snapshot.input_diff, to_image_layout(net, fitted.backward(
        "head", unit, mode="guided", seed_through_rectifier=True).input[0]))
