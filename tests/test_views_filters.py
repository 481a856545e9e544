"""Filter weights as pictures: colour tiles equal the normalised weights, per-channel tiles,
histograms, correlation; the weights found behind a layer."""
import numpy as np
import pytest
from onnx import helper

from app.errors import DeepVisError
from app.net import Net
from app.views import filters, grid, weights
from views_nets import PLAIN_INPUT, _save, small_cnn


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return small_cnn(tmp_path_factory.mktemp("filters"))


def expected_bytes(values):
    """Min-max to 0..255, rounded: what a tile of these weights must hold."""
    values = np.asarray(values, np.float64)
    return np.round((values - values.min()) / (values.max() - values.min()) * 255).astype(np.uint8)


def test_weights_behind_a_layer_walk_up_element_wise_ops(net):
    np.testing.assert_array_equal(weights.unit_weights(net, "conv1"), net.initializers["w1"])
    np.testing.assert_array_equal(weights.unit_weights(net, "relu1"), net.initializers["w1"])
    np.testing.assert_array_equal(weights.unit_weights(net, "fc"), net.initializers["wf"])
    with pytest.raises(DeepVisError, match="pool: no Conv, Gemm or MatMul weights"):
        weights.unit_weights(net, "pool")


def test_weights_computed_from_constants_are_found_and_those_from_the_input_refused(tmp_path):
    """conv's weights are w * 2, made by a Mul node (no initializer holds them, Net.constants does);
    gram's "weights" are the transposed conv output, which changes with every input: none."""
    w = np.random.default_rng(1).normal(size=(2, 3, 3, 3))
    nodes = [helper.make_node("Mul", ["w", "two"], ["doubled"]),
             helper.make_node("Conv", ["data", "doubled"], ["conv"]),
             helper.make_node("Transpose", ["conv"], ["conv_t"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["conv", "conv_t"], ["gram"])]
    path = _save(nodes, {"w": w, "two": 2.0}, (3, 4, 4), "gram", tmp_path / "made.onnx")
    net = Net.load(path, provider="cpu", input=PLAIN_INPUT)
    np.testing.assert_allclose(weights.unit_weights(net, "conv"), 2 * w, rtol=1e-6)
    with pytest.raises(DeepVisError, match="gram: no Conv, Gemm or MatMul weights"):
        weights.unit_weights(net, "gram")


@pytest.mark.parametrize("channel_swap", [(2, 1, 0), (0, 1, 2)])
def test_colour_tile_of_filter_k_is_its_weights_normalised(net, channel_swap):
    w1 = net.initializers["w1"]
    tiles = filters.filter_images(w1, channel_swap)
    assert tiles.shape == (4, 5, 5, 3) and tiles.dtype == np.uint8
    for k in range(4):
        expected = expected_bytes(w1[k])
        for net_channel, bgr_channel in enumerate(channel_swap):
            np.testing.assert_array_equal(tiles[k, :, :, bgr_channel], expected[net_channel])


def test_rgb_model_filter_shows_red_where_it_reads_red():
    red_reader = np.zeros((1, 3, 2, 2))
    red_reader[0, 0] = 1.0  # net channel 0 is R when channel_swap = (2, 1, 0)
    tile = filters.filter_images(red_reader, (2, 1, 0))[0]
    assert (tile[..., 2] == 255).all() and (tile[..., :2] == 0).all()


def test_layer_scope_transpose_and_gray_filters(net):
    w1 = net.initializers["w1"]
    whole = filters.filter_images(w1, (2, 1, 0), scope="layer")
    np.testing.assert_array_equal(whole[..., 2], expected_bytes(w1)[:, 0])
    flipped = filters.filter_images(w1, (2, 1, 0), transpose=True)
    np.testing.assert_array_equal(flipped, filters.filter_images(w1, (2, 1, 0)).swapaxes(1, 2))
    gray = filters.filter_images(w1[:, :1], (0,))
    assert (gray[..., 0] == gray[..., 2]).all()
    np.testing.assert_array_equal(gray[2, :, :, 1], expected_bytes(w1[2, 0]))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        filters.filter_images(net.initializers["w2"])


def test_signed_normalisation_puts_zero_at_mid_gray():
    scaled = filters.normalise(np.array([-2.0, 0.0, 1.0]), signed=True)
    np.testing.assert_allclose(scaled, [0.0, 0.5, 0.75])
    np.testing.assert_allclose(filters.normalise(np.ones(3)), 0.5)


def test_deeper_filter_as_one_tile_per_input_channel(net):
    w2 = net.initializers["w2"]
    assert not filters.draws_in_colour(w2)
    tiles = filters.input_channel_tiles(w2[3])
    assert tiles.shape == (4, 3, 3, 3)
    np.testing.assert_array_equal(tiles[..., 1], expected_bytes(w2[3]))


def test_histograms_count_every_weight_over_shared_edges(net):
    w2 = net.initializers["w2"]
    counts, edges = filters.weight_histograms(w2, bins=10)
    assert counts.shape == (6, 10) and (counts.sum(axis=1) == 4 * 3 * 3).all()
    assert edges[0] == w2.min() and edges[-1] == pytest.approx(w2.max())
    tiles = filters.histogram_tiles(counts, edges, height=40, width=60)
    assert tiles.shape == (6, 40, 60, 3)
    tallest = int(np.argmax(counts[0]))
    column = int((tallest + 0.5) * 60 / 10)
    assert tiles[0, :, column].any(axis=1).all()  # the tallest bar fills the tile


def test_weight_correlation_matrix_and_its_picture(net):
    w2 = net.initializers["w2"]
    matrix = filters.weight_correlation(w2)
    np.testing.assert_allclose(matrix, np.corrcoef(w2.reshape(6, -1)), atol=1e-12)
    with_constant = np.concatenate([w2, np.zeros((1, 4, 3, 3))])
    assert not np.isnan(filters.weight_correlation(with_constant)).any()
    image = filters.correlation_image(matrix, size=60, order=[5, 4, 3, 2, 1, 0])
    assert image.shape == (60, 60 + 48, 3)
    assert tuple(image[5, 5]) == (0, 0, 255)  # the diagonal (+1) is red
    np.testing.assert_array_equal(filters.diverging_colors(np.array([-1.0, 0.0])), [[255, 0, 0], [255, 255, 255]])


def test_tile_grid_lays_tiles_out_row_major():
    tiles = np.stack([np.full((2, 3, 3), k * 20, np.uint8) for k in range(5)])
    image = grid.tile_grid(tiles, upscale=2, pad=1)
    assert image.shape == (2 * 5 + 1, 3 * 7 + 1, 3)  # 5 tiles -> 3 columns, 2 rows of 4 x 6
    assert image[1, 1, 0] == 0 and image[1, 8, 0] == 20 and image[6, 1, 0] == 60


def test_weights_of_a_real_exported_net_through_batchnorm_and_relu(testdata):
    from app.net import Net

    net = Net.load(testdata / "onnx_ultraface_slim320" / "version-slim-320.onnx", provider="cpu")
    first = next(layer.name for layer in net.layers if layer.op_type == "Conv")
    relu = next(layer.name for layer in net.layers if layer.op_type == "Relu")
    np.testing.assert_array_equal(weights.unit_weights(net, relu), weights.unit_weights(net, first))
    tiles = filters.filter_images(weights.unit_weights(net, first), net.spec.input.channel_swap)
    assert tiles.shape[0] == net.layer(first).channels and tiles.shape[3] == 3


def test_one_tile_per_unit_for_any_layer(net):
    w1, w2 = net.initializers["w1"], net.initializers["w2"]
    np.testing.assert_array_equal(filters.unit_filter_tiles(w1), filters.filter_images(w1))
    tiles = filters.unit_filter_tiles(w2)
    assert len(tiles) == 6
    np.testing.assert_array_equal(tiles[4], grid.tile_grid(filters.input_channel_tiles(w2[4])))
