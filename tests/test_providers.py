"""Provider choice: CUDA only when ORT has it and the driver sees a device."""
import pytest

from app.net.providers import CPU, CUDA, choose_providers, cuda_fallback


@pytest.mark.parametrize("preference, available, devices, expected", [
    ("auto", [CUDA, CPU], 1, [CUDA, CPU]),
    ("auto", [CUDA, CPU], 0, [CPU]),           # onnxruntime-gpu on a machine without a GPU
    ("auto", [CPU], 1, [CPU]),                 # CPU-only build
    ("cuda", [CUDA, CPU], 2, [CUDA, CPU]),
    ("cuda", [CUDA, CPU], 0, [CPU]),           # asked for but unusable: fall back quietly
    ("cpu", [CUDA, CPU], 1, [CPU]),
])
def test_choice(preference, available, devices, expected):
    assert choose_providers(preference, available=available, device_count=devices) == expected


def test_unknown_preference():
    with pytest.raises(ValueError):
        choose_providers("tpu", available=[CPU], device_count=0)


def test_a_gpu_without_cuda_libraries_is_said_in_one_line():
    def load(name):
        if name == "libcudnn.so.9":
            raise OSError(name)
    note = cuda_fallback([CUDA, CPU], CPU, load=load)
    assert "libcudnn.so.9 not found" in note and "running on the CPU" in note and "\n" not in note
    assert "provider did not start" in cuda_fallback([CUDA, CPU], CPU, load=lambda name: None)
    assert cuda_fallback([CUDA, CPU], CUDA, load=load) == ""   # CUDA runs
    assert cuda_fallback([CPU], CPU, load=load) == ""          # no GPU, or CPU asked for


def test_the_cuda_libraries_are_preloaded_once_and_quietly(monkeypatch, capfd):
    from app.net import providers

    calls = []
    def preload():
        calls.append(1)
        print("Failed to load libcudnn.so.9")
        raise OSError("libcudnn.so.9")
    monkeypatch.setattr(providers.ort, "preload_dlls", preload, raising=False)
    monkeypatch.setattr(providers, "_preloaded", [])
    providers.preload_cuda()
    providers.preload_cuda()
    assert calls == [1] and capfd.readouterr().out == ""


def test_the_graph_backward_runs_through_io_binding_as_through_run():
    """What a CUDA session does each frame (bound inputs, only the outputs asked for), on the CPU."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from app.net.autodiff.graph_backward import run_bound

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["y"], ["z"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=[CPU])
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)

    class Bound:   # the session as CUDA would report it, run by the CPU
        def __getattr__(self, name):
            return getattr(session, name)

        def get_providers(self):
            return [CUDA, CPU]

    (z,) = run_bound(Bound(), {"x": x}, ["z"])
    np.testing.assert_array_equal(z, -np.maximum(x, 0))
