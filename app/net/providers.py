"""Choose the ONNX Runtime execution provider: CUDA when it really works, CPU otherwise.

onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU or driver, and a session
asked for it then prints errors to stderr before falling back. So we ask the driver first (a cheap
ctypes call) and only request CUDA when a device exists; the session reports what actually runs.
"""
import ctypes
import ctypes.util

import onnxruntime as ort

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CHOICES = ("auto", "cuda", "cpu")


def cuda_device_count() -> int:
    """Number of CUDA devices the driver sees; 0 when there is no driver or no device."""
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        driver = ctypes.CDLL(name)
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def choose_providers(preference: str = "auto", available=None, device_count=None) -> list:
    """Providers to ask ORT for, best first.

    preference: "auto" (CUDA if usable), "cuda" (same, falls back to CPU when it cannot run),
    "cpu". ``available`` and ``device_count`` default to what this machine reports; tests pass stubs.
    """
    if preference not in CHOICES:
        raise ValueError(f"provider must be one of {CHOICES}, not {preference!r}")
    if available is None:
        available = ort.get_available_providers()
    if preference == "cpu" or CUDA not in available:
        return [CPU]
    if device_count is None:
        device_count = cuda_device_count()
    return [CUDA, CPU] if device_count > 0 else [CPU]
