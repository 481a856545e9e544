"""The one image reader: limits checked from the header before decoding, and each documented
conversion (EXIF orientation, CMYK, 16 bits, gray + alpha, first frames) giving the right pixels."""
import io
import types

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from app.errors import DeepVisError
from app.net import image_file
from tests.corpus.make_corpus import picture, png_claiming


@pytest.fixture
def limits():
    """Restores the reader's limits after a test changes them."""
    saved = image_file._limits
    yield lambda **values: image_file.use_settings(types.SimpleNamespace(
        **{"image_max_pixels": 100_000_000, "image_max_file_bytes": 10 ** 9, **values}))
    image_file._limits = saved


def _rgb() -> Image.Image:
    return Image.fromarray(picture(30, 40)[:, :, ::-1])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_stands_the_picture_up_as_pillow_does(tmp_path, orientation):
    exif = _rgb().getexif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"   # PNG: lossless, so the pixels compare exactly
    _rgb().save(path, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))[:, :, ::-1]
    assert np.array_equal(image_file.read_image(path), expected)


def test_a_header_over_the_pixel_limit_is_refused_before_decoding(tmp_path, limits, monkeypatch):
    limits(image_max_pixels=1000)
    path = tmp_path / "claims.png"
    path.write_bytes(png_claiming(100, 11))
    monkeypatch.setattr(image_file.cv2, "imdecode", lambda *args: pytest.fail("decoded"))
    with pytest.raises(DeepVisError, match=r"claims\.png: 100 x 11 pixels, more than image_max_pixels = 1000"):
        image_file.read_image(path)


def test_the_file_size_limit_comes_from_the_settings(tmp_path, limits):
    path = tmp_path / "photo.png"
    path.write_bytes(cv2.imencode(".png", picture())[1].tobytes())
    limits(image_max_file_bytes=path.stat().st_size)
    assert image_file.read_image(path).shape == (24, 32, 3)
    limits(image_max_file_bytes=path.stat().st_size - 1)
    with pytest.raises(DeepVisError, match=r"photo\.png: \d+ bytes, more than image_max_file_bytes"):
        image_file.read_image(path)


@pytest.mark.parametrize("value", ["many", 0, -5, 1.5, True])
def test_limits_that_are_not_positive_whole_numbers_are_refused(limits, value):
    with pytest.raises(DeepVisError, match=rf"settings: image_max_pixels = {value!r} is not a positive whole number"):
        limits(image_max_pixels=value)


def test_cmyk_jpeg_becomes_the_same_colours(tmp_path):
    _rgb().convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    _rgb().save(tmp_path / "rgb.jpg", quality=95)
    difference = np.abs(image_file.read_image(tmp_path / "cmyk.jpg").astype(int)
                        - image_file.read_image(tmp_path / "rgb.jpg").astype(int))
    assert difference.mean() < 8


def test_gray_alpha_and_sixteen_bits_become_bgr_with_a_note(tmp_path):
    _rgb().convert("LA").save(tmp_path / "la.png")
    gray = image_file.read_image(tmp_path / "la.png")
    assert gray.shape == (30, 40, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    cv2.imwrite(str(tmp_path / "deep.png"), picture().astype(np.uint16) * 257)
    image, note = image_file.read_image_noted(tmp_path / "deep.png", "deep.png")
    assert np.array_equal(image, picture()) and note == "converted deep.png from 16-bit to 8-bit"


@pytest.mark.parametrize("suffix", [".gif", ".png", ".tif", ".webp"])
def test_animations_and_pages_give_their_first_frame_with_a_note(tmp_path, suffix):
    first, second = _rgb(), Image.fromarray(np.zeros((30, 40, 3), np.uint8))
    path = tmp_path / f"frames{suffix}"
    first.save(path, save_all=True, append_images=[second], **({"lossless": True} if suffix == ".webp" else {}))
    image, note = image_file.read_image_noted(path, path.name)
    assert image.mean() > 40   # the picture, not the black second frame
    assert note == f"{path.name}: first frame shown ({Image.open(path).format} with several frames)"


def test_a_name_with_a_nul_byte_is_one_line(tmp_path):
    with pytest.raises(DeepVisError, match="not a file name"):
        image_file.read_image(str(tmp_path / "a\0b.png"))


def test_the_old_address_reads_with_the_same_reader():
    from app.net import preprocess

    assert preprocess.read_image is image_file.read_image


def test_truncated_files_never_print_decoder_warnings(tmp_path, capfd):
    data = io.BytesIO()
    _rgb().save(data, "JPEG")
    path = tmp_path / "half.jpg"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(DeepVisError, match=r"half\.jpg: cannot decode"):
        image_file.read_image(path)
    assert capfd.readouterr().err == ""


def test_quiet_blocks_nest_and_overlap_and_restore_opencvs_log_level():
    import threading

    before = cv2.utils.logging.getLogLevel()
    inside = []

    def decode_quietly():
        for _ in range(50):
            with image_file.quiet_opencv():
                inside.append(cv2.utils.logging.getLogLevel())

    threads = [threading.Thread(target=decode_quietly) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(inside) == {cv2.utils.logging.LOG_LEVEL_SILENT}
    assert cv2.utils.logging.getLogLevel() == before
