"""tools.classify: images fitted to the input as the app fits them, errors on stderr."""
import cv2
import numpy as np
import pytest

from app.inputs import Frame
from app.ui.compute import Request, compute
from tests import ui_support
from tools import classify


@pytest.fixture(scope="module")
def net():
    return ui_support.mnist_net()


@pytest.fixture
def mnist_settings(tmp_path):
    """--settings FILE giving MNIST's input settings."""
    path = tmp_path / "mnist_settings.py"
    path.write_text(f"model_input = {ui_support.MNIST_INPUT!r}\n")
    return ["--settings", str(path)]


def wide_image(path):
    """A '7' in the centre of a 96 x 288 image, a '0' on each side: crop and stretch see different digits."""
    image = np.zeros((96, 288, 3), np.uint8)
    image[:, 96:192] = ui_support.digit_image(96)
    for left in (0, 192):
        cv2.putText(image, "0", (left + 10, 85), cv2.FONT_HERSHEY_SIMPLEX, 3.2, (255, 255, 255), 12)
    cv2.imwrite(str(path), image)
    return image


def printed(text):
    """[(probability, label), ...] of the one image classify printed."""
    rows = [line.split(None, 1) for line in text.splitlines()[1:]]
    return [(float(p), label) for p, label in rows]


@pytest.mark.parametrize("fit", ["crop", "stretch"])
def test_classify_gives_the_apps_predictions(net, mnist_settings, tmp_path, capsys, fit):
    image = wide_image(tmp_path / "wide.png")
    classify.main([str(tmp_path / "wide.png"), "--model", str(ui_support.MNIST), "--top", "3", "--fit", fit]
                  + mnist_settings)
    ours = printed(capsys.readouterr().out)
    app = compute(net, Request(Frame((image,), "wide.png"), fit, "first", None, False)).predictions[:3]
    assert [label for _, label in ours] == [label for label, _ in app]
    assert [p for p, _ in ours] == pytest.approx([p for _, p in app], abs=1e-4)


def test_crop_and_stretch_differ_and_crop_is_the_default(net, mnist_settings, tmp_path, capsys):
    wide_image(tmp_path / "wide.png")
    runs = {}
    for fit in ("crop", "stretch", None):
        classify.main([str(tmp_path / "wide.png"), "--model", str(ui_support.MNIST)]
                      + (["--fit", fit] if fit else []) + mnist_settings)
        runs[fit] = printed(capsys.readouterr().out)
    assert runs[None] == runs["crop"] != runs["stretch"]


def test_unreadable_images_go_to_stderr(net, mnist_settings, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    wide_image(tmp_path / "wide.png")
    with pytest.raises(SystemExit) as exit:
        classify.main([str(tmp_path / "broken.png"), str(tmp_path / "wide.png"), "--model", str(ui_support.MNIST)]
                      + mnist_settings)
    out, err = capsys.readouterr()
    assert exit.value.code == 1   # the rest was classified, but not everything asked for
    assert "broken.png: cannot decode (not an image file" in err and "broken" not in out
    assert err.splitlines()[-1] == "error: 1 of 2 images failed"
    assert out.splitlines()[0].endswith("wide.png")
