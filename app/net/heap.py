"""glibc's malloc set to keep big arrays' memory in the heap for the next one instead of unmapping it.

glibc serves every block above its mmap threshold (32 MB at most) with fresh pages from the kernel and
unmaps it on free, so at batch 32 each forward and backward pass page-faulted and zero-filled its
gigabyte of large arrays again: about half their time was spent in the kernel. With mmap off and the
heap never trimmed, freed blocks serve the next pass; the process keeps its peak size, as ONNX
Runtime's own arena does. A user's MALLOC_* or GLIBC_TUNABLES environment settings win; other C
libraries are left as they are. The programs that run big batches ask for it (the app and the tools
through tools/cli.py, the benches); importing app.net leaves malloc alone.
"""
import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # mallopt parameters (malloc.h)
NEVER_TRIM = -1                         # "-1 disables trimming completely" (man mallopt)


def keep_freed_memory() -> bool:
    """Switch glibc to reusing freed memory (once per process; repeating it changes nothing).
    False where the C library is not glibc or the user has tuned malloc."""
    if platform.libc_ver()[0] != "glibc" or _user_tuned(os.environ):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def _user_tuned(environ) -> bool:
    return "GLIBC_TUNABLES" in environ or any(name.startswith("MALLOC_") for name in environ)
