"""Feature visualization in parameterized images: Fourier and MACO parameterizations, the views and
the net's input as exact linear maps, objectives, diversity, determinism, transparency, the tool."""
import json

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.net.preprocess import InputSpec, preprocess
from app.offline import diversity, objectives, optimize, render, sampling
from app.offline.adam import Adam
from app.offline.fourier import COLOR_CORRELATION, COLOR_CORRELATION_SVD_SQRT, Fourier
from app.offline.maco import Maco, photo_spectrum
from app.offline.net_input import NetInput
from app.unit_images import montage_path, unit_dir
from tools import optimize_image
from views_nets import region_net, small_cnn

FAST_LUCID = render.Recipe("fourier", "adam", lr=0.05, iterations=6, size=20)
FAST_MACO = render.Recipe("maco", "nadam", lr=1.0, iterations=4, size=20, views="crops", crops=3, box_start=0.5,
                          box_end=0.05, noise=0.08)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return small_cnn(tmp_path_factory.mktemp("featurevis"))


def finite_difference(function, params, weights, index, epsilon=1e-6):
    up, down = params.copy(), params.copy()
    up[index] += epsilon
    down[index] -= epsilon
    return ((function(up) - function(down)) * weights).sum() / (2 * epsilon)


@pytest.mark.parametrize("size", [(12, 10), (11, 9)])
def test_fourier_round_trips_and_its_gradient_is_the_chain_rule(size):
    fourier, rng = Fourier(*size), np.random.default_rng(0)
    params = rng.normal(size=(2,) + fourier.shape)
    image = fourier.image(params)
    assert image.shape == (2, 3) + size and 0 < image.min() and image.max() < 1
    np.testing.assert_allclose(fourier.image(fourier.params_of(image)), image, atol=1e-6)
    weights = rng.normal(size=image.shape)
    grad = fourier.gradient(params, weights)
    for index in [(0, 0, 0, 0, 0), (0, 1, 3, 2, 1), (1, 2, 5, 4, 0), (1, 0, 2, 0, 1), (0, 1, 4, 3, 1)]:
        assert grad[index] == pytest.approx(finite_difference(fourier.image, params, weights, index), abs=1e-6)


def test_fourier_spectrum_is_scaled_by_one_over_frequency():
    fourier = Fourier(16, 16)
    assert fourier.scale[0, 1] == pytest.approx(16) and fourier.scale[0, 4] == pytest.approx(4)
    assert fourier.scale[0, 0] == fourier.scale[0, 1]   # the DC bin capped like the lowest frequency


def test_decorrelation_matrix_is_lucids():
    np.testing.assert_array_equal(COLOR_CORRELATION_SVD_SQRT, np.float32([[0.26, 0.09, 0.02],
                                                                          [0.27, 0.00, -0.05],
                                                                          [0.27, -0.09, 0.03]]))
    norms = np.linalg.norm(COLOR_CORRELATION, axis=0)
    assert norms.max() == pytest.approx(1.0)   # divided by the largest column norm, the first column's
    assert COLOR_CORRELATION[0, 0] == pytest.approx(0.26 / np.sqrt(0.26**2 + 0.27**2 * 2))


@pytest.mark.parametrize("size", [(12, 10), (11, 9), (12, 9)])
def test_maco_round_trips_keeps_the_magnitude_and_its_gradient_is_the_chain_rule(size):
    magnitude = photo_spectrum(size).astype(np.float64)
    maco, rng = Maco(magnitude, size[1]), np.random.default_rng(1)
    phase = maco.start([rng, rng]).astype(np.float64)
    image = maco.image(phase)
    np.testing.assert_allclose(maco.image(maco.phase_of(image)), image, atol=1e-9)
    # the image's spectrum has the fixed magnitude (up to the standardization's one scale, DC aside)
    logits = np.log(image) - np.log1p(-image)
    spectrum = np.abs(np.fft.rfft2(logits, norm="ortho"))[0]
    ratio = spectrum[:, 1:, 1:] / magnitude[:, 1:, 1:]
    assert ratio.std() < 1e-6 * ratio.mean()
    weights = rng.normal(size=image.shape)
    grad = maco.gradient(phase, weights)
    for index in [(0, 0, 1, 0), (0, 1, 3, 2), (1, 2, 5, 4), (1, 0, 2, 1)]:
        assert grad[index] == pytest.approx(finite_difference(maco.image, phase, weights, index), abs=1e-6)


def test_photo_spectrum_falls_with_frequency_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path))
    spectrum = photo_spectrum((32, 32))
    assert (tmp_path / "maco_spectrum_32x32.npy").is_file()
    np.testing.assert_array_equal(np.load(tmp_path / "maco_spectrum_32x32.npy"), spectrum)
    assert spectrum[:, 0, 1].min() > 2 * spectrum[:, 0, 8].max() > 0


