"""The net runtime: every layer in one run, any rank, any batch, preprocessing, bad input."""
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from app.errors import DeepVisError
from app.net import Net
from app.net.preprocess import InputSpec, deprocess, image_layout, preprocess, read_image
from app.net.run import MissingTensor

MNIST_INPUT = dict(mean=0, input_scale=1, raw_scale=255)


@pytest.fixture(scope="module")
def mnist(testdata):
    return Net.load(testdata / "onnx_mnist8" / "mnist-8.onnx", provider="cpu", input=MNIST_INPUT)


def mnist_digit(digit: int) -> np.ndarray:
    """A white digit on black, fitted into a 20x20 box centred in 28x28 as MNIST's digits are."""
    canvas = np.zeros((100, 100), np.uint8)
    cv2.putText(canvas, str(digit), (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.5, 255, 9)
    ys, xs = np.nonzero(canvas)
    crop = canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    scale = 20 / max(crop.shape)
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA)
    image = np.zeros((28, 28), np.uint8)
    top, left = (28 - crop.shape[0]) // 2, (28 - crop.shape[1]) // 2
    image[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


def test_mnist_digits_are_classified(mnist):
    digits = [mnist_digit(d) for d in range(10)]
    predictions = mnist.predict(digits, top=1)
    assert [p[0][0] for p in predictions] == [f"class {d}" for d in range(10)]


def test_every_layer_equals_a_run_asking_for_it_alone(mnist, testdata):
    acts = mnist.forward([mnist_digit(3), mnist_digit(8)])
    model = onnx.load(str(testdata / "onnx_mnist8" / "mnist-8.onnx"))
    assert [layer.name for layer in mnist.layers] == list(acts)
    for layer in mnist.layers:
        alone = onnx.ModelProto()
        alone.CopyFrom(model)
        del alone.graph.output[:]
        alone.graph.output.append(helper.make_tensor_value_info(layer.name, TensorProto.FLOAT, None))
        session = ort.InferenceSession(alone.SerializeToString(), providers=["CPUExecutionProvider"])
        for image_index in range(2):
            expected = session.run(None, {"Input3": acts.input[image_index:image_index + 1]})[0]
            np.testing.assert_allclose(acts[layer.name][image_index:image_index + 1], expected, rtol=1e-5, atol=1e-5)


def test_sessions_read_the_weights_the_net_holds_without_a_copy_in_their_model(mnist):
    from app.net import onnx_graph

    large = {t.name for t in mnist.model.graph.initializer if np.prod(t.dims) > onnx_graph.SMALL_CONSTANT}
    assert large and mnist.skeleton.ByteSize() < mnist.model.ByteSize() / 5
    held = {t.name: t for t in mnist.skeleton.graph.initializer}
    assert set(held) == {t.name for t in mnist.model.graph.initializer}
    for weight in mnist.model.graph.initializer:
        marker = held[weight.name]
        assert onnx_graph.held_outside(marker) == (weight.name in large)
        assert (marker.dims, marker.data_type) == (weight.dims, weight.data_type)
    x = mnist.preprocess([mnist_digit(4)])
    own = ort.InferenceSession(onnx_graph.runnable(mnist.model).SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = own.run(["Plus214_Output_0"], {mnist.input_name: x})
    np.testing.assert_array_equal(mnist.forward(x)["Plus214_Output_0"], expected)
    np.testing.assert_array_equal(mnist.forward(x, outputs=["Plus214_Output_0"])["Plus214_Output_0"], expected)


def test_mnist_layers_and_kinds(mnist):
    kinds = {layer.name: layer.kind for layer in mnist.layers}
    assert kinds["Convolution28_Output_0"] == "map"
    assert mnist.layer("Pooling160_Output_0").shape == (16, 4, 4)
    assert kinds["Plus214_Output_0"] == "vector"
    with pytest.raises(DeepVisError, match="no layer named"):
        mnist.layer("nope")


@pytest.mark.parametrize("variant", ["rfb320", "slim320"])
def test_ultraface_layers_of_every_rank_and_batches(testdata, variant):
    path = next((testdata / f"onnx_ultraface_{variant}").glob("*.onnx"))
    net = Net.load(path, provider="cpu")
    assert net.input_shape == (3, 240, 320)
    kinds = {layer.kind for layer in net.layers}
    assert {"map", "other"} <= kinds
    assert any(len(layer.shape) == 2 for layer in net.layers)  # SSD-style N x anchors x 4
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (200 + 10 * i, 300, 3), dtype=np.uint8) for i in range(4)]
    four = net.forward(images)
    one = net.forward(images[2:3])
    for name, value in four.items():
        assert value.shape[0] == 4
        np.testing.assert_allclose(value[2:3], one[name], rtol=1e-4, atol=1e-5)


