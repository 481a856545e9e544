"""Input sources: files, lists, video, a stub camera, open_source and fit_to_input."""
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.inputs import (CameraSource, DirectorySource, ImageFileSource, ImageListSource,
                        SiameseListSource, VideoSource, default_input_dir, fit_to_input, open_source)
from app.inputs import files as files_module


def write_image(path, value, size=(30, 40)):
    """A flat image whose pixels all equal ``value`` (so a frame can be recognised)."""
    cv2.imwrite(str(path), np.full((size[0], size[1], 3), value, np.uint8))
    return path


def wait_for(read, timeout=2.0):
    """Poll ``read`` until it returns something (for sources fed by their own thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = read()
        if frame is not None:
            return frame
        time.sleep(0.005)
    raise AssertionError("no frame within the timeout")


# --- fit_to_input ------------------------------------------------------------------------------

def striped(height, width):
    """Red left quarter, blue right quarter, green middle: shows what a crop kept."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 4] = (0, 0, 255)
    image[:, width // 4: 3 * width // 4] = (0, 255, 0)
    image[:, 3 * width // 4:] = (255, 0, 0)
    return image


def test_crop_keeps_the_models_aspect_ratio_not_a_square():
    fitted = fit_to_input(striped(300, 1200), (240, 320), "crop")   # 4:1 image, 4:3 model
    assert fitted.shape == (240, 320, 3)
    # a 400-wide centre window of a 1200-wide image holds only the green middle
    assert (fitted[:, :, 1] == 255).all()


def test_stretch_keeps_everything():
    fitted = fit_to_input(striped(300, 1200), (224, 224), "stretch")
    assert fitted.shape == (224, 224, 3)
    assert fitted[100, 5, 2] == 255 and fitted[100, 218, 0] == 255


def test_crop_of_a_tall_image_cuts_top_and_bottom():
    image = np.zeros((400, 100, 3), np.uint8)
    image[150:250] = 200
    fitted = fit_to_input(image, (50, 50), "crop")
    assert fitted.shape == (50, 50, 3) and (fitted == 200).all()


def test_unknown_fit_mode_names_the_setting():
    with pytest.raises(DeepVisError, match="input_fit_mode"):
        fit_to_input(striped(10, 10), (5, 5), "squash")


# --- directory ---------------------------------------------------------------------------------

@pytest.fixture
def messy_folder(tmp_path):
    """Good images in natural order 2 < 10, plus a corrupt jpg, a text file and a 16-bit PNG."""
    write_image(tmp_path / "img10.png", 10)
    write_image(tmp_path / "img2.png", 2)
    (tmp_path / "img3_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "img4_notes.txt").write_text("not an image")
    cv2.imwrite(str(tmp_path / "img5_deep.png"), np.full((20, 20), 65535 // 3, np.uint16))
    write_image(tmp_path / ".hidden.png", 99)
    return tmp_path


def test_directory_is_sorted_naturally_and_skips_hidden_files(messy_folder):
    source = DirectorySource(messy_folder)
    assert [entry.name for entry in source.entries] == [
        "img2.png", "img3_corrupt.jpg", "img4_notes.txt", "img5_deep.png", "img10.png"]


def test_directory_skips_unreadable_files_with_a_message_and_converts_16_bit(messy_folder):
    source = DirectorySource(messy_folder)
    first = source.read()
    assert first.name == "img2.png" and first.image[0, 0, 0] == 2 and first.message == ""
    assert (first.index, first.count) == (0, 5)
    source.next()
    deep = source.read()
    assert deep.name == "img5_deep.png" and deep.index == 3
    assert "skipped img3_corrupt.jpg: cannot decode" in deep.message
    assert "skipped img4_notes.txt: cannot decode" in deep.message
    assert "converted img5_deep.png from 16-bit to 8-bit" in deep.message
    assert deep.image.dtype == np.uint8 and deep.image.shape == (20, 20, 3)
    assert deep.image[0, 0, 0] == 65535 // 3 // 257


def test_directory_wraps_and_skips_backwards_when_going_back(messy_folder):
    source = DirectorySource(messy_folder)
    source.read()
    source.previous()
    assert source.read().name == "img10.png"       # wrapped from the first to the last
    source.previous()
    source.previous()                               # img5 -> img4 (unreadable): skip on down
    frame = source.read()
    assert frame.name == "img2.png" and "img3_corrupt.jpg" in frame.message
    source.next()
    assert source.read().name == "img5_deep.png"


def test_images_are_decoded_only_when_the_position_changes(messy_folder, monkeypatch):
    decoded = []
    real = files_module.read_image_noted
    monkeypatch.setattr(files_module, "read_image_noted", lambda path, name: decoded.append(name) or real(path, name))
    source = DirectorySource(messy_folder)
    assert source.read() is not None
    assert source.read() is None and source.read() is None
    assert decoded == ["img2.png"]
    source.reshow()
    assert source.read().name == "img2.png"


def test_directory_regex_filter(messy_folder):
    source = DirectorySource(messy_folder, regex=r"^img\d+\.png$")
    assert [entry.name for entry in source.entries] == ["img2.png", "img10.png"]
    with pytest.raises(DeepVisError, match="no files matching"):
        DirectorySource(messy_folder, regex=r"\.bmp$")
    with pytest.raises(DeepVisError, match="input_directory_regex"):
        DirectorySource(messy_folder, regex="(")


def test_a_folder_without_one_readable_image_gives_a_frame_without_an_image(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.jpg").write_bytes(b"")
    frame = DirectorySource(tmp_path).read()
    assert "no readable image" in frame.message
    assert frame.waiting and frame.images == ()   # the app shows the message, the net never sees it


def test_a_single_image_file(tmp_path):
    source = ImageFileSource(write_image(tmp_path / "one.png", 7))
    frame = source.read()
    assert frame.name == "one.png" and frame.image[0, 0, 0] == 7 and frame.count == 1
    source.next()
    assert source.read().image[0, 0, 0] == 7


# --- image and siamese lists -------------------------------------------------------------------

def test_image_list_relative_paths_labels_quotes_comments(tmp_path):
    (tmp_path / "pics").mkdir()
    write_image(tmp_path / "pics" / "a.png", 1)
    write_image(tmp_path / "pics" / "my photo.png", 2)
    write_image(tmp_path / "abs.png", 3)
    listing = tmp_path / "lists" / "val.txt"
    listing.parent.mkdir()
    listing.write_text("# path label\n"
                       "../pics/a.png 281\n"
                       "\n"
                       '"../pics/my photo.png" tabby cat, tabby\n'
                       f"{tmp_path / 'abs.png'}\n"
                       "../pics/missing.png 5\n")
    source = ImageListSource(listing)
    frames = []
    for _ in range(4):
        frames.append(source.read())
        source.next()
    assert [f.label for f in frames] == [281, "tabby cat, tabby", None, 281]
    assert [f.image[0, 0, 0] for f in frames] == [1, 2, 3, 1]
    assert frames[1].name == "../pics/my photo.png"
    assert "skipped missing.png" in frames[3].message      # the 4th line is gone: wrapped to the 1st


def test_siamese_list_gives_two_images(tmp_path):
    for value in (1, 2, 3, 4):
        write_image(tmp_path / f"{value}.png", value)
    listing = tmp_path / "pairs.txt"
    listing.write_text("1.png 2.png same\n3.png 4.png 0\n")
    source = open_source(str(listing))
    assert isinstance(source, SiameseListSource)
    first = source.read()
    assert len(first.images) == 2 and first.label == "same" and first.name == "1.png | 2.png"
    assert [image[0, 0, 0] for image in first.images] == [1, 2]
    source.next()
    assert source.read().label == 0


def test_a_siamese_line_with_one_path_is_refused(tmp_path):
    listing = tmp_path / "pairs.txt"
    listing.write_text("1.png 2.png\n3.png\n")
    with pytest.raises(DeepVisError, match="line 2: expected 2 image paths"):
        SiameseListSource(listing)


def test_a_list_with_labels_is_not_mistaken_for_a_siamese_list(tmp_path):
    write_image(tmp_path / "a.png", 1)
    listing = tmp_path / "list.txt"
    listing.write_text("a.png n01440764\na.png 3\n")
    assert isinstance(open_source(str(listing)), ImageListSource)


# --- video -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    """12 frames of 32 x 48 whose brightness is 20 * frame number, MJPG in an .avi."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 200.0, (48, 32))
    assert writer.isOpened()
    for number in range(12):
        writer.write(np.full((32, 48, 3), 20 * number, np.uint8))
    writer.release()
    return path


def brightness(frame):
    return round(float(frame.image.mean()) / 20)


def test_video_plays_in_order_and_loops(video_file):
    source = open_source(str(video_file))
    assert isinstance(source, VideoSource) and source.is_live
    seen = [brightness(wait_for(source.read)) for _ in range(16)]
    source.close()
    assert seen[:12] == list(range(12)) and seen[12:] == [0, 1, 2, 3]


def test_paused_video_steps_one_frame_and_wraps_back(video_file):
    source = VideoSource(video_file)
    assert brightness(source.read()) == 0
    source.toggle_freeze()
    time.sleep(0.05)
    assert source.read() is None                      # paused: nothing new
    source.previous()
    frame = source.read()
    assert (frame.index, brightness(frame), frame.count) == (11, 11, 12)
    source.next()
    source.next()
    assert brightness(source.read()) == 1
    source.close()
    assert source.read() is None


def test_a_file_that_is_not_a_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nothing here")
    with pytest.raises(DeepVisError, match="bad.mp4"):
        VideoSource(bad)


# --- camera (a stub stands in for cv2.VideoCapture) --------------------------------------------

class StubCapture:
    """A camera whose frames are 0, 1, 2, ... (left half that value, right half 255)."""

    opened = True
    frames_before_loss = None
    instances = []

    def __init__(self, index):
        self.index, self.count = index, 0
        type(self).instances.append(self)

    def isOpened(self):
        return self.opened

    def read(self):
        if self.frames_before_loss is not None and self.count >= self.frames_before_loss:
            return False, None
        image = np.full((24, 32, 3), 255, np.uint8)
        image[:, :16] = self.count % 200
        self.count += 1
        return True, image

    def release(self):
        pass


@pytest.fixture
def stub_camera(monkeypatch):
    class Stub(StubCapture):
        instances = []
    monkeypatch.setattr(cv2, "VideoCapture", Stub)
    return Stub


def test_camera_frames_are_mirrored_and_new_each_read(stub_camera):
    source = open_source("camera:3")
    try:
        assert isinstance(source, CameraSource) and source.is_camera
        first = wait_for(source.read)
        assert first.name == "camera 3" and first.message == ""
        assert first.image[0, 0, 0] == 255 and first.image[0, -1, 0] != 255     # mirrored
        assert wait_for(source.read) is not first
        assert stub_camera.instances[0].index == 3
    finally:
        source.close()


def test_camera_unmirrored_and_frozen(stub_camera):
    source = CameraSource(0, mirror=False, fps=100)
    try:
        assert wait_for(source.read).image[0, 0, 0] != 255
        source.toggle_freeze()
        time.sleep(0.05)
        assert source.read() is None
        source.reshow()
        assert source.read() is not None                  # the frozen frame, shown again
        source.toggle_freeze()
        assert wait_for(source.read) is not None
    finally:
        source.close()


def test_contrast_stretch_spreads_a_dim_image(stub_camera, monkeypatch):
    class Dim(stub_camera):
        def read(self):
            image = np.zeros((20, 20, 3), np.uint8)
            image[:, 10:] = 60
            image[:, :10] = 40
            return True, image
    monkeypatch.setattr(cv2, "VideoCapture", Dim)
    source = CameraSource(0, mirror=False, contrast_stretch=True)
    try:
        image = wait_for(source.read).image
        assert image.min() == 0 and image.max() == 255
    finally:
        source.close()


def test_a_missing_camera_waits_without_an_image_and_never_raises(stub_camera):
    stub_camera.opened = False
    source = CameraSource(5, retry_seconds=0.05)
    try:
        frame = wait_for(source.read)
        assert frame.waiting and frame.images == ()
        assert frame.message == "waiting for camera 5: not found, next try in 0 s"
        time.sleep(0.3)
        assert len(stub_camera.instances) >= 2           # it keeps trying
        stub_camera.opened = True
        frame = wait_for(lambda: (lambda f: f if f is not None and not f.waiting else None)(source.read()))
        assert frame.message == "" and frame.image.ndim == 3   # plugged in: frames come
    finally:
        source.close()


def test_camera_retries_back_off_up_to_a_ceiling(stub_camera):
    stub_camera.opened = False
    source = CameraSource(0, retry_seconds=0.05, max_retry_seconds=0.2)
    try:
        assert [source.retry_wait(n) for n in (1, 2, 3, 4, 5)] == [0.05, 0.1, 0.2, 0.2, 0.2]
        time.sleep(0.6)   # tries at 0, 0.05, 0.15, 0.35, 0.55: five, where a fixed 0.05 s makes twelve
        assert 3 <= len(stub_camera.instances) <= 7
    finally:
        source.close()


def test_a_missing_camera_keeps_opencv_quiet(tmp_path):
    """With no camera, OpenCV's own warnings (ten lines a try) are not printed."""
    script = ("import time; from app.inputs import CameraSource\n"
              "source = CameraSource(97, retry_seconds=0.1)\n"
              "time.sleep(1.0); frame = source.read(); source.close()\n"
              "print(frame.message if frame is not None else 'no frame')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("waiting for camera 97: not found")
    assert "WARN" not in done.stderr and "ERROR" not in done.stderr, done.stderr


def test_a_lost_camera_says_so_and_reconnects(stub_camera):
    stub_camera.frames_before_loss = 3
    source = CameraSource(0, fps=200, retry_seconds=0.05)
    try:
        frames = [wait_for(source.read) for _ in range(8)]
        lost = [frame for frame in frames if frame.waiting]
        assert lost and lost[0].message.startswith("waiting for camera 0: lost, next try in")
        assert any(not frame.waiting and frame.message == "" for frame in frames)
    finally:
        source.close()


def test_a_camera_giving_garbage_says_so(stub_camera, monkeypatch):
    class Garbage(stub_camera):
        def read(self):
            return True, np.zeros(7, np.uint8)
    monkeypatch.setattr(cv2, "VideoCapture", Garbage)
    source = CameraSource(1, retry_seconds=0.05)
    try:
        frame = wait_for(source.read)
        assert frame.waiting and frame.message.startswith("waiting for camera 1: not an image")
    finally:
        source.close()


def test_closing_a_camera_stops_its_thread(stub_camera):
    source = CameraSource(0)
    wait_for(source.read)
    start = time.monotonic()
    source.close()
    assert not source._thread.is_alive() and time.monotonic() - start < 0.6


# --- open_source -------------------------------------------------------------------------------

def test_open_source_kinds_and_settings(tmp_path, stub_camera):
    write_image(tmp_path / "a.png", 1)
    write_image(tmp_path / "b.jpg", 2)
    assert isinstance(open_source(str(tmp_path / "a.png")), ImageFileSource)
    filtered = open_source(str(tmp_path), settings=type("S", (), {"input_directory_regex": r"\.jpg$"}))
    assert [entry.name for entry in filtered.entries] == ["b.jpg"]
    from_setting = open_source(None, settings=type("S", (), {"input": str(tmp_path)}))
    assert isinstance(from_setting, DirectorySource)
    camera = open_source("camera", settings=type("S", (), {"input_camera_index": 2}))
    camera.close()
    assert camera.index == 2
    with pytest.raises(DeepVisError, match="no such file or folder"):
        open_source(str(tmp_path / "nowhere"))


def test_sample_photos_are_written_once_and_open_as_a_folder(tmp_path):
    folder = default_input_dir(tmp_path)
    assert folder == tmp_path / "sample_images"
    photos = sorted(folder.iterdir())
    assert len(photos) == 8 and "chelsea.jpg" in [p.name for p in photos]
    written = {p.name: p.stat().st_mtime_ns for p in photos}
    assert default_input_dir(tmp_path) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written   # not rewritten
    cat = DirectorySource(folder)
    cat.index = [entry.name for entry in cat.entries].index("chelsea.jpg")
    frame = cat.read()
    assert frame.image.shape == (300, 451, 3) and frame.message == ""
    assert frame.image[..., 2].mean() > frame.image[..., 0].mean()   # a ginger cat: BGR, not RGB


def test_a_file_name_that_is_not_utf8_is_drawn_not_crashed_on(tmp_path):
    # os.scandir gives such a name with surrogates; OpenCV's putText crashed the process on them
    from app.ui import draw

    (tmp_path / b"caf\xe9.png".decode("utf-8", "surrogateescape")).write_bytes(b"broken")
    frame = DirectorySource(tmp_path).read()
    pane = draw.message(60, 400, [frame.message])
    assert "caf" in frame.message and pane.max() > 100   # the message is written
