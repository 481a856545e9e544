"""Channel orders: k-means and PCA give permutations, find planted structure, and map display
positions back to real units; over a dataset they equal the orders of the whole maxima matrix."""
import json
import os

import numpy as np
import pytest

from app.errors import DeepVisError
from app.views import dataset_order, ordering
from views_nets import small_cnn


def is_permutation(order, count):
    return sorted(order) == list(range(count))


def planted_channels(seed=0):
    """30 channels of 8x8 maps in 3 groups (active in one of three places), shuffled; returns
    (activation, group of each channel)."""
    rng = np.random.default_rng(seed)
    groups = rng.permutation(np.repeat([0, 1, 2], 10))
    activation = rng.uniform(0, 0.05, (30, 8, 8))
    for channel, group in enumerate(groups):
        activation[channel, group * 2:group * 2 + 3, 1:6] += rng.uniform(0.8, 1.2)
    return activation, groups


@pytest.mark.parametrize("features", [
    np.random.default_rng(3).normal(size=(17, 5)),
    np.zeros((6, 4)),                                    # a dead layer
    np.repeat(np.eye(3), 3, axis=0),                     # duplicated channels
    np.random.default_rng(4).uniform(size=(1, 9)),      # one channel
    np.random.default_rng(5).uniform(size=(12, 1)),     # a vector layer: one value per unit
])
@pytest.mark.parametrize("mode", ordering.MODES)
def test_every_order_is_a_permutation(features, mode):
    order = ordering.channel_order(mode, features)
    assert is_permutation(order.units, len(features))


def test_kmeans_puts_each_planted_group_together_deterministically():
    activation, groups = planted_channels()
    features = ordering.activation_features(activation)
    order = ordering.channel_order("kmeans", features, clusters=3, seed=0)
    shown_groups = groups[list(order.units)]
    assert (np.diff(shown_groups) != 0).sum() == 2  # three runs, one per group
    assert ordering.channel_order("kmeans", features, clusters=3, seed=0) == order


def test_pca_sorts_channels_along_their_main_direction():
    angles = np.random.default_rng(6).permutation(np.linspace(0.0, 0.6, 11))
    features = np.stack([np.cos(angles), np.sin(angles), np.zeros(11)], axis=1)
    order = ordering.pca_order(features)
    shown = angles[order]
    assert (np.diff(shown) > 0).all() or (np.diff(shown) < 0).all()


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(7)
    centres = np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    points = np.concatenate([c + rng.normal(0, 0.1, (8, 2)) for c in centres])
    labels, centroids = ordering.kmeans(points, 3, seed=1)
    assert len(set(labels[:8])) == len(set(labels[8:16])) == len(set(labels[16:])) == 1
    assert len(set(labels)) == 3
    for group in range(3):
        members = points[group * 8:(group + 1) * 8]
        np.testing.assert_allclose(centroids[labels[group * 8]], members.mean(axis=0))


def test_display_positions_map_back_to_real_units():
    activation, _ = planted_channels(1)
    order = ordering.channel_order("pca", ordering.activation_features(activation))
    tiles = order.arrange(activation)
    for position in range(30):
        unit = order.unit_at(position)
        assert order.position_of(unit) == position
        np.testing.assert_array_equal(tiles[position], activation[unit])
    assert order.arrange(list("abc" * 10))[0] == "abc"[order.unit_at(0) % 3]
    assert ordering.ChannelOrder.identity(4).units == (0, 1, 2, 3)


def test_orders_from_a_net_and_from_a_gram_matrix(tmp_path):
    net = small_cnn(tmp_path)
    image = np.random.default_rng(8).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    relu1 = net.forward([image])["relu1"][0]
    for mode in ordering.MODES:
        assert is_permutation(ordering.channel_order(mode, ordering.activation_features(relu1)).units, 4)
    maxima = np.random.default_rng(9).uniform(size=(50, 6))  # 50 images x 6 channels
    points = ordering.gram_features(maxima.T @ maxima)
    np.testing.assert_allclose(points @ points.T, maxima.T @ maxima, atol=1e-9)
    assert is_permutation(ordering.channel_order("kmeans", points, clusters=2).units, 6)
    with pytest.raises(DeepVisError, match="Gram matrix"):
        ordering.gram_features(maxima)
    with pytest.raises(DeepVisError, match="channel order 'tsne'"):
        ordering.channel_order("tsne", points)