def test_a_run_holds_every_intermediate_read_only(mnist):
    before = dict(vars(mnist))
    run = mnist.forward([mnist_digit(1)])
    assert vars(mnist).keys() == before.keys() and all(vars(mnist)[k] is v for k, v in before.items())   # nothing kept
    node_outputs = {name for node in mnist.model.graph.node for name in node.output}
    assert node_outputs <= set(run.tensors)
    assert run.tensors["Input3"] is run.input
    assert not any(value.flags.writeable for value in run.tensors.values())
    with pytest.raises(ValueError, match="read-only"):
        run["Plus214_Output_0"][0, 0] = 1.0
    with pytest.raises(TypeError):
        run.tensors["Input3"] = run.input


def test_arrays_a_caller_holds_survive_later_runs(mnist):
    held = mnist.forward([mnist_digit(2)])
    expected = {name: value.copy() for name, value in held.items()}
    for digit in (5, 7):
        mnist.forward([mnist_digit(digit)])
    for name, value in held.items():
        np.testing.assert_array_equal(value, expected[name])


def test_forward_up_to_a_layer_runs_only_what_it_needs(mnist):
    digits = [mnist_digit(6), mnist_digit(9)]
    full = mnist.forward(digits)
    full_diff = full.backward("ReLU114_Output_0", 3, mode="guided").input
    acts = mnist.forward(digits, up_to="ReLU114_Output_0")
    assert list(acts) == ["Convolution28_Output_0", "Plus30_Output_0", "ReLU32_Output_0", "Pooling66_Output_0",
                          "Convolution110_Output_0", "Plus112_Output_0", "ReLU114_Output_0"]
    assert not acts.tensors.computed("Pooling160_Output_0") and not acts.tensors.computed("Parameter193_reshape1")
    with pytest.raises(MissingTensor, match="'Pooling160_Output_0' was not computed"):
        acts.tensors["Pooling160_Output_0"]
    for name, value in acts.tensors.items():
        np.testing.assert_array_equal(value, full.tensors[name])
    np.testing.assert_array_equal(acts.backward("ReLU114_Output_0", 3, mode="guided").input, full_diff)
    with pytest.raises(DeepVisError, match="no layer named 'nope'"):
        mnist.forward(digits, up_to="nope")


def test_two_threads_share_one_net(mnist):
    """Forward and backward passes of two threads, interleaved step by step on one Net (each
    forward of a thread lands between the other's forward and backward), give each thread the
    results it gets alone: a run never reads another caller's forward."""
    layers = ["ReLU114_Output_0", "Plus214_Output_0"]
    batches = [mnist.preprocess([mnist_digit(2), mnist_digit(4)]), mnist.preprocess([mnist_digit(7)])]
    alone = []
    for batch, layer in zip(batches, layers):
        run = mnist.forward(batch)
        alone.append((run[layer].copy(), run.backward(layer, 1, mode="guided", layer_diffs=True)))
    barrier = Barrier(2, timeout=60)

    def steps(thread: int) -> int:
        batch, layer = batches[thread], layers[thread]
        activation, backward = alone[thread]
        for step in range(40):
            barrier.wait()
            run = mnist.forward(batch, up_to=layer if step % 2 else None)   # the threads' partial sessions differ
            barrier.wait()
            result = run.backward(layer, 1, mode="guided", layer_diffs=True)
            np.testing.assert_array_equal(run[layer], activation)
            np.testing.assert_array_equal(result.input, backward.input)
            assert result.layers.keys() <= backward.layers.keys()
            for name, diff in result.layers.items():
                np.testing.assert_array_equal(diff, backward.layers[name])
        return step + 1

    with ThreadPoolExecutor(2) as pool:
        assert [future.result() for future in [pool.submit(steps, thread) for thread in (0, 1)]] == [40, 40]


