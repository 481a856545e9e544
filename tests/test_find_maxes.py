"""find_maxes: equal to a brute-force ranking over the same images, unreadable images skipped and
counted, and a run killed by SIGKILL half-way then restarted ends with the same maxes.json."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.errors import DeepVisError
from app.files import read_npz
from app.net import Net
from app.net.spatial_max import UNKNOWN, SpatialMax, positions
from app.offline import maxes as find

ROOT = Path(__file__).resolve().parents[1]


def tiny_net_file(folder: Path, size: int = 32, width: int = 8, opset: int = 13) -> Path:
    """A random conv net: conv-relu-pool-conv-relu-gap-fc; channel 0 of relu1 is dead (ties at 0)."""
    rng = np.random.default_rng(0)
    weights = {"w1": rng.normal(0, 0.3, (width, 3, 3, 3)), "b1": np.r_[-1e3, rng.normal(0, 0.1, width - 1)],
               "w2": rng.normal(0, 0.3, (2 * width, width, 3, 3)), "b2": rng.normal(0, 0.1, 2 * width),
               "w3": rng.normal(0, 0.3, (10, 2 * width)), "b3": np.zeros(10)}
    nodes = [helper.make_node("Conv", ["data", "w1", "b1"], ["conv1"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["conv1"], ["relu1"]),
             helper.make_node("MaxPool", ["relu1"], ["pool1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["pool1", "w2", "b2"], ["conv2"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["conv2"], ["relu2"]),
             helper.make_node("GlobalAveragePool", ["relu2"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w3", "b3"], ["fc"], transB=1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("fc", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    path = folder / f"tiny{size}_opset{opset}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), str(path))
    return path


def renamed_tiny_net(folder: Path, names: dict) -> Path:
    """The tiny net with the layers in ``names`` renamed (node outputs, their readers, graph outputs):
    hostile-name models for the tests that names are data."""
    model = onnx.load(str(tiny_net_file(folder)))
    for node in model.graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]
    for output in model.graph.output:
        output.name = names.get(output.name, output.name)
    path = folder / "hostile.onnx"
    onnx.save(model, str(path))
    return path


def write_images(folder: Path, count: int, seed: int = 0, size=(40, 48)) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"img{index:04d}.png"
        image = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        if index % 7 == 3:
            image[:] = image[0, 0]  # flat images make tied maxima
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return Net.load(str(tiny_net_file(folder)), provider="cpu")


def brute_force(net, paths: list, layers: list, top: int, descending: bool = True) -> dict:
    """Every readable image on its own, every channel ranked by sorting all of them."""
    scores = {layer: [] for layer in layers}
    for index, path in enumerate(paths):
        image = cv2.imread(str(path))
        if image is None:
            continue
        outputs = net.forward([image])
        for layer in layers:
            value = outputs[layer][0]
            for channel, plane in enumerate(value):
                flat = plane.reshape(-1)
                where = int(np.argmax(flat))
                y, x = (None, None) if value.ndim == 1 else divmod(where, plane.shape[1])
                scores[layer].append((channel, float(flat[where]), index, y, x))
    ranked = {}
    for layer in layers:
        channels = net.layer(layer).shape[0]
        units = [[] for _ in range(channels)]
        for channel, value, index, y, x in scores[layer]:
            units[channel].append({"value": value, "image": index, "y": y, "x": x})
        sign = -1 if descending else 1
        ranked[layer] = [sorted(unit, key=lambda e: (sign * e["value"], e["image"]))[:top] for unit in units]
    return ranked


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_spatial_max_in_the_graph_equals_numpy_on_every_tensor(tmp_path, opset):
    net = Net.load(str(tiny_net_file(tmp_path, opset=opset)), provider="cpu")
    images = [cv2.imread(str(p)) for p in write_images(tmp_path / "images", 8)]
    batch = net.preprocess(images)
    layers = find.choose_layers(net, "all")
    scores, outputs = SpatialMax(net, layers).run(batch), net.forward(batch)
    for layer in layers:
        maxima, rows, columns = scores[layer]
        value = outputs[layer]
        if value.ndim == 2:
            assert rows is None and columns is None
            np.testing.assert_array_equal(maxima, value)
            continue
        np.testing.assert_array_equal(maxima, value.max(axis=(2, 3)))
        np.testing.assert_array_equal(rows, value.max(axis=3))
        np.testing.assert_array_equal(columns, value.max(axis=2))


def test_positions_from_row_and_column_maxima_are_the_first_or_unknown():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, (400, 3, 4)).astype(np.float32)  # small integers: many ties
    values[:50] = 3  # every position holds the max
    y, x = positions(values.max(axis=2), values.max(axis=1))
    where = values.reshape(len(values), -1).argmax(axis=1)  # numpy: the first of tied maxima
    held = values == values.max(axis=(1, 2))[:, None, None]
    open_ = (held.any(axis=2).sum(axis=1) > 1) & (held.any(axis=1).sum(axis=1) > 1)
    assert np.array_equal(y, where // 4)
    assert np.array_equal(x == UNKNOWN, open_) and open_[:50].all() and not open_.all()
    assert np.array_equal(x[~open_], (where % 4)[~open_])


def test_reduction_graph_does_not_depend_on_the_last_run(tiny):
    from app.net.spatial_max import reduction_model
    layers = find.choose_layers(tiny, "all")
    after_full_run = reduction_model(tiny, layers)
    tiny.forward(np.zeros((1,) + tiny.input_shape, np.float32), up_to=layers[0])   # a run of few tensors
    assert reduction_model(tiny, layers) == after_full_run


def test_top_k_ranks_nan_last_and_ties_by_image_across_batches():
    top = find.TopK(channels=2, k=2)
    top.add(np.array([[np.nan, 1.0], [0.5, 1.0]], np.float32), [0, 1])
    top.add(np.array([[0.75, 1.0], [0.25, 2.0]], np.float32), [2, 3])
    assert top.value[0].tolist() == [0.75, 0.5] and top.image[0].tolist() == [2, 1]
    assert top.value[1].tolist() == [2.0, 1.0] and top.image[1].tolist() == [3, 0]


def test_equals_brute_force_with_ties_minima_and_skipped_images(tiny, tmp_path):
    paths = write_images(tmp_path / "images", 23)
    (tmp_path / "images" / "img0005.png").write_bytes(b"not a png")
    layers = find.choose_layers(tiny, "all")
    assert layers == ["conv1", "relu1", "pool1", "conv2", "relu2", "gap", "fc"]
    job = find.FindMaxes(tiny, [str(p) for p in paths], layers, tmp_path / "out", top=4, minima=True,
                         batch=5, checkpoint_every=2)
    summary = job.run(progress=False)
    maxes = json.loads((tmp_path / "out" / "maxes.json").read_text())
    assert maxes["layers"] == brute_force(tiny, paths, layers, 4)
    assert maxes["layers_min"] == brute_force(tiny, paths, layers, 4, descending=False)
    assert maxes["skipped"] == [str(paths[5])] and maxes["skipped_count"] == 1
    assert [e["image"] for e in maxes["layers"]["relu1"][0]] == [0, 1, 2, 3]  # dead channel: ties by index
    assert summary == {key: value for key, value in maxes.items() if not key.startswith("layers")}


@pytest.mark.parametrize("checkpoint_every, budget_images, chunks", [(1, 1000, 4), (100, 5, 2)])
def test_channel_maxima_chunks_hold_every_readable_image(tiny, tmp_path, monkeypatch, checkpoint_every,
                                                         budget_images, chunks):
    paths = write_images(tmp_path / "images", 11)
    paths[2].write_bytes(b"")
    layers = ["relu2", "fc"]
    monkeypatch.setattr(find, "ROWS_BUDGET", budget_images * 4 * (16 + 10))  # float32 per channel
    maxes = find.FindMaxes(tiny, [str(p) for p in paths], layers, tmp_path / "out", batch=3,
                           checkpoint_every=checkpoint_every).run(progress=False)
    stats = maxes["stats"]
    assert stats["layers"] == layers and stats["images"] == 10 and len(stats["chunks"]) == chunks
    chunks = [read_npz(tmp_path / "out" / stats["folder"] / name) for name in stats["chunks"]]
    images = np.concatenate([chunk["image"] for chunk in chunks])
    assert images.tolist() == [i for i in range(11) if i != 2]
    relu2 = np.concatenate([chunk["l0"] for chunk in chunks])
    direct = tiny.forward([cv2.imread(str(paths[i])) for i in images])["relu2"].max(axis=(2, 3))
    np.testing.assert_array_equal(relu2, direct)


def test_list_file_with_labels_and_missing_files(tiny, tmp_path):
    paths = write_images(tmp_path / "images", 4)
    listing = tmp_path / "list.txt"
    listing.write_text("images/img0000.png 3\nimages/missing.png 1\n# comment\nimages/img0002.png cat\n")
    listed, labels = find.list_images(listing)
    assert listed == [str(paths[0].resolve()), str((tmp_path / "images" / "missing.png").resolve()),
                      str(paths[2].resolve())]
    find.FindMaxes(tiny, listed, ["fc"], tmp_path / "out", labels=labels, top=2).run(progress=False)
    maxes = json.loads((tmp_path / "out" / "maxes.json").read_text())
    assert maxes["labels"] == [3, 1, "cat"] and maxes["skipped_count"] == 1
    assert {e["image"] for e in maxes["layers"]["fc"][0]} == {0, 2}


def test_refuses_a_checkpoint_of_other_options_and_unscorable_layers(tiny, tmp_path):
    paths = [str(p) for p in write_images(tmp_path / "images", 3)]
    find.FindMaxes(tiny, paths, ["fc"], tmp_path / "out").run(progress=False)
    with pytest.raises(DeepVisError, match="other images, layers or options"):
        find.FindMaxes(tiny, paths, ["fc"], tmp_path / "out", top=3)
    with pytest.raises(DeepVisError, match="no such folder"):
        find.list_images(tmp_path / "nothing")


def run_tool(model: Path, images: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "tools.find_maxes", "--images", str(images), "--model", str(model),
               "--batch", "2", "--checkpoint-every", "1", "--min", "--cpu", "--quiet", "--out", str(out)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def checkpointed_images(out: Path, shard_images: int = 2) -> int:
    """Images of the shards a run has finished (a shard: --checkpoint-every batches of --batch)."""
    try:
        return shard_images * len(json.loads(str(read_npz(out / find.STATE_FILE)["state"]))["done"])
    except (OSError, ValueError, KeyError):
        return 0


def channel_maxima(out: Path) -> dict:
    stats = json.loads((out / "maxes.json").read_text())["stats"]
    chunks = [read_npz(out / stats["folder"] / name) for name in stats["chunks"]]
    return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}


def test_killed_half_way_and_restarted_ends_with_the_same_maxes(tmp_path):
    model = tiny_net_file(tmp_path, size=128, width=32)
    total = 240
    write_images(tmp_path / "images", total, size=(128, 128))
    whole = run_tool(model, tmp_path / "images", tmp_path / "whole")
    assert whole.wait(timeout=300) == 0, whole.stderr.read().decode()

    killed = run_tool(model, tmp_path / "images", tmp_path / "killed")
    deadline = time.monotonic() + 300
    while checkpointed_images(tmp_path / "killed") < total // 3 and killed.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert total // 3 <= checkpointed_images(tmp_path / "killed") < total
    assert not (tmp_path / "killed" / "maxes.json").exists()

    resumed = run_tool(model, tmp_path / "images", tmp_path / "killed")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    assert (tmp_path / "killed" / "maxes.json").read_bytes() == (tmp_path / "whole" / "maxes.json").read_bytes()
    first, second = channel_maxima(tmp_path / "whole"), channel_maxima(tmp_path / "killed")
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_units_leave_out_what_only_an_activation_reads(tiny):
    assert find.choose_layers(tiny) == find.choose_layers(tiny, "units") == ["relu1", "pool1", "relu2", "gap", "fc"]
    assert len(find.choose_layers(tiny, "all")) == 7


def test_a_changed_image_stops_the_run_instead_of_a_wrong_position(tiny, tmp_path, monkeypatch):
    paths = write_images(tmp_path / "images", 6)
    reads = {}

    def read_image(path):  # the second read of an image (to settle a tie) sees other pixels
        reads[path] = reads.get(path, 0) + 1
        image = cv2.imread(str(path))
        return 255 - image if reads[path] > 1 else image
    monkeypatch.setattr(find.image_sources, "read", read_image)
    job = find.FindMaxes(tiny, [str(p) for p in paths], ["relu1"], tmp_path / "out", top=6, batch=3)  # image 3: flat
    with pytest.raises(DeepVisError, match="layer relu1: a max differs from the one scored"):
        job.run(progress=False)


def default_net():
    return Net.load(provider="cpu")


def test_default_model_every_unit_on_a_few_photos(tmp_path):
    net = default_net()
    from app.inputs.samples import default_input_dir

    paths = sorted(default_input_dir(tmp_path / "photos").iterdir())[:5]
    layers = find.choose_layers(net)
    assert "head" in layers and "head.conv" not in layers and "fc" in layers
    find.FindMaxes(net, [str(p) for p in paths], layers, tmp_path / "out", top=3, batch=2).run(progress=False)
    maxes = json.loads((tmp_path / "out" / "maxes.json").read_text())
    assert maxes["model"] == "efficientnet-lite0"
    assert maxes["layers"] == brute_force(net, paths, layers, 3)


def test_convs_fuse_with_their_clamp_unless_an_average_pool_reads_it():
    from app.net.exact_fusion import SUFFIX
    from app.net.spatial_max import reduction_model
    net = default_net()
    barriers = {o.name for o in reduction_model(net, find.choose_layers(net)).graph.output}
    barriers = {name.replace(SUFFIX, "") for name in barriers if name.endswith(SUFFIX)}
    assert "head.conv" in barriers  # head feeds the global average pool
    assert not {"stem.conv", "blocks.1.0.expand.conv", "blocks.1.0.dw.conv"} & barriers


@pytest.mark.parametrize("name, prototxt", [("resnet50", "resnet50_deploy/ResNet-50-deploy.prototxt"),
                                            ("googlenet", "googlenet_deploy/deploy.prototxt"),
                                            ("mobilenet_v2", "mobilenet_v2_deploy/mobilenet_v2_deploy.prototxt")])
def test_equals_brute_force_on_other_graphs(testdata, tmp_path, monkeypatch, name, prototxt):
    """Residual adds after ReLUs (ResNet), concats and average pools (GoogLeNet), depthwise convs and
    linear bottlenecks (MobileNet v2): the fusions find_maxes lets ORT make leave every value as is,
    whether every unit is scored or a few (the others then fuse as ORT likes but for its barriers)."""
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    net = Net.load(str(testdata / prototxt), provider="cpu", random_weights=0)
    paths = write_images(tmp_path / "images", 3)
    units = find.choose_layers(net)
    for number, layers in enumerate([units, units[3::7]]):
        out = tmp_path / f"out{number}"
        find.FindMaxes(net, [str(p) for p in paths], layers, out, top=2, batch=2).run(progress=False)
        assert json.loads((out / "maxes.json").read_text())["layers"] == brute_force(net, paths, layers, 2)
