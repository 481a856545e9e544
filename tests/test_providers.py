"""Provider choice: CUDA only when ORT has it and the driver sees a device."""
import pytest

from app.net.providers import CPU, CUDA, choose_providers


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