REALLOCATION_FAULTS = (
    "import resource; import numpy as np; import app.net; {setup}; "
    "a = np.ones(1 << 25, np.float32); del a; before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; "
    "a = np.ones(1 << 25, np.float32); print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)")
GLIBC_ONLY = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="malloc settings are glibc's: run on a Linux with glibc")


def reallocation_faults(setup: str, **env) -> int:
    """Page faults of allocating 128 MB again after freeing it, in a fresh process without the user's
    MALLOC_* and GLIBC_TUNABLES settings (plus ``env``), after ``setup``."""
    untuned = {name: value for name, value in os.environ.items()
               if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    result = subprocess.run([sys.executable, "-c", REALLOCATION_FAULTS.format(setup=setup)], capture_output=True,
                            text=True, check=True, env={**untuned, **env})
    return int(result.stdout)


@GLIBC_ONLY
def test_big_arrays_reuse_freed_memory_unless_the_user_tuned_malloc():
    keep = "from app.net import heap; heap.keep_freed_memory()"   # as the app, the tools and the benches do
    assert reallocation_faults(keep) < 16                             # 128 MB again from the heap: no fresh pages
    assert reallocation_faults(keep, MALLOC_TOP_PAD_="131072") >= 60  # glibc's default: fresh pages (2 MB at most each)


@GLIBC_ONLY
def test_importing_the_net_leaves_malloc_as_it_is():
    assert reallocation_faults("from app.net import Net") >= 60       # glibc's default: fresh pages


def test_preprocessed_batch_passes_through(mnist):
    batch = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32) * 255
    acts = mnist.forward(batch)
    np.testing.assert_array_equal(acts.input, batch)
    batch[0] = 0                                # the run keeps the batch it saw
    assert acts.input[0].any() and batch.flags.writeable
    assert acts["Plus214_Output_0"].shape == (3, 10)
    with pytest.raises(DeepVisError, match="shape"):
        mnist.forward(np.zeros((1, 3, 28, 28), np.float32))


def test_preprocess_round_trip_and_settings():
    spec = InputSpec(size=(20, 30), channel_swap=(2, 1, 0), raw_scale=255.0, mean=[10.0, 20.0, 30.0],
                     input_scale=[0.5, 0.25, 2.0])
    image = np.random.default_rng(2).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    batch = preprocess([image], spec)
    assert batch.shape == (1, 3, 20, 30)
    np.testing.assert_allclose(batch[0, 0], (image[:, :, 2] - 10.0) * 0.5, rtol=1e-6)
    assert np.array_equal(deprocess(batch, spec)[0], image)


def test_image_layout_puts_net_values_where_the_image_pixels_were():
    """What preprocess does to pixels, image_layout undoes for any values in the net's layout."""
    image = np.random.default_rng(3).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    for spec in [InputSpec(size=(6, 8)), InputSpec(size=(8, 6), transpose=True),
                 InputSpec(size=(6, 8), channel_swap=(0, 1, 2))]:
        chw = preprocess([image], spec)[0]
        np.testing.assert_allclose(image_layout(chw, spec.channel_swap, spec.transpose), image, atol=1e-4)
        two = image_layout(np.stack([chw, 2 * chw]), spec.channel_swap, spec.transpose)   # leading axes kept
        np.testing.assert_allclose(two[1], 2.0 * image, atol=1e-3)
    gray = image_layout(np.arange(6, dtype=np.float32).reshape(1, 2, 3), (0,))
    assert gray.shape == (2, 3, 3) and gray[1, 2].tolist() == [5, 5, 5]


