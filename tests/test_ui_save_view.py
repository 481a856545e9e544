"""Save view (W): the window's picture as a PNG named after model, layer, unit and time, always inside
save_view_dir whatever the model calls its layers."""
import time

import cv2
import numpy as np
import pytest

from app.inputs import open_source
from app.ui import save_view
from app.ui.app import screenshot
from tests import ui_support

WHEN = time.mktime((2026, 12, 3, 14, 5, 9, 0, 0, -1))


def test_file_name_has_model_layer_unit_and_time():
    assert save_view.file_name("mnist-8", "Convolution28_Output_0", 5, WHEN) == \
        "mnist-8_Convolution28_Output_0_unit5_20261203-140509.png"


@pytest.mark.parametrize("layer", ["../../../etc/passwd", "/features/features.0/Conv_output_0", "..", ".",
                                   "a\\b:c*?<>|\n", "Schicht \u00fc\u00df", "x" * 500, ""])
def test_hostile_layer_names_stay_in_the_folder(tmp_path, layer):
    folder = tmp_path / "views"
    message = save_view.save(np.zeros((4, 6, 3), np.uint8), folder, "../model", layer, 3, WHEN)
    written = list(folder.iterdir())
    assert message == f"view saved: {written[0]}" and len(written) == 1
    name = written[0].name
    assert written[0].parent == folder and not name.startswith(".") and len(name) < 200
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name), name
    assert list(tmp_path.iterdir()) == [folder]


def test_two_saves_in_one_second_keep_both(tmp_path):
    first = save_view.save(np.zeros((4, 4, 3), np.uint8), tmp_path, "m", "l", 0, WHEN)
    second = save_view.save(np.full((4, 4, 3), 255, np.uint8), tmp_path, "m", "l", 0, WHEN)
    assert first != second and len(list(tmp_path.iterdir())) == 2


def test_an_unwritable_folder_gives_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    message = save_view.save(np.zeros((4, 4, 3), np.uint8), tmp_path / "file" / "views", "m", "l", 0)
    assert message.startswith("save view: ") and "\n" not in message


def test_W_in_a_screenshot_saves_the_same_picture(testdata, tmp_path):
    folder = ui_support.write_images(tmp_path / "digits", 2)
    settings = ui_support.settings(save_view_dir=str(tmp_path / "views"))
    out = screenshot(ui_support.mnist_net(), settings, open_source(str(folder)), tmp_path / "shot.png", "ooW")
    saved = list((tmp_path / "views").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("mnist-8_") and "_unit0_" in saved[0].name
    assert np.array_equal(cv2.imread(str(saved[0])), cv2.imread(str(out)))
