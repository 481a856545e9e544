"""Receptive-field crops of the top images, backward passes cropped alike, montages, sprites, resume."""
import json
import re

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.net import Net
from app.net.preprocess import image_layout
from app.offline import crops, montage, progress
from app.offline.maxes import read_maxes
from app.unit_images import crop_path, montage_path, sprite_path, unit_dir
from tools import crop_max_patches
from views_nets import small_cnn

TOP = 3


class Field:
    """A receptive field given by size / stride / padding, as app.net.receptive_field describes one."""

    def __init__(self, size, stride, padding):
        self.size, self.stride, self.padding = size, stride, padding

    def box(self, y, x):
        y0, x0 = y * self.stride - self.padding, x * self.stride - self.padding
        return (y0, y0 + self.size, x0, x0 + self.size)


CONV1 = Field(5, 1, 2)  # small_cnn's conv1: 5 x 5 kernel, pad 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crops")
    net = small_cnn(folder)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(4):
        path = folder / f"image_{index}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        paths.append(path.name)  # relative: resolved against maxes.json's folder
    maxes = {"model": str(net.path), "images": paths, "layers": {}}
    values = net.forward([cv2.imread(str(folder / p)) for p in paths])
    for layer in ("conv1", "fc"):
        value = values[layer]
        units = []
        for unit in range(value.shape[1]):
            plane = value[:, unit].reshape(len(paths), -1)
            best = np.argsort(-plane.max(axis=1), kind="stable")[:TOP]
            entries = []
            for image in best:
                flat = int(plane[image].argmax())
                y, x = divmod(flat, value.shape[-1]) if value.ndim == 4 else (None, None)
                entries.append({"value": float(plane[image].max()), "image": int(image), "y": y, "x": x})
            units.append(entries)
        maxes["layers"][layer] = units
    (folder / "maxes.json").write_text(json.dumps(maxes))
    return net, folder / "maxes.json", read_maxes(folder / "maxes.json")


def test_crop_is_zero_padded_where_the_box_leaves_the_image():
    image = np.arange(1, 17, dtype=np.uint8).reshape(4, 4)
    out = crops.crop(image, (-1, 2, 2, 6))
    assert out.shape == (3, 4)
    assert (out[0] == 0).all() and (out[:, 2:] == 0).all()
    np.testing.assert_array_equal(out[1:, :2], image[0:2, 2:4])


def test_raw_view_maps_zero_to_gray_and_the_peak_to_white():
    picture = crops.render_raw(np.array([[[-2.0, 0.0, 4.0]]]), percentile=100)
    assert picture.tolist() == [[[64, 128, 255]]]


def test_raw_view_saturates_a_hot_pixel_instead_of_graying_the_rest():
    diff = np.full((20, 20, 3), -1.0)
    diff[0, 0, 0] = 500.0
    picture = crops.render_raw(diff)
    assert picture[0, 0, 0] == 255 and picture[1:].max() == 0


def test_an_all_zero_crop_is_a_marked_tile():
    picture = crops.render_raw(np.zeros((32, 32, 3)))
    assert crops.is_all_zero_tile(picture)
    assert (picture == 128).all(axis=2).mean() < 0.95          # a visible cross, not flat gray
    assert not crops.is_all_zero_tile(crops.render_raw(np.full((32, 32, 3), 1e-9)))


def as_image(diff, net):
    """An input diff laid out like the image the net saw."""
    return image_layout(diff, net.spec.input.channel_swap, net.spec.input.transpose)


def test_image_layout_undoes_the_channel_swap(setup):
    net = setup[0]
    diff = np.stack([np.full((2, 3), c, np.float32) for c in (0, 1, 2)])  # net order R, G, B
    bgr = as_image(diff, net)
    assert bgr.shape == (2, 3, 3) and bgr[0, 0].tolist() == [2, 1, 0]