def test_views_sample_exactly_and_their_adjoint_is_exact():
    rng = np.random.default_rng(2)
    views = [sampling.lucid_view(rng, (20, 16), (24, 24)), sampling.crop_view((20, 16), (24, 24), (0.4, 0.6), 0.7)]
    batch = sampling.Views(views, [0, 1], (20, 16), (24, 24))
    images, grad = rng.normal(size=(2, 3, 20, 16)), rng.normal(size=(2, 3, 24, 24))
    gray = batch.apply(np.zeros_like(images))   # the gray fill outside the image: the affine part
    forward = ((batch.apply(images) - gray) * grad).sum()
    assert forward == pytest.approx((images * batch.adjoint(grad, 2)).sum(), rel=1e-4)
    same = sampling.Views([sampling.resize_view((20, 16), (20, 16))], [0], (20, 16), (20, 16))
    np.testing.assert_allclose(same.apply(images[:1]), images[:1], atol=1e-6)


@pytest.mark.parametrize("spec", [
    InputSpec(size=(12, 10), mean=[104.0, 117.0, 123.0]),
    InputSpec(size=(12, 10), channel_swap=(0, 1, 2), mean=127.0, input_scale=1 / 128),
    InputSpec(size=(12, 10), channels=1, channel_swap=(0,), raw_scale=1.0, mean=0.5),
    InputSpec(size=(12, 10), transpose=True, mean=[1.0, 2.0, 3.0], input_scale=[0.5, 1.0, 2.0])])