def write_stats(folder, layers: dict, chunk_rows: int = 40):
    """A find_maxes output folder holding only the channel maxima (no rankings): layers {name: N x C maxima}."""
    chunks, images = [], len(next(iter(layers.values())))
    (folder / "channel_maxima").mkdir(parents=True, exist_ok=True)
    for start in range(0, images, chunk_rows):
        chunks.append(f"chunk_{len(chunks):06d}.npz")
        rows = {f"l{i}": values[start:start + chunk_rows].astype(np.float32) for i, values in enumerate(layers.values())}
        np.savez(folder / "channel_maxima" / chunks[-1], image=np.arange(start, min(images, start + chunk_rows)), **rows)
    stats = {"folder": "channel_maxima", "chunks": chunks, "layers": list(layers), "images": images}
    maxes = {"model": "synthetic", "images": [f"{i}.png" for i in range(images)], "layers": {}, "stats": stats}
    (folder / "maxes.json").write_text(json.dumps(maxes))
    return folder


def planted_maxima(images=130, seed=11):
    """images x 24 channel maxima: three groups of channels, each following its own image factor."""
    rng = np.random.default_rng(seed)
    factors = rng.gamma(2.0, size=(images, 3))
    groups = rng.permutation(np.repeat([0, 1, 2], 8))
    maxima = factors[:, groups] * rng.uniform(0.5, 2.0, 24) + rng.uniform(0, 0.3, (images, 24))
    maxima[:, 5] = 0.0                                      # a channel that never fired
    return maxima.astype(np.float32), groups


def test_dataset_orders_equal_a_direct_computation_on_the_whole_matrix(tmp_path):
    maxima, groups = planted_maxima()
    folder = write_stats(tmp_path, {"conv": maxima, "fc": maxima[:, :10] * 2})
    channels = maxima.astype(np.float64).T                  # C x N, what the streamed Gram stands for
    for mode in ordering.MODES:
        order = dataset_order.dataset_order(folder, "conv", mode, 24)
        assert is_permutation(order.units, 24)
        assert order == ordering.channel_order(mode, channels)
    # the PCA order from an SVD of the unit-length, centred channels
    unit = channels / np.maximum(np.linalg.norm(channels, axis=1, keepdims=True), 1e-300)
    centred = unit - unit.mean(axis=0)
    scores = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    scores *= np.sign(scores[np.argmax(np.abs(scores))])
    assert dataset_order.dataset_order(folder, "conv", "pca", 24).units == tuple(np.argsort(scores, kind="stable"))
    kmeans = dataset_order.dataset_order(folder, "conv", "kmeans", 24).units
    live = [unit for unit in kmeans if unit != 5]
    assert (np.diff(groups[live]) != 0).sum() == 2          # each planted group in one run of tiles
    assert dataset_order.dataset_order(tmp_path / "maxes.json", "fc", "pca", 10) == ordering.channel_order(
        "pca", channels[:10] * 2)


def test_dataset_orders_follow_a_new_run_and_refuse_missing_statistics(tmp_path):
    maxima, _ = planted_maxima()
    folder = write_stats(tmp_path / "run", {"conv": maxima})
    before = dataset_order.dataset_order(folder, "conv", "pca", 24)
    os.utime(folder / "maxes.json", ns=(1, 1))              # find_maxes wrote it again: read anew
    write_stats(folder, {"conv": maxima[:, ::-1].copy()})
    after = dataset_order.dataset_order(folder, "conv", "pca", 24)
    assert after.units == tuple(23 - unit for unit in before.units)
    with pytest.raises(DeepVisError, match="layer head: not scored by find_maxes"):
        dataset_order.dataset_order(folder, "head", "pca", 24)
    with pytest.raises(DeepVisError, match="24 channels in the statistics, the net has 32"):
        dataset_order.dataset_order(folder, "conv", "kmeans", 32)
    with pytest.raises(DeepVisError, match="no such file"):
        dataset_order.dataset_order(tmp_path / "elsewhere", "conv", "pca", 24)
    (folder / "channel_maxima" / "chunk_000001.npz").unlink()
    os.utime(folder / "maxes.json", ns=(2, 2))
    with pytest.raises(DeepVisError, match="unreadable channel maxima of conv"):
        dataset_order.dataset_order(folder, "conv", "pca", 24)


def test_maxes_json_is_read_once_for_every_layer(tmp_path, monkeypatch):
    from app.offline import layer_stats

    maxima, _ = planted_maxima()
    folder = write_stats(tmp_path, {"conv": maxima, "fc": maxima[:, :10] * 2, "head": maxima[:, :5]})
    reads = []
    real = layer_stats.read_maxes
    monkeypatch.setattr(layer_stats, "read_maxes", lambda path: reads.append(path) or real(path))
    for layer, units in (("conv", 24), ("fc", 10), ("head", 5)):
        dataset_order.dataset_order(folder, layer, "pca", units)
    assert len(reads) == 1


@pytest.mark.parametrize("shape", [(12, 40), (40, 12)])
def test_first_component_scores_equal_an_svd_projection(shape):
    features = np.random.default_rng(10).normal(size=shape)
    centred = features - features.mean(axis=0)
    projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    projection *= np.sign(projection[np.argmax(np.abs(projection))])
    np.testing.assert_allclose(ordering.first_component_scores(features), projection, atol=1e-9)