def test_max_crops_are_the_receptive_field_of_the_image_the_net_saw(setup):
    net, _, maxes = setup
    entries = crops.unit_entries(maxes, "conv1", 1)
    result = crops.crop_entries(net, maxes, "conv1", entries, ["maxim"], CONV1)
    for entry, picture in zip(entries, result["maxim"]):
        seen = net.deprocess(net.preprocess([cv2.imread(maxes["images"][entry.image])]))[0]
        np.testing.assert_array_equal(picture, crops.crop(seen, CONV1.box(entry.y, entry.x)))


def test_backprop_crop_of_a_first_layer_unit_is_its_filter(setup):
    net, _, maxes = setup
    weights = net.initializers["w1"]
    entries = [crops.Entry(unit=2, rank=0, value=0.0, image=0, y=8, x=7)]
    picture = crops.crop_entries(net, maxes, "conv1", entries, ["backprop", "deconv", "guided"], CONV1)
    filter_bgr = weights[2].transpose(1, 2, 0)[:, :, ::-1]
    for kind in ("backprop", "deconv", "guided"):  # nothing to rectify below conv1: all three agree
        np.testing.assert_array_equal(picture[kind][0], crops.render_raw(filter_bgr))


def test_batched_crops_equal_one_at_a_time(setup):
    net, _, maxes = setup
    entries = crops.unit_entries(maxes, "conv1", 0) + crops.unit_entries(maxes, "conv1", 3)
    together = crops.crop_entries(net, maxes, "conv1", entries, crops.KINDS, CONV1)
    for index, entry in enumerate(entries):
        alone = crops.crop_entries(net, maxes, "conv1", [entry], crops.KINDS, CONV1)
        for kind in crops.KINDS:
            assert np.abs(together[kind][index].astype(int) - alone[kind][0].astype(int)).max() <= 1


def test_crop_layer_writes_crops_montages_info_and_sprites_and_resumes(setup, tmp_path):
    net, _, maxes = setup
    ran = crops.crop_layer(net, maxes, "conv1", tmp_path, CONV1, batch=4, progress=False)
    assert ran == [0, 1, 2, 3]
    for kind in crops.KINDS:
        assert cv2.imread(str(crop_path(tmp_path, "conv1", 3, kind, TOP - 1))).shape == (5, 5, 3)
        assert cv2.imread(str(montage_path(tmp_path, "conv1", 3, kind))).shape == (3 * 5 + 4, 3 * 5 + 4, 3)
        assert cv2.imread(str(sprite_path(tmp_path, "conv1", kind))).shape == (2 * 96 + 2, 2 * 96 + 2, 3)
    info = json.loads((unit_dir(tmp_path, "conv1", 1) / "info.json").read_text())
    first = maxes["layers"]["conv1"][1][0]
    assert info["kinds"] == list(crops.KINDS) and len(info["entries"]) == TOP
    assert info["entries"][0]["value"] == first["value"]
    assert info["entries"][0]["box"] == list(CONV1.box(first["y"], first["x"]))
    assert info["entries"][0]["image"].endswith(f"image_{first['image']}.png")
    (unit_dir(tmp_path, "conv1", 2) / "info.json").unlink()
    assert crops.crop_layer(net, maxes, "conv1", tmp_path, CONV1, progress=False) == [2]


def test_info_lists_the_all_zero_backward_crops(setup, tmp_path):
    net, _, maxes = setup
    entries = crops.unit_entries(maxes, "conv1", 0)
    zero, signal = crops.render_raw(np.zeros((5, 5, 3))), crops.render_raw(np.ones((5, 5, 3)))
    pictures = {"maxim": [signal] * TOP, "deconv": [signal, zero, zero], "guided": [signal] * TOP}
    crops._write_unit(net, maxes, "conv1", tmp_path, 0, entries, pictures, CONV1)
    info = json.loads((unit_dir(tmp_path, "conv1", 0) / "info.json").read_text())
    assert info["all_zero"] == {"deconv": [1, 2]}


def test_unit_groups_keep_units_whole_within_the_batch(setup):
    maxes = setup[2]
    groups = list(crops.unit_groups(maxes, "conv1", [0, 1, 2, 3], batch=7))
    assert [[unit for unit, _ in group] for group in groups] == [[0, 1], [2, 3]]
    assert [len(list(crops.unit_groups(maxes, "conv1", [0, 1, 2, 3], batch=1)))] == [4]