def test_net_input_is_the_models_preprocessing_and_its_adjoint(spec):
    net_input, rng = NetInput(spec), np.random.default_rng(3)
    bgr = rng.integers(0, 256, net_input.image_size + (3,), dtype=np.uint8)
    rgb = bgr[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
    np.testing.assert_allclose(net_input.to_net(rgb), preprocess([bgr], spec), rtol=1e-5, atol=1e-4)
    grad = rng.normal(size=net_input.to_net(rgb).shape)
    linear = ((net_input.to_net(rgb) - net_input.to_net(np.zeros_like(rgb))) * grad).sum()
    assert linear == pytest.approx((rgb * net_input.grad_to_rgb(grad)).sum(), rel=1e-4)


def test_objectives_equal_a_direct_computation(net, tmp_path):
    images = np.random.default_rng(4).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    run = net.forward(list(images))
    conv, fc = run["conv2"], run["fc"]
    direction = np.arange(6, dtype=np.float32) - 2
    np.save(tmp_path / "d.npy", direction)
    cases = {"conv2:3": conv[:, 3].mean(axis=(1, 2)),
             "conv2:3@center": conv[:, 3, 6, 6],
             "conv2:1@2,5": conv[:, 1, 2, 5],
             "class:4": fc[:, 4],
             f"conv2:{tmp_path / 'd.npy'}": np.einsum("c,nchw->n", direction, conv) / 196,
             "conv2:3 + -0.5*class:2": conv[:, 3].mean(axis=(1, 2)) - 0.5 * fc[:, 2]}
    for text, expected in cases.items():
        terms = objectives.parse(net, text)
        values = {layer: run[layer] for layer in objectives.layers_of([terms])}
        for image in range(2):
            single = {layer: value[image:image + 1] for layer, value in values.items()}
            score = objectives.scores([terms], single, 1)[0]
            seeds = objectives.seeds([terms], {layer: value.shape for layer, value in single.items()}, 1)
            assert score == pytest.approx(expected[image], rel=1e-5), text
            # every objective is linear in the activations: its seed is its gradient
            assert sum((seeds[layer] * single[layer]).sum() for layer in seeds) == pytest.approx(score, rel=1e-5)


def test_objective_mistakes_are_one_line(net, tmp_path):
    for text, message in [("conv2:9", "unit 9 out of range 0-5"), ("conv2", "write LAYER:N"),
                          ("nope:1", "no layer named 'nope'"), ("conv2:1@20,1", "position \\(20, 1\\)"),
                          (f"conv2:{tmp_path / 'x.npy'}", "no such direction file")]:
        with pytest.raises(DeepVisError, match=message):
            objectives.parse(net, text)
    np.save(tmp_path / "short.npy", np.ones(3))
    with pytest.raises(DeepVisError, match="shape \\(3,\\); layer conv2 has 6 channels"):
        objectives.parse(net, f"conv2:{tmp_path / 'short.npy'}")


def test_diversity_penalty_gradient_and_layer(net):
    activations = np.random.default_rng(5).normal(size=(3, 4, 2, 3))
    value, grad = diversity.penalty(activations)
    for index in [(0, 0, 0, 0), (1, 2, 1, 2), (2, 3, 0, 1)]:
        assert grad[index] == pytest.approx(
            finite_difference(lambda a: np.float64(diversity.penalty(a)[0]), activations, 1.0, index), rel=1e-4)
    same = np.repeat(activations[:1], 3, axis=0)
    assert diversity.penalty(same)[0] == pytest.approx(2.0)   # identical Grams: (D - 1) per image
    assert diversity.diversity_layer(net, "conv2") == "conv2"
    assert diversity.diversity_layer(net, "fc") == "relu2"


def test_adam_first_step_moves_every_element_by_the_rate_uphill():
    params = np.zeros(4, np.float32)
    moved = Adam(0.05).step(params, np.float32([3.0, -1e-3, 2e2, -5.0]))
    np.testing.assert_allclose(moved, [0.05, -0.05, 0.05, -0.05], rtol=1e-4)


@pytest.mark.parametrize("recipe", [FAST_LUCID, FAST_MACO])
def test_one_seed_one_image_whatever_the_batch(net, recipe):
    first = optimize.render_units(net, "conv2", [1, 3], recipe, seed=7)
    again = optimize.render_units(net, "conv2", [1, 3], recipe, seed=7)
    alone = optimize.render_units(net, "conv2", [3], recipe, seed=7)
    other = optimize.render_units(net, "conv2", [1, 3], recipe, seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.image, b.image)
    assert np.abs(first[1].image.astype(int) - alone[0].image.astype(int)).max() <= 1
    assert not np.array_equal(first[0].image, other[0].image)
    assert first[0].image.shape == (20, 20, 3)


@pytest.mark.parametrize("recipe", [FAST_LUCID, FAST_MACO])
def test_every_recipe_raises_its_objective(net, recipe):
    for result in optimize.render_units(net, "conv2", [0, 2, 4], recipe, seed=0, iterations=30):
        assert result.activation > result.start_activation + 0.5
        gray = cv2.cvtColor(result.image, cv2.COLOR_BGR2GRAY)
        assert np.subtract(*np.percentile(gray, [99, 1])) > 60   # a picture, not a flat gray


def test_transparency_sums_the_gradient_wrt_the_image(tmp_path):
    net = region_net(tmp_path)   # unit 0: the sum of rows 8-15, columns 20-27 over all channels
    whole = render.Recipe("fourier", "adam", lr=0.05, iterations=5, size=32, views="crops", crops=1)
    expected = np.zeros((32, 32))
    expected[8:16, 20:28] = 5 * 3 * 255.0   # 5 steps x 3 channels x |d(net input) / d(rgb)|
    for text in ("score:0", "-2*score:0 + score:0"):   # the gradient's size counts, not its sign
        result = render.render(net, [objectives.parse(net, text)], whole, [np.random.default_rng(0)])[0]
        np.testing.assert_allclose(result.transparency, expected, rtol=1e-5, atol=1e-3)


def test_on_step_returning_false_stops_both_loops(net):
    seen = []

    def stop_at_two(step, glimpse):
        images = glimpse()
        seen.append((step, len(images), images[0][0].shape))
        assert all(np.isfinite(value) for _, value in images)
        return step < 2

    optimize.optimize_units(net, "conv2", [0, 1], iterations=10, on_step=stop_at_two)
    assert seen == [(0, 2, (16, 16, 3)), (1, 2, (16, 16, 3)), (2, 2, (16, 16, 3))]
    seen.clear()
    optimize.render_units(net, "conv2", [0], FAST_LUCID, iterations=10, on_step=stop_at_two)
    assert seen == [(0, 1, (20, 20, 3)), (1, 1, (20, 20, 3)), (2, 1, (20, 20, 3))]


def test_tool_writes_lucid_maco_diversity_and_written_objectives(net, tmp_path, capsys):
    common = ["--model", str(net.path), "--cpu", "--iters", "3", "--seed", "5", "--out", str(tmp_path)]
    optimize_image.main(common + ["--layer", "conv2", "--units", "0-1", "--size", "24x20"])   # lucid, the default
    record = json.loads((unit_dir(tmp_path, "conv2", 1) / "opt.json").read_text())
    assert (record["preset"], record["objective"], record["seed"], record["iterations"], record["size"]) == \
        ("lucid", "channel", 5, 3, [20, 24])
    assert cv2.imread(str(montage_path(tmp_path, "conv2", 1, "opt"))).shape == (20, 24, 3)
    assert cv2.imread(str(unit_dir(tmp_path, "conv2", 1) / "opt_transparency.png")).any()
    optimize_image.main(common + ["--objective", "class", "--units", "2", "--preset", "maco", "--diversity", "2",
                                  "--size", "16"])
    record = json.loads((unit_dir(tmp_path, "fc", 2) / "opt.json").read_text())
    assert (record["preset"], record["diversity"], record["layer"]) == ("maco", 2, "fc")
    assert cv2.imread(str(montage_path(tmp_path, "fc", 2, "opt"))).shape == (16, 2 * 16 + 2, 3)
    optimize_image.main(common + ["--objective", "conv2:1 + 0.5*conv2:4", "--preset", "lucid", "--size", "16"])
    folder = tmp_path / "objectives" / "conv2_1+0.5_conv2_4"
    record = json.loads((folder / "opt.json").read_text())
    assert record["objective"] == "conv2:1 + 0.5*conv2:4" and record["preset"] == "lucid"
    assert cv2.imread(str(folder / "opt.png")).shape == (16, 16, 3)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        optimize_image.main(common + ["--layer", "conv2", "--preset", "3", "--size", "64"])
    assert "preset 3: works in the net's input space" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        optimize_image.main(common + ["--layer", "conv2", "--preset", "lucid", "--size", "big"])
    assert capsys.readouterr().err.strip() == "error: --size big: give N or WxH in pixels, at least 8"
