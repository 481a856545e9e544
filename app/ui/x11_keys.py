"""Whether Shift was down for each key press in the app's X11 window, read on a second connection.

OpenCV's Qt backend (the pip wheel's on Linux) gives cv2.waitKeyEx a letter's lower-case code with
Shift or without, and keeps only the newest key of a burst, so its separate Shift code can be lost.
The X server, though, sends every client that asks the window's key presses with their modifier
state; this module asks for them through libX11 and answers, for each code OpenCV gives, whether
that press had Shift down.
"""
import ctypes
import ctypes.util
import os
from collections import deque
from typing import Optional

KEY_PRESS = 2              # X event type
KEY_PRESS_MASK = 1 << 0    # XSelectInput mask
CARDINAL = 6               # the X atom of a property holding numbers
SHIFT_MASK, CONTROL_MASK = 1 << 0, 1 << 2   # XKeyEvent.state bits
KEPT_PRESSES = 64          # at most this many presses are waiting for OpenCV's codes
PRESS_MS = 1000            # presses this much older than the newest are ones OpenCV never reported


class _KeyEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("root", ctypes.c_ulong),
                ("subwindow", ctypes.c_ulong), ("time", ctypes.c_ulong), ("x", ctypes.c_int), ("y", ctypes.c_int),
                ("x_root", ctypes.c_int), ("y_root", ctypes.c_int), ("state", ctypes.c_uint),
                ("keycode", ctypes.c_uint), ("same_screen", ctypes.c_int)]


class _Event(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("key", _KeyEvent), ("pad", ctypes.c_long * 24)]


_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
# NOTE: Xlib's default handler exits the process on any error (a window closing while we walk
# the tree): errors on this connection are ignored, the answer is then "unknown".
_ignore_errors = _ERROR_HANDLER(lambda display, error: 0)


def _library():
    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                               ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                               ctypes.POINTER(ctypes.c_uint)]
    x11.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
    x11.XFree.argtypes = [ctypes.c_void_p]
    x11.XSelectInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_long]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XPending.argtypes = [ctypes.c_void_p]
    x11.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Event)]
    x11.XLookupKeysym.restype = ctypes.c_ulong
    x11.XLookupKeysym.argtypes = [ctypes.POINTER(_KeyEvent), ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XGetWindowProperty.argtypes = [
        ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_ulong,
        ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_ulong),
        ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_void_p)]
    x11.XSetErrorHandler(_ignore_errors)
    return x11


def can_open_display(name: Optional[str]) -> Optional[bool]:
    """Whether X display ``name`` accepts a connection; None when libX11 is missing (cannot tell)."""
    x11 = _library()
    if x11 is None:
        return None
    display = x11.XOpenDisplay(name.encode() if name else None)
    if display:
        x11.XCloseDisplay(display)
    return bool(display)


class ShiftReader:
    """The key presses of one X window (found by its title and this process's id), each as
    (unshifted keysym, Shift down), matched in order with the codes OpenCV reports."""

    def __init__(self, x11, display, title: str):
        self._x11, self._display, self._title = x11, display, title.encode()
        self._window = None
        self._presses = deque(maxlen=KEPT_PRESSES)

    @classmethod
    def open(cls, title: str) -> Optional["ShiftReader"]:
        """A reader for the window titled ``title``, or None without an X display or libX11."""
        if not os.environ.get("DISPLAY"):
            return None
        x11 = _library()
        display = x11.XOpenDisplay(None) if x11 is not None else None
        return cls(x11, display, title) if display else None

    @property
    def attached(self) -> bool:
        return self._window is not None

    def attach(self) -> bool:
        """Find the window and ask for its key presses; False while it is not shown yet."""
        if self._window is None:
            self._window = self._find(self._x11.XDefaultRootWindow(self._display))
            if self._window is not None:
                self._x11.XSelectInput(self._display, self._window, KEY_PRESS_MASK)
                self._x11.XSync(self._display, 0)
        return self._window is not None

    def shift_of(self, code: int) -> Optional[bool]:
        """Whether the press OpenCV reports as ``code`` (an unshifted keysym) had Shift down; None
        when no press of that key was seen."""
        if self._window is None:
            return None
        self._x11.XSync(self._display, 0)   # a round trip: every press OpenCV has seen is queued here too
        event = _Event()
        while self._x11.XPending(self._display):
            self._x11.XNextEvent(self._display, ctypes.byref(event))
            # NOTE: OpenCV's Qt backend reports no Ctrl combination: such presses would match a later code
            if event.type == KEY_PRESS and not event.key.state & CONTROL_MASK:
                keysym = self._x11.XLookupKeysym(ctypes.byref(event.key), 0)
                self._presses.append((event.key.time, keysym, bool(event.key.state & SHIFT_MASK)))
        if not self._presses:
            return None
        newest = self._presses[-1][0]
        while self._presses:
            time, keysym, shifted = self._presses.popleft()
            if keysym == code and (newest - time) % 2 ** 32 <= PRESS_MS:   # X time in ms, wrapping
                return shifted
        return None

    def close(self) -> None:
        if self._display:
            self._x11.XCloseDisplay(self._display)
            self._display = None

    def _pid(self, window: int) -> Optional[int]:
        """The process id a window names in _NET_WM_PID (Qt sets it), or None."""
        atom = self._x11.XInternAtom(self._display, b"_NET_WM_PID", 1)
        kind, size, count, left, data = (ctypes.c_ulong(), ctypes.c_int(), ctypes.c_ulong(), ctypes.c_ulong(),
                                          ctypes.c_void_p())
        if not atom or self._x11.XGetWindowProperty(self._display, window, atom, 0, 1, 0, CARDINAL, ctypes.byref(kind),
                                                    ctypes.byref(size), ctypes.byref(count), ctypes.byref(left),
                                                    ctypes.byref(data)) != 0 or not data.value:
            return None
        try:
            return ctypes.cast(data, ctypes.POINTER(ctypes.c_ulong))[0] if count.value == 1 and size.value == 32 else None
        finally:
            self._x11.XFree(data)

    def _find(self, window: int) -> Optional[int]:
        name = ctypes.c_char_p()
        if self._x11.XFetchName(self._display, window, ctypes.byref(name)) and name.value is not None:
            found = name.value == self._title and self._pid(window) in (None, os.getpid())
            self._x11.XFree(name)
            if found:
                return window
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not self._x11.XQueryTree(self._display, window, ctypes.byref(root), ctypes.byref(parent),
                                    ctypes.byref(children), ctypes.byref(count)):
            return None
        try:
            for index in range(count.value):
                found = self._find(children[index])
                if found is not None:
                    return found
        finally:
            if children:
                self._x11.XFree(children)
        return None