def test_preprocess_transpose_grayscale_and_mean_image():
    image = np.zeros((12, 20, 3), np.uint8)
    image[:, :10] = 200  # left half bright
    transposed = preprocess([image], InputSpec(size=(20, 12), transpose=True))
    assert transposed.shape == (1, 3, 20, 12)
    assert transposed[0, 0, 0, 0] == 200 and transposed[0, 0, 15, 0] == 0  # W runs down axis 2
    gray = preprocess([image], InputSpec(size=(12, 20), channels=1))
    assert gray.shape == (1, 1, 12, 20)
    mean_image = np.arange(3 * 16 * 24, dtype=np.float32).reshape(3, 16, 24)
    centred = preprocess([image], InputSpec(size=(12, 20), mean=mean_image))
    np.testing.assert_allclose(centred[0, :, 0, 0], image[0, 0, ::-1] - mean_image[:, 2, 2])


def test_missing_and_non_onnx_files(tmp_path):
    with pytest.raises(DeepVisError, match="no such model file"):
        Net.load(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffthis is not a model" * 10)
    with pytest.raises(DeepVisError, match="not an ONNX model"):
        Net.load(junk)
    with pytest.raises(DeepVisError, match="model_zoo name"):
        Net.load("no-such-model")


def _tiny_model_with_external_weights(folder, location):
    weights = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], [2.0])
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])], [weights])
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])
    tensor = model.graph.initializer[0]
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("float_data")
    tensor.external_data.add(key="location", value=location)
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    return path


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.float32([5.0]).tobytes())
    inner = tmp_path / "model"
    inner.mkdir()
    path = _tiny_model_with_external_weights(inner, "../secret.bin")
    with pytest.raises(DeepVisError, match="outside the model's folder"):
        Net.load(path)


def test_external_data_inside_the_folder_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.float32([3.0]).tobytes())
    net = Net.load(_tiny_model_with_external_weights(tmp_path, "w.bin"), input=dict(mean=0, raw_scale=255))
    out = net.forward(np.ones((1, 1, 4, 4), np.float32))
    assert np.allclose(out["y"], 3.0)


def test_undecodable_image_gets_one_line(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not really a jpeg")
    with pytest.raises(DeepVisError, match="cannot decode"):
        read_image(bad)
    with pytest.raises(DeepVisError, match="no such image"):
        read_image(tmp_path / "none.png")


def test_sixteen_bit_and_gray_images_are_read_as_bgr8(tmp_path):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((5, 6), 65535, np.uint16))
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (5, 6, 3) and image.max() == 255


def test_cpu_run_prints_nothing_to_stderr(testdata):
    code = ("from app.net import Net; import numpy as np; "
            f"net = Net.load({str(testdata / 'onnx_mnist8' / 'mnist-8.onnx')!r}); "
            "net.forward(np.zeros((1, 1, 28, 28), np.float32)); print(net.provider)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr == ""
    assert result.stdout.strip() in ("CPUExecutionProvider", "CUDAExecutionProvider")


def test_model_onnx_runtime_cannot_run_gets_one_line(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])])
    path = tmp_path / "future.onnx"
    onnx.save(helper.make_model(graph, ir_version=99), str(path))
    with pytest.raises(DeepVisError, match="ONNX Runtime cannot run it") as error:
        Net.load(path)
    assert "\n" not in str(error.value)


def test_gray_onnx_without_settings_gets_averaged_defaults(testdata):
    net = Net.load(testdata / "onnx_mnist8" / "mnist-8.onnx", provider="cpu")
    assert net.input_shape == (1, 28, 28)
    assert len(net.spec.input.mean) == 1
    assert net.forward([mnist_digit(4)])["Plus214_Output_0"].shape == (1, 10)


def test_mean_of_the_wrong_length_gets_one_line(testdata):
    with pytest.raises(DeepVisError, match="mean has 2 values"):
        Net.load(testdata / "onnx_ultraface_rfb320" / "version-RFB-320.onnx", input=dict(mean=[1.0, 2.0]))


def test_prototxt_finds_its_only_caffemodel(testdata, tmp_path):
    from app.net.spec import resolve

    spec = resolve(testdata / "cifar10_quick" / "cifar10_quick.prototxt")
    assert spec.source["caffe"]["weights"].endswith("cifar10_quick_iter_5000.caffemodel")
    lonely = tmp_path / "deploy.prototxt"
    lonely.write_text("name: 'x'")
    with pytest.raises(DeepVisError, match="no .caffemodel file beside it"):
        resolve(lonely)
