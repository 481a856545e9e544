"""Regularized activation maximization: presets, regularizers, determinism, the tool's files and resume."""
import json

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.net import Net
from app.offline import optimize, regularizers, transforms
from app.offline.regularizers import PRESETS, Preset
from app.unit_images import montage_path, sprite_path, unit_dir
from tools import optimize_image
from views_nets import small_cnn


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return small_cnn(tmp_path_factory.mktemp("optimize"))


def test_presets_follow_the_papers_table():
    assert (PRESETS[1].decay, PRESETS[1].blur_radius, PRESETS[1].blur_every, PRESETS[1].small_norm_percentile,
            PRESETS[1].iterations, PRESETS[1].lr_policy, PRESETS[1].max_lr, PRESETS[1].desired_prog) == \
        (0, 0.5, 4, 50, 500, "progress", 100, 2)
    assert (PRESETS[2].decay, PRESETS[2].blur_radius, PRESETS[2].small_norm_percentile, PRESETS[2].iterations,
            PRESETS[2].lr_policy, PRESETS[2].lr) == (0.3, 0, 20, 750, "constant", 100)
    assert (PRESETS[3].decay, PRESETS[3].blur_radius, PRESETS[3].blur_every, PRESETS[3].iterations,
            PRESETS[3].lr) == (1e-4, 1.0, 4, 1000, 100)
    assert (PRESETS[4].abs_contribution_percentile, PRESETS[4].max_lr, PRESETS[4].iterations) == (90, 1e8, 1000)


def test_progress_policy_moves_the_objective_by_the_desired_amount_capped():
    grad = np.ones((2, 1, 2, 2), np.float32)
    grad[1] *= 1e-3
    rates = regularizers.learning_rates(Preset(lr_policy="progress", max_lr=100.0, desired_prog=2.0), grad)
    assert rates.shape == (2, 1, 1, 1)
    assert rates[0, 0, 0, 0] == pytest.approx(0.5) and rates[1, 0, 0, 0] == 100.0


def test_small_norm_clipping_zeroes_the_weakest_pixels_of_each_image():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2) + 1
    clipped = regularizers.regularize(x, np.zeros_like(x), Preset(small_norm_percentile=50), step=1)
    for image, original in zip(clipped, x):
        norms = np.linalg.norm(original, axis=0)
        assert (image[:, norms < np.median(norms)] == 0).all()
        assert (image[:, norms >= np.median(norms)] == original[:, norms >= np.median(norms)]).all()


def test_abs_contribution_clipping_keeps_the_pixels_that_matter():
    x = np.ones((1, 3, 4, 4), np.float32)
    grad = np.broadcast_to(np.arange(16, dtype=np.float32).reshape(4, 4) - 7.5, x.shape).copy()
    grad[0, :, 0, 0] = -20.0  # pushes the pixel the other way: its |contribution| counts as much
    clipped = regularizers.regularize(x, grad, Preset(abs_contribution_percentile=90), step=1)
    kept = clipped[0, 0] != 0
    assert kept.sum() == 2 and kept[0, 0] and kept[3, 3] and (clipped[:, :, kept] == 1).all()


def test_decay_and_blur_on_the_right_steps():
    x = np.zeros((1, 1, 9, 9), np.float32)
    x[0, 0, 4, 4] = 100
    preset = Preset(decay=0.5, blur_radius=1.0, blur_every=4)
    assert regularizers.regularize(x, x, preset, step=1)[0, 0, 4, 4] == 50
    blurred = regularizers.regularize(x, x, preset, step=4)
    assert blurred[0, 0, 4, 4] < 50 and blurred[0, 0, 4, 5] > 0 and blurred.sum() == pytest.approx(50, rel=1e-3)


def test_pixel_space_is_raw_pixels_minus_the_mean(net):
    space = optimize.PixelSpace(net)
    pixels = np.full((1,) + net.input_shape, 200.0, np.float32)
    x = space.to_net(space.clip(pixels - space.mean))
    expected = net.preprocess([np.full(net.input_shape[1:] + (3,), 200, np.uint8)])
    np.testing.assert_allclose(x, expected, atol=1e-4)


def test_optimizing_raises_every_unit_far_above_its_start(net):
    results = optimize.optimize_units(net, "conv2", range(6), PRESETS[3], seed=3, iterations=60)
    assert [r.unit for r in results] == list(range(6))
    for result in results:
        assert result.image.shape == (16, 16, 3) and result.image.dtype == np.uint8
        assert result.activation > max(10 * abs(result.start_activation), 50)
        # the kept image gives the kept activation (up to the uint8 rounding of the saved image)
        value = net.forward([result.image])["conv2"][0, result.unit, 6, 6]
        assert value == pytest.approx(result.activation, rel=0.05)


@pytest.mark.parametrize("preset", [1, 2, 4, 5])
def test_every_preset_improves_on_the_start(net, preset):
    for result in optimize.optimize_units(net, "conv2", [0, 2], PRESETS[preset], seed=0, iterations=40):
        assert result.activation > result.start_activation


