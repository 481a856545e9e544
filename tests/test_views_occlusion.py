"""Occlusion saliency: high exactly where the unit looks; batch size never changes the map."""
import numpy as np
import pytest

from app.errors import DeepVisError
from app.views import occlusion
from views_nets import region_net, small_cnn

REGION = (8, 16, 20, 28)  # y0, y1, x0, x1 that unit 0 of region_net sums


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("occlusion")
    return region_net(folder, regions=(REGION, (0, 4, 0, 4))), small_cnn(folder)


def bright_image(size=32):
    return np.full((size, size, 3), 200, np.uint8)


def test_one_pixel_patches_map_exactly_the_region(nets):
    region, _ = nets
    heat = occlusion.occlusion_map(region, bright_image(), "score", 0, patch=1, stride=1, fill="zero")
    expected = np.zeros((32, 32), np.float32)
    y0, y1, x0, x1 = REGION
    expected[y0:y1, x0:x1] = 3 * 200.0  # covering one pixel removes its three channels from the sum
    np.testing.assert_allclose(heat, expected, rtol=1e-5)


def test_larger_patches_are_high_in_the_region_and_zero_far_from_it(nets):
    region, _ = nets
    patch = 6
    heat = occlusion.occlusion_map(region, bright_image(), "score", 0, patch=patch, stride=2, fill="zero")
    y0, y1, x0, x1 = REGION
    inside = heat[y0:y1, x0:x1]
    near = np.zeros_like(heat, bool)
    near[max(y0 - patch + 1, 0):y1 + patch - 1, max(x0 - patch + 1, 0):x1 + patch - 1] = True
    assert inside.min() > 0
    assert (heat[~near] == 0).all()
    assert inside.min() >= heat[near].max() * 0.5
    peak = np.unravel_index(np.argmax(heat), heat.shape)
    assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1
    other = occlusion.occlusion_map(region, bright_image(), "score", 1, patch=patch, stride=2, fill="zero")
    assert other[:4, :4].min() > 0 and other[y0:y1, x0:x1].max() == 0


@pytest.mark.parametrize("at", [None, (5, 9)])
def test_batched_and_single_patch_runs_agree(nets, at):
    _, cnn = nets
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    maps = [occlusion.occlusion_map(cnn, image, "conv2", 3, patch=5, stride=3, fill="mean",
                                    batch_size=size, at=at) for size in (1, 7, 64)]
    assert np.abs(maps[0]).max() > 0
    for other in maps[1:]:
        np.testing.assert_allclose(other, maps[0], rtol=1e-5, atol=1e-6)


def test_a_run_the_caller_holds_is_untouched_by_an_occlusion_map(nets):
    _, cnn = nets
    held, image = np.random.default_rng(2).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    run = cnn.forward([held])
    before = run.backward("fc", 2, mode="guided").input
    occlusion.occlusion_map(cnn, image, "fc", 2, patch=4, stride=4)
    np.testing.assert_array_equal(run.input, cnn.preprocess([held]))
    np.testing.assert_array_equal(run.backward("fc", 2, mode="guided").input, before)


def test_fills(nets):
    region, _ = nets
    flat = occlusion.occlusion_map(region, bright_image(), "score", 0, patch=4, stride=4, fill="mean")
    assert (flat == 0).all()  # a uniform image occluded by its own mean does not change
    black = occlusion.occlusion_map(region, bright_image(), "score", 0, patch=4, stride=4, fill=0)
    zero = occlusion.occlusion_map(region, bright_image(), "score", 0, patch=4, stride=4, fill="zero")
    np.testing.assert_array_equal(black, zero)
    white = occlusion.occlusion_map(region, bright_image(), "score", 0, patch=4, stride=4, fill=255)
    assert white.min() < 0  # brighter than the image: covering raises the unit


def test_preprocessed_input_and_bad_arguments(nets):
    region, _ = nets
    batch = region.preprocess([bright_image()])
    np.testing.assert_array_equal(
        occlusion.occlusion_map(region, batch, "score", 0, patch=8, stride=8, fill="zero"),
        occlusion.occlusion_map(region, bright_image(), "score", 0, patch=8, stride=8, fill="zero"))
    with pytest.raises(DeepVisError, match="score: no unit 2"):
        occlusion.occlusion_map(region, batch, "score", 2)
    with pytest.raises(DeepVisError, match="fill 'gray'"):
        occlusion.occlusion_map(region, batch, "score", 0, fill="gray")
    with pytest.raises(DeepVisError, match="one input of shape"):
        occlusion.occlusion_map(region, np.repeat(batch, 2, axis=0), "score", 0)


def test_patch_positions_cover_every_pixel():
    positions = occlusion.patch_positions(10, 7, patch=4, stride=4)
    assert positions == [(y, x) for y in (0, 4, 6) for x in (0, 3)]
    assert occlusion.patch_positions(3, 3, patch=4, stride=2) == [(0, 0)]


def test_rendered_map_is_red_where_the_unit_drops():
    heat = np.array([[1.0, 0.0, -0.5]])
    image = occlusion.render_map(heat)
    assert tuple(image[0, 0]) == (0, 0, 255) and tuple(image[0, 1]) == (255, 255, 255)
    assert image[0, 2, 0] == 255 and image[0, 2, 2] < 255