def test_unit_groups_count_net_input_rows_when_entries_share_them(setup):
    net, _, maxes = setup
    packing = crops.layer_packing(net, "conv1", CONV1)
    groups = list(crops.unit_groups(maxes, "conv1", [0, 1, 2, 3], 2, packing, CONV1, (16, 16)))
    assert sum(len(group) for group in groups) == 4 and len(groups) < 4  # 3 entries a unit, > 2 a group
    for group in groups:
        check = crops.layer_packing(net, "conv1", CONV1)
        for _, entries in group:
            for e in entries:
                check.place(CONV1.box(e.y, e.x), (e.y, e.x))
        assert len(check.rows) <= 2 and sum(len(entries) for _, entries in group) <= crops.ENTRIES_PER_ROW * 2


def test_montage_lays_out_nine_cells_even_with_fewer_crops():
    tiles = [np.full((4, 4, 3), 50 * (i + 1), np.uint8) for i in range(4)]
    picture = montage.unit_montage(tiles)
    assert picture.shape == (3 * 4 + 4, 3 * 4 + 4, 3)
    assert picture[0, 0, 0] == 50 and picture[0, 6, 0] == 100 and picture[6, 0, 0] == 200
    assert (picture[-4:, -4:] == 0).all()


def test_tool_on_a_vector_layer_crops_whole_images(setup, tmp_path, capsys):
    net, path, maxes = setup
    crop_max_patches.main(["--maxes", str(path), "--layers", "fc", "--modes", "maxim,guided", "--cpu",
                           "--out", str(tmp_path)])
    assert "fc: cropped 5 units, 0 already done" in capsys.readouterr().out
    first = maxes["layers"]["fc"][4][0]
    whole = net.deprocess(net.preprocess([cv2.imread(maxes["images"][first["image"]])]))[0]
    np.testing.assert_array_equal(cv2.imread(str(crop_path(tmp_path, "fc", 4, "maxim", 0))), whole)
    assert cv2.imread(str(crop_path(tmp_path, "fc", 4, "guided", 0))).std() > 0
    assert not crop_path(tmp_path, "fc", 4, "deconv", 0).exists()


def test_tool_on_a_map_layer_uses_the_graphs_receptive_fields(setup, tmp_path):
    net, path, maxes = setup
    crop_max_patches.main(["--maxes", str(path), "--layers", "conv1", "--modes", "maxim", "--units", "0,2",
                           "--cpu", "--out", str(tmp_path)])
    assert not (unit_dir(tmp_path, "conv1", 1) / "info.json").exists()
    info = json.loads((unit_dir(tmp_path, "conv1", 0) / "info.json").read_text())
    first = maxes["layers"]["conv1"][0][0]
    assert info["entries"][0]["box"] == list(CONV1.box(first["y"], first["x"]))


def test_tool_errors_are_one_line(setup, tmp_path, capsys):
    _, path, _ = setup
    with pytest.raises(SystemExit):
        crop_max_patches.main(["--maxes", str(path), "--layers", "fc", "--modes", "maxim,sketch", "--cpu",
                               "--out", str(tmp_path)])
    assert capsys.readouterr().err.strip() == ("error: fc: unknown mode(s) sketch; choose from "
                                               "maxim, deconv, guided, backprop")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(DeepVisError, match="bad.json: not a maxes.json"):
        read_maxes(bad)


