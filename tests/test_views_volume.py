"""Activation volumes: NRRD and .npy files read back equal, and the rotating projection sees the
right voxels from the front and from the side."""
import gzip

import numpy as np
import pytest

from app.errors import DeepVisError
from app.views import volume
from views_nets import small_cnn


@pytest.fixture(scope="module")
def relu1(tmp_path_factory):
    net = small_cnn(tmp_path_factory.mktemp("volume"))
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return net.forward([image])["relu1"][0]


def test_exported_layer_reads_back_equal(relu1, tmp_path):
    nrrd, npy = volume.export_volume(relu1, tmp_path / "out" / "relu1", layer="relu1")
    assert nrrd.name == "relu1.nrrd" and npy.name == "relu1.npy"
    for path in (nrrd, npy):
        back = volume.read_volume(path)
        assert back.dtype == np.float32 and back.shape == (4, 16, 16)
        np.testing.assert_array_equal(back, relu1)


def test_nrrd_header_is_raw_little_endian_float_fastest_axis_first(tmp_path):
    data = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    path = volume.write_nrrd(tmp_path / "v.nrrd", data, content="conv\n1")
    raw = path.read_bytes()
    header, _, body = raw.partition(b"\n\n")
    lines = header.decode().splitlines()
    assert lines[0] == "NRRD0004"
    for field in ("type: float", "dimension: 3", "sizes: 5 3 2", "endian: little", "encoding: raw",
                  "content: conv 1"):
        assert field in lines
    assert body == data.astype("<f4").tobytes()


def test_gzip_big_endian_nrrd_from_another_writer(tmp_path):
    data = np.random.default_rng(1).normal(size=(3, 4)).astype(">f8")
    path = tmp_path / "other.nrrd"
    path.write_bytes(b"NRRD0005\n# made elsewhere\ntype: double\ndimension: 2\nsizes: 4 3\n"
                     b"endian: big\nencoding: gzip\nspace:=ignored\n\n" + gzip.compress(data.tobytes()))
    np.testing.assert_array_equal(volume.read_nrrd(path), data)


def test_vector_layer_is_a_thin_volume(tmp_path):
    nrrd, _ = volume.export_volume(np.arange(5, dtype=np.float32), tmp_path / "fc")
    assert volume.read_nrrd(nrrd).shape == (5, 1, 1)


@pytest.mark.parametrize("content, message", [
    (b"P6\n", "not a NRRD file"),
    (b"NRRD0004\ntype: float\ndimension: 1\nsizes: 4\nencoding: ascii\n\n1 2 3 4", "encoding 'ascii'"),
    (b"NRRD0004\ntype: float\ndimension: 1\nsizes: 4\nencoding: raw\n\n\0\0\0\0", "holds 4 bytes, 16 expected"),
    (b"NRRD0004\ntype: block\ndimension: 1\nsizes: 4\nencoding: raw\n\n", "type 'block'"),
    (b"NRRD0004\ntype: float\ndimension: 1\nsizes: 4\n", "no blank line"),
])
def test_bad_nrrd_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.nrrd"
    path.write_bytes(content)
    with pytest.raises(DeepVisError, match=message):
        volume.read_nrrd(path)


def screen_pixel(coordinate: float, size: int) -> int:
    """Screen pixel of a world coordinate in [-1, 1] (the cube is drawn inside +-sqrt 3)."""
    return int(round((coordinate / np.sqrt(3) + 1) / 2 * (size - 1)))


def test_projection_front_view_is_the_maximum_over_channels_and_side_view_shows_channels():
    data = np.zeros((8, 4, 4), np.float32)
    data[6, 1, 2] = 1.0   # channel 6, row 1, column 2
    data[2, 3, 0] = 0.5
    size = 101
    front, hit = volume.projection(data, angle=0, elevation=0, size=size)
    centre = lambda index, count: -1 + (2 * index + 1) / count  # a voxel's centre in the cube
    assert front[screen_pixel(centre(1, 4), size), screen_pixel(centre(2, 4), size)] == 1.0
    assert front[screen_pixel(centre(3, 4), size), screen_pixel(centre(0, 4), size)] == 0.5
    assert front[screen_pixel(centre(0, 4), size), screen_pixel(centre(0, 4), size)] == 0.0
    assert hit[size // 2, size // 2] and not hit[0, 0]
    side, _ = volume.projection(data, angle=90, elevation=0, size=size)
    row = screen_pixel(centre(1, 4), size)
    bright_columns = np.flatnonzero(side[row] == 1.0)
    # turned 90 degrees the horizontal axis runs along the channels (u = -z): channel 6 of 8 spans
    # z in [0.5, 0.75], so columns of u in [-0.75, -0.5]
    assert screen_pixel(-centre(6, 8), size) in bright_columns
    assert bright_columns.min() >= screen_pixel(-0.75, size) - 1
    assert bright_columns.max() <= screen_pixel(-0.5, size) + 1


def test_mip_image_of_a_wide_layer(relu1):
    many_channels = np.random.default_rng(2).uniform(size=(700, 5, 5)).astype(np.float32)
    for activation in (relu1, many_channels):
        image = volume.mip_image(activation, angle=35, size=120)
        assert image.shape == (120, 120, 3) and image.dtype == np.uint8
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10
    with pytest.raises(DeepVisError, match="C x H x W"):
        volume.mip_image(np.zeros(5), 0)
