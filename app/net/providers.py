"""Choose the ONNX Runtime execution provider: CUDA when it really works, CPU otherwise.

onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU or driver, and a session
asked for it then prints errors to stderr before falling back. So we ask the driver first (a cheap
ctypes call) and only request CUDA when a device exists; the session reports what actually runs.
"""
import contextlib
import ctypes
import ctypes.util
import io

import onnxruntime as ort

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CHOICES = ("auto", "cuda", "cpu")
# what onnxruntime-gpu 1.31's CUDA provider loads (CUDA 13, cuDNN 9): the [gpu] extra's wheels
CUDA_LIBRARIES = ("libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcufft.so.12",
                  "libcudnn.so.9")
GPU_SETUP = "pip install 'deepvis-toolbox[gpu]'"
_preloaded = []


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


def preload_cuda() -> None:
    """Load the CUDA and cuDNN libraries that the [gpu] extra installs as wheels
    (``onnxruntime.preload_dlls``), once, before the first CUDA session; quietly, since a missing one
    is said in one line by ``cuda_fallback`` instead."""
    preload = getattr(ort, "preload_dlls", None)
    if _preloaded or preload is None:
        return
    _preloaded.append(True)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            preload()
        except Exception:  # a library it cannot find: cuda_fallback names it
            pass


def missing_cuda_library(load=ctypes.CDLL):
    """The first library of CUDA_LIBRARIES that cannot be loaded, None when all can."""
    for name in CUDA_LIBRARIES:
        try:
            load(name)
        except OSError:
            return name
    return None


def cuda_fallback(requested: list, running: str, load=ctypes.CDLL) -> str:
    """One line when CUDA was asked for (a device exists) but the session runs on the CPU: why, and
    how to fix it; empty otherwise."""
    if CUDA not in requested or running == CUDA:
        return ""
    missing = missing_cuda_library(load)
    cause = f"{missing} not found" if missing else "ONNX Runtime's CUDA provider did not start"
    return f"a GPU is present but CUDA cannot start ({cause}; {GPU_SETUP}): running on the CPU"