def test_find_maxes_then_crop_max_patches(setup, tmp_path, capsys):
    from tools import find_maxes

    net, path, _ = setup
    images = tmp_path / "images"
    images.mkdir()
    for index in range(4):
        cv2.imwrite(str(images / f"{index}.png"), cv2.imread(str(path.parent / f"image_{index}.png")))
    out = tmp_path / "out"
    find_maxes.main(["--images", str(images), "--model", str(net.path), "--layers", "conv1,fc", "--top", "3",
                     "--no-stats", "--cpu", "--out", str(out)])
    crop_max_patches.main(["--maxes", str(out / "maxes.json"), "--cpu", "--out", str(out)])
    maxes = read_maxes(out / "maxes.json")
    for layer in ("conv1", "fc"):
        info = json.loads((unit_dir(out, layer, 1) / "info.json").read_text())
        assert [e["value"] for e in info["entries"]] == [e["value"] for e in maxes["layers"][layer][1]]
        assert cv2.imread(str(montage_path(out, layer, 1, "guided"))).shape[:2] == (
            (3 * 5 + 4, 3 * 5 + 4) if layer == "conv1" else (3 * 16 + 4, 3 * 16 + 4))
    assert "conv1: cropped 4 units" in capsys.readouterr().out


def test_a_field_that_fits_is_cropped_as_it_is():
    assert crops.placement((-2, 3, 10, 15), (16, 16)) is None


def test_a_field_larger_than_the_image_shows_its_part_inside_scaled_to_fill_the_tile():
    # 24 x 24 field on a 16 x 16 image, running off the top and left: the inside part is 14 x 14,
    # scaled by 16 / 14; the field's centre, pixel 1.5, lands at (1.5 + 0.5) * 16 / 14 - 0.5
    place = crops.placement((-10, 14, -10, 14), (16, 16))
    assert place.source == (0, 14, 0, 14) and place.tile == (16, 16) and place.target == (0, 16, 0, 16)
    assert place.centre == pytest.approx((2 * 16 / 14 - 0.5,) * 2)
    # running off the top only: the black band is at the top, where the field leaves the image
    tall = crops.placement((-8, 16, 0, 16), (16, 16))
    assert tall.source == (0, 16, 0, 16) and tall.target == (0, 16, 0, 16)
    off_top = crops.placement((-20, 4, 0, 24), (16, 16))
    assert off_top.source == (0, 4, 0, 16) and off_top.target == (12, 16, 0, 16)


def test_scaled_crop_keeps_the_image_and_marks_the_centre_where_the_field_is():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:8, :8] = 200  # the top-left quarter bright
    place = crops.placement((-14, 10, -14, 10), (16, 16))  # inside part: rows / columns 0-9
    picture = crops.shown(image, (-14, 10, -14, 10), place)
    assert picture.shape == (16, 16, 3)
    assert picture[:12, :12].mean() > 190 and picture[14:, 14:].max() == 0  # 8 of 10 rows -> 12.8 of 16
    place = crops.placement((-10, 14, -10, 14), (16, 16))
    marked = crops.mark_centre(picture.copy(), place)
    assert (marked != picture).any(axis=2).sum() > 8
    y, x = (int(round(v)) for v in place.centre)
    assert marked[y, x].tolist() == picture[y, x].tolist()  # a ring: the centre pixel itself stays


def test_marker_is_visible_on_white_and_on_black():
    place = crops.placement((-100, 124, -100, 124), (24, 24))
    for level in (0, 255):
        plain = np.full((24, 24, 3), level, np.uint8)
        marked = crops.mark_centre(plain.copy(), place)
        gray = marked.mean(axis=2)
        assert np.percentile(gray, 99) - np.percentile(gray, 1) > 100


class WideField(Field):
    """A field three times the 16 px image: every crop of small_cnn's conv1 shown as a large field."""

    def box(self, y, x):
        return (y - 24, y + 24, x - 24, x + 24)


def test_backward_crops_of_a_large_field_share_the_max_crops_placement(setup):
    net, _, maxes = setup
    entries = crops.unit_entries(maxes, "conv1", 1)
    result = crops.crop_entries(net, maxes, "conv1", entries, crops.KINDS, WideField(0, 0, 0))
    for index, entry in enumerate(entries):
        place = crops.placement(WideField(0, 0, 0).box(entry.y, entry.x), (16, 16))
        seen = net.deprocess(net.preprocess([cv2.imread(maxes["images"][entry.image])]))[0]
        np.testing.assert_array_equal(result["maxim"][index], crops.mark_centre(
            crops.shown(seen, WideField(0, 0, 0).box(entry.y, entry.x), place), place))
        diff = crops.backward_diffs(net.forward([seen]), "conv1", [entry], "grad")[0]
        expected = crops.render_raw(crops.shown(as_image(diff, net),
                                                WideField(0, 0, 0).box(entry.y, entry.x), place))
        np.testing.assert_array_equal(result["backprop"][index], crops.mark_centre(expected, place))
        assert all(result[kind][index].shape == (16, 16, 3) for kind in crops.KINDS)