def test_one_seed_one_result_whatever_the_batch(net):
    first = optimize.optimize_units(net, "fc", [1, 3], PRESETS[5], seed=7, iterations=20)
    again = optimize.optimize_units(net, "fc", [1, 3], PRESETS[5], seed=7, iterations=20)
    alone = optimize.optimize_units(net, "fc", [3], PRESETS[5], seed=7, iterations=20)
    other = optimize.optimize_units(net, "fc", [1, 3], PRESETS[5], seed=8, iterations=20)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.image, b.image)
        assert a.activation == b.activation
    assert np.abs(first[1].image.astype(int) - alone[0].image.astype(int)).max() <= 1
    assert not np.array_equal(first[0].image, other[0].image)


def test_transforms_adjoint_matches_the_warp():
    streams = [np.random.default_rng(0)]
    warps = transforms.random_warps(Preset(jitter=3, scale=0.1, rotate=10), streams, (32, 32))
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(1, 3, 32, 32)), rng.normal(size=(1, 3, 32, 32))
    a[..., :6, :], a[..., -6:, :], a[..., :, :6], a[..., :, -6:] = 0, 0, 0, 0  # borders aside
    b[..., :6, :], b[..., -6:, :], b[..., :, :6], b[..., :, -6:] = 0, 0, 0, 0
    forward = (transforms.apply(a.astype(np.float32), warps) * b).sum()
    backward = (a * transforms.apply_adjoint(b.astype(np.float32), warps)).sum()
    assert forward == pytest.approx(backward, rel=0.15)


def test_parse_units():
    assert optimize.parse_units("all", 4, "x") == [0, 1, 2, 3]
    assert optimize.parse_units("0-2,5", 8, "x") == [0, 1, 2, 5]
    with pytest.raises(DeepVisError, match="x: units '9' out of range"):
        optimize.parse_units("9", 8, "x")
    with pytest.raises(DeepVisError, match="give 'all'"):
        optimize.parse_units("a-b", 8, "x")


def test_tool_writes_images_records_and_sprite_and_resumes(net, tmp_path, capsys):
    model = str(net.path)
    args = ["--model", model, "--layer", "conv2", "--units", "0-3", "--iters", "15", "--batch", "3", "--cpu",
            "--seed", "2", "--preset", "3", "--out", str(tmp_path)]
    optimize_image.main(args)
    record = json.loads((unit_dir(tmp_path, "conv2", 2) / "opt.json").read_text())
    assert record["preset"] == 3 and record["iterations"] == 15 and record["position"] == [6, 6]
    assert record["activation"] > record["start_activation"]
    shown = cv2.imread(str(montage_path(tmp_path, "conv2", 2, "opt"))).astype(int)
    raw = cv2.imread(str(unit_dir(tmp_path, "conv2", 2) / "opt_raw.png")).astype(int)
    assert shown.shape == raw.shape == (16, 16, 3)
    assert np.abs(shown - 127.5).max() >= 127 and np.abs(shown - 127.5).max() >= np.abs(raw - 127.5).max()
    sprite = cv2.imread(str(sprite_path(tmp_path, "conv2", "opt")))
    assert sprite.shape == (2 * 96 + 2, 3 * 96 + 4, 3)  # 6 units in rows of 3
    assert sprite[:96, :96].any() and not sprite[-96:, -96:].any()  # unit 0 done, unit 5 not asked for
    assert "optimized 4 units, 0 already done" in capsys.readouterr().out
    stamp = (unit_dir(tmp_path, "conv2", 1) / "opt.json").stat().st_mtime_ns
    (unit_dir(tmp_path, "conv2", 1) / "opt.json").unlink()
    (unit_dir(tmp_path, "conv2", 0) / "opt.json").touch()
    optimize_image.main(args)
    assert "optimized 1 units, 3 already done" in capsys.readouterr().out
    assert (unit_dir(tmp_path, "conv2", 1) / "opt.json").stat().st_mtime_ns != stamp


def test_tool_prints_one_line_for_a_bad_layer(net, tmp_path, capsys):
    with pytest.raises(SystemExit):
        optimize_image.main(["--model", str(net.path), "--layer", "nope", "--cpu", "--out", str(tmp_path)])
    assert capsys.readouterr().err.strip() == f"error: {net.spec.name}: no layer named 'nope'"


def test_default_model_units_rise_far_above_their_start():
    net = Net.load(provider="cpu")
    layer = next(layer.name for layer in net.layers if layer.kind == "map" and layer.shape[1] <= 28)
    for result in optimize.optimize_units(net, layer, [0, 1], PRESETS[3], seed=0, iterations=8):
        assert result.activation > result.start_activation


def test_bad_units_and_iterations_are_refused(net):
    with pytest.raises(DeepVisError, match="units \\[6\\] out of range 0-5"):
        optimize.optimize_units(net, "conv2", [6], iterations=1)
    with pytest.raises(DeepVisError, match="0 iterations"):
        optimize.optimize_units(net, "conv2", [0], iterations=0)
