"""Per-unit images in the jpgvis pane and in pattern mode, from our layout, a sprite, and the original's."""
import cv2
import numpy as np
import pytest

from app import unit_images
from app.inputs import open_source
from app.ui.app import App, screenshot
from app.ui.panes.jpgvis import sprite_cells
from tests import ui_support

LAYER = "ReLU32_Output_0"   # mnist-8's third layer: 8 units
COLORS = [(30 * u, 255 - 30 * u, 120) for u in range(8)]


@pytest.fixture(scope="module")
def net(testdata):
    return ui_support.mnist_net()


def solid(color, size=48):
    return np.full((size, size, 3), color, np.uint8)


def panes_of(net, tmp_path, root, keys):
    settings = ui_support.settings(unit_jpg_dir=str(root))
    folder = ui_support.write_images(tmp_path / "digits", 1)
    out = screenshot(net, settings, open_source(str(folder)), tmp_path / "shot.png", keys)
    image = cv2.imread(str(out))
    return {name: image[r.top:r.top + r.height, r.left:r.left + r.width]
            for name, r in App(net, settings).rects.items()}


def has_color(pane, color) -> bool:
    return bool(np.any(np.all(np.abs(pane.astype(int) - color) <= 2, axis=2)))


def test_jpgvis_and_pattern_mode_from_unit_montages(net, tmp_path):
    root = tmp_path / "units"
    for unit, color in enumerate(COLORS):
        path = unit_images.montage_path(root, LAYER, unit, "maxim")
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), solid(color))
    panes = panes_of(net, tmp_path, root, "oo<Right><Right>")
    assert has_color(panes["jpgvis"], COLORS[2]) and not has_color(panes["jpgvis"], COLORS[3])
    pattern = panes_of(net, tmp_path, root, "ooss")       # pattern mode: max images
    assert all(has_color(pattern["layers"], color) for color in COLORS)
    hidden = panes_of(net, tmp_path, root, "oo9")
    assert not has_color(hidden["jpgvis"], COLORS[0])


def test_pattern_mode_from_a_sprite(net, tmp_path):
    root = tmp_path / "units"
    side, pad, columns = 40, 2, 3
    sprite = np.zeros((3 * (side + pad) - pad, columns * (side + pad) - pad, 3), np.uint8)
    for unit, color in enumerate(COLORS):
        top, left = (unit // columns) * (side + pad), (unit % columns) * (side + pad)
        sprite[top:top + side, left:left + side] = color
    path = unit_images.sprite_path(root, LAYER, "opt")
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), sprite)
    cells = sprite_cells(sprite, 8)
    assert cells.shape == (8, side, side, 3) and np.all(cells[5] == COLORS[5])
    pattern = panes_of(net, tmp_path, root, "oos")
    assert all(has_color(pattern["layers"], color) for color in COLORS)


def test_the_original_toolbox_layout(net, tmp_path):
    root = tmp_path / "original"
    for kind, folder in (("opt", "regularized_opt"), ("maxim", "max_im"), ("deconv", "max_deconv")):
        name = f"{LAYER}_0001_montage.jpg" if kind == "opt" else f"{LAYER}_0001.jpg"
        (root / folder / LAYER).mkdir(parents=True)
        cv2.imwrite(str(root / folder / LAYER / name), solid((0, 0, 255), 64))
    panes = panes_of(net, tmp_path, root, "oo<Right>")
    red = np.all((panes["jpgvis"][..., 2] > 200) & (panes["jpgvis"][..., 1] < 60), axis=-1)
    assert red.mean() > 0.1


def test_a_conv_without_images_shows_those_of_its_relu(net, tmp_path):
    root = tmp_path / "units"   # find_maxes scored ReLU32 (its units), not Plus30 which only it reads
    for unit, color in enumerate(COLORS):
        path = unit_images.montage_path(root, LAYER, unit, "maxim")
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), solid(color))
    pre_activation = panes_of(net, tmp_path, root, "o<Right><Right>")   # Plus30_Output_0, unit 2
    assert has_color(pre_activation["jpgvis"], COLORS[2])
    own = unit_images.montage_path(root, "Plus30_Output_0", 2, "maxim")   # images of its own win
    own.parent.mkdir(parents=True)
    cv2.imwrite(str(own), solid((0, 0, 255)))
    pre_activation = panes_of(net, tmp_path, root, "o<Right><Right>")
    assert has_color(pre_activation["jpgvis"], (0, 0, 255)) and not has_color(pre_activation["jpgvis"], COLORS[2])


@pytest.mark.parametrize("layer", ["..", ".", "", "../../outside", "a/../../b"])
def test_layer_names_never_lead_out_of_the_unit_image_folder(tmp_path, layer):
    root = tmp_path / "units"
    root.mkdir()
    for path in (unit_images.unit_dir(root, layer, 3), unit_images.crop_path(root, layer, 3, "maxim", 0),
                 unit_images.sprite_path(root, layer, "maxim")):
        assert root.resolve() in path.resolve().parents and path.resolve().parent != root.resolve().parent
    assert unit_images.folder_name(layer) not in ("", ".", "..")
    # the original layout is read only for plain folder names: none of these is one
    outside = tmp_path / "max_im"
    outside.mkdir()
    cv2.imwrite(str(outside / "x_0003.jpg"), solid((0, 0, 255)))
    assert unit_images.find_unit_image(root / "sub", layer, 3, "maxim") is None
    assert not unit_images.has_images(root, layer)


def test_names_that_differ_keep_folders_of_their_own():
    names = ["a/b", "a_b", "a:b", "a b", "..", "__", "_", "conv1", "Plus30_Output_0", "é", "_~a"]
    folders = [unit_images.folder_name(name) for name in names]
    assert len(set(folders)) == len(names)
    # a plain folder name is kept as it is (the layout the tools wrote before, and the original's)
    assert unit_images.folder_name("conv1") == "conv1" and unit_images.folder_name("blocks.4.2.add") == "blocks.4.2.add"
    assert unit_images.folder_name("a/b").startswith("a_b~")