def test_crops_of_several_layers_equal_those_after_a_full_forward(setup):
    net, path, maxes = setup
    fresh = Net.load(str(net.path), provider="cpu")
    for layer, field in (("conv1", CONV1), ("fc", None), ("conv1", CONV1)):
        entries = crops.unit_entries(maxes, layer, 2)
        partial = crops.crop_entries(fresh, maxes, layer, entries, crops.KINDS, field)
        for index, entry in enumerate(entries):
            run = fresh.forward([cv2.imread(maxes["images"][entry.image])])  # every tensor
            diff = crops.backward_diffs(run, layer, [entry], "guided")[0]
            box = crops.box_of(entry, field, fresh.input_shape[1:])
            expected = crops.render_raw(crops.crop(as_image(diff, fresh), box))
            np.testing.assert_array_equal(partial["guided"][index], expected)
            assert np.abs(diff).max() > 0


def test_info_says_which_part_of_the_input_a_large_field_shows(setup, tmp_path):
    net, _, maxes = setup
    crops.crop_layer(net, maxes, "conv1", tmp_path, WideField(0, 0, 0), kinds=["maxim"], units=[0], progress=False)
    info = json.loads((unit_dir(tmp_path, "conv1", 0) / "info.json").read_text())
    entry = info["entries"][0]
    y, x = entry["y"], entry["x"]
    assert entry["box"] == [y - 24, y + 24, x - 24, x + 24]
    assert entry["shown"] == [max(y - 24, 0), min(y + 24, 16), max(x - 24, 0), min(x + 24, 16)]
    assert cv2.imread(str(crop_path(tmp_path, "conv1", 0, "maxim", 0))).shape == (16, 16, 3)


def test_a_long_run_prints_its_estimate_first(setup, tmp_path, capsys):
    net, _, maxes = setup
    crops.crop_layer(net, maxes, "conv1", tmp_path, CONV1, kinds=["maxim"], batch=1, progress=True)
    line = next(line for line in capsys.readouterr().err.splitlines() if "s/unit" in line)
    assert re.fullmatch(r"conv1: 4 units x ~[0-9.e-]+ s/unit = ~\d+ s", line.split("\r")[-1].strip()), line


def test_estimate_line_reads_in_minutes_and_hours():
    assert progress.estimate_line(1280, 0.9) == "1280 units x ~0.9 s/unit = ~19 min"
    assert progress.estimate_line(10000, 2.0) == "10000 units x ~2 s/unit = ~5.6 h"


def test_entries_whose_fields_do_not_overlap_share_input_rows_and_crop_as_alone(setup):
    net, _, maxes = setup
    assert [slot[:2] for slot in crops.slots(CONV1, (16, 16), (16, 16))] == [(y, x) for y in (2, 7, 12)
                                                                            for x in (2, 7, 12)]
    entries = [e for unit in range(4) for e in crops.unit_entries(maxes, "conv1", unit)]
    boxes = [CONV1.box(e.y, e.x) for e in entries]
    load = crops.image_inputs(net, maxes)
    packing = crops.Packing(crops.slots(CONV1, (16, 16), (16, 16)), (16, 16))
    spots = [packing.place(box, (e.y, e.x)) for e, box in zip(entries, boxes)]
    batch = crops.packed_inputs([load(e.image) for e in entries], boxes, spots, (16, 16))
    assert len(batch) == len(packing.rows) < len(entries)
    for row in range(len(batch)):  # no two fields of a row overlap
        fields = [spot[-1] for spot in spots if spot[0] == row]
        cover = np.zeros((20, 20), int)
        for y0, y1, x0, x1 in fields:
            cover[max(y0, 0):y1, max(x0, 0):x1] += 1
        assert cover.max() == 1
    packed = crops.crop_entries(net, maxes, "conv1", entries, crops.KINDS, CONV1)
    run = net.forward(np.stack([load(e.image) for e in entries]))  # one row per entry, every tensor
    for kind, mode in crops.BACKWARD_MODES.items():
        for index, diff in enumerate(crops.backward_diffs(run, "conv1", entries, mode)):
            alone = crops.render_raw(crops.crop(as_image(diff, net), boxes[index]))
            assert np.abs(alone.astype(int) - packed[kind][index].astype(int)).max() <= 1


