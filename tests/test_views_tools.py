"""The views' command-line tools: tools.occlusion and tools.export_volume, run in-process."""
import cv2
import numpy as np
import pytest

from app.views import volume
from tools import export_volume, occlusion as occlusion_tool
from views_nets import region_net

REGION = (8, 16, 20, 28)


@pytest.fixture(scope="module")
def model_and_image(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tools")
    region_net(folder, regions=(REGION, (0, 4, 0, 4)))
    image = folder / "bright.png"
    cv2.imwrite(str(image), np.full((32, 32, 3), 200, np.uint8))
    return folder / "region.onnx", image


def test_occlusion_tool_writes_a_map_high_only_at_the_region(model_and_image, tmp_path, capsys):
    model, image = model_and_image
    out = tmp_path / "maps" / "unit0.png"
    occlusion_tool.main([str(image), "--model", str(model), "--layer", "score", "--unit", "0", "--patch", "4",
                         "--stride", "4", "--fill", "0", "--cpu", "--overlay", "--out", str(out)])
    heat = np.load(out.with_suffix(".npy"))
    y0, y1, x0, x1 = REGION
    assert heat.shape == (32, 32) and heat[y0:y1, x0:x1].min() > 0
    outside = np.ones_like(heat, bool)
    outside[y0:y1, x0:x1] = False
    assert (heat[outside] == 0).all()
    picture = cv2.imread(str(out))
    assert picture.shape == (32, 32, 3) and tuple(picture[12, 24]) != tuple(picture[0, 0])
    assert "score unit 0" in capsys.readouterr().out


def test_occlusion_tool_prints_one_line_for_a_bad_layer(model_and_image, tmp_path, capsys):
    model, image = model_and_image
    with pytest.raises(SystemExit) as stop:
        occlusion_tool.main([str(image), "--model", str(model), "--layer", "nope", "--unit", "0",
                             "--cpu", "--out", str(tmp_path / "x.png")])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == "error: region: no layer named 'nope'"


def test_export_volume_tool_round_trips(model_and_image, tmp_path):
    model, image = model_and_image
    out = tmp_path / "vol" / "score"
    export_volume.main([str(image), "--model", str(model), "--layer", "score", "--cpu", "--out", str(out),
                        "--mip", str(tmp_path / "mip.png")])
    nrrd = volume.read_volume(out.with_name("score.nrrd"))
    np.testing.assert_array_equal(nrrd, volume.read_volume(out.with_name("score.npy")))
    assert nrrd.shape == (2, 1, 1) and nrrd[1, 0, 0] > 0
    assert cv2.imread(str(tmp_path / "mip.png")).shape == (300, 300, 3)