def test_a_field_with_room_for_one_slot_is_run_a_row_per_entry(setup):
    net, _, maxes = setup
    large = Field(9, 1, 4)  # 9 px on 16: one field inside at a time
    assert len(crops.slots(large, (16, 16), (16, 16))) == 1
    entries = crops.unit_entries(maxes, "conv1", 0)
    result = crops.crop_entries(net, maxes, "conv1", entries, ["maxim", "guided"], large)
    assert [picture.shape for picture in result["guided"]] == [(9, 9, 3)] * len(entries)


def squeeze_excitation_net(folder):
    """data (3 x 16 x 16) -> conv 3x3 -> relu -> times sigmoid(global average of relu): "se" mixes
    every position through the global pool."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from test_autodiff_support import make_model

    rng = np.random.default_rng(5)
    weights = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["data", "w"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
             helper.make_node("Sigmoid", ["pooled"], ["gate"]),
             helper.make_node("Mul", ["relu", "gate"], ["se"])]
    graph = helper.make_graph(nodes, "se", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("se", TensorProto.FLOAT, None)], [weights])
    path = folder / "se.onnx"
    onnx.save(make_model(graph), str(path))
    return Net.load(path, provider="cpu", input=dict(mean=0.0, input_scale=1 / 255, raw_scale=255.0))


def test_entries_after_a_global_pool_get_rows_of_their_own(setup, tmp_path):
    _, maxes_path, maxes = setup
    net = squeeze_excitation_net(tmp_path)
    assert crops.spatially_local(net, "relu") and not crops.spatially_local(net, "se")
    field = Field(3, 1, 1)
    load = crops.image_inputs(net, maxes)
    alone = net.forward(np.stack([load(image) for image in range(3)]))
    peaks = [divmod(int(alone["se"][image, 0].argmax()), 16) for image in range(3)]
    entries = [crops.Entry(0, image, 1.0, image, y, x) for image, (y, x) in enumerate(peaks)]
    assert min(alone["se"][image, 0, y, x] for image, (y, x) in enumerate(peaks)) > 0.1
    for layer, shared in (("relu", True), ("se", False)):
        packing = crops.layer_packing(net, layer, field)
        boxes = [field.box(e.y, e.x) for e in entries]
        spots = [packing.place(box, (e.y, e.x)) for e, box in zip(entries, boxes)]
        assert (len(packing.rows) < len(entries)) == shared, layer
        if shared:   # each unit's value in the shared rows as in its own image
            rows = net.forward(crops.packed_inputs([load(e.image) for e in entries], boxes, spots, (16, 16)))[layer]
            for entry, spot in zip(entries, spots):
                assert rows[spot[0], 0, spot[1], spot[2]] == pytest.approx(alone[layer][entry.image, 0, entry.y, entry.x])
    # the crops of entries after the global pool are those of each image run alone
    together = crops.crop_entries(net, maxes, "se", entries, ["backprop"], field)["backprop"]
    for entry, picture in zip(entries, together):
        diff = crops.backward_diffs(net.forward(load(entry.image)[None]), "se", [entry], "grad")[0]
        expected = crops.render_raw(crops.crop(as_image(diff, net), field.box(entry.y, entry.x)))
        np.testing.assert_array_equal(picture, expected)
