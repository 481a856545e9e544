"""Sliding-window geometry shared by convolution and pooling rules (any number of spatial dims).

Positions: output index o and kernel tap t read padded-input index o * stride + t * dilation; the
data sits at [begin, begin + size) of the padded axis.
"""
from dataclasses import dataclass
from itertools import product

import numpy as np


SAME = ("SAME_UPPER", "SAME_LOWER")


def split_padding(total: int, auto_pad: str) -> tuple:
    """(before, after) of ``total`` padding under auto_pad SAME_UPPER (an odd one goes after) or
    SAME_LOWER (before)."""
    before = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
    return before, total - before


def same_padding(auto_pad: str, size: int, kernel: int, stride: int, dilation: int, out: int) -> tuple:
    """(before, after) padding of one axis under auto_pad SAME_*: what ``out`` windows need to fit."""
    return split_padding(max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size), auto_pad)


@dataclass(frozen=True)
class Windows:
    """Where each kernel tap of each output position reads, for the spatial axes of N x C x ... data."""

    size: tuple       # input spatial size
    kernel: tuple
    strides: tuple
    dilations: tuple
    begins: tuple     # padding before the data, per axis
    out: tuple        # output spatial size
    ends: tuple = ()  # padding after the data as declared (windows may reach past it in ceil mode)

    @classmethod
    def of(cls, attrs: dict, size, kernel, out) -> "Windows":
        """From Conv / pooling attributes; ``out`` is the forward output's size (so ceil_mode is known)."""
        n = len(kernel)
        strides = tuple(attrs.get("strides") or [1] * n)
        dilations = tuple(attrs.get("dilations") or [1] * n)
        auto_pad = attrs.get("auto_pad", "NOTSET")
        if auto_pad in SAME:
            begins, ends = zip(*(same_padding(auto_pad, *axis) for axis in zip(size, kernel, strides, dilations, out)))
        elif auto_pad == "VALID":
            begins = ends = (0,) * n
        else:
            pads = attrs.get("pads") or [0] * 2 * n
            begins, ends = tuple(pads[:n]), tuple(pads[n:])
        return cls(tuple(size), tuple(kernel), strides, dilations, begins, tuple(out), ends)

    @property
    def extent(self) -> tuple:
        """Padded size covering the data and every tap of every window."""
        return tuple(max(i + b, (o - 1) * s + (k - 1) * d + 1)
                     for i, b, o, s, k, d in zip(self.size, self.begins, self.out, self.strides, self.kernel,
                                                 self.dilations))

    @property
    def taps(self):
        """Every kernel tap (as an index tuple), in scan order."""
        return product(*(range(k) for k in self.kernel))

    def tap_slices(self, tap: tuple) -> tuple:
        """Slices of the padded spatial axes that one tap reads for all output positions."""
        return tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                     for t, d, o, s in zip(tap, self.dilations, self.out, self.strides))

    @property
    def data_slices(self) -> tuple:
        """Slices of the padded spatial axes where the data sits."""
        return tuple(slice(b, b + i) for b, i in zip(self.begins, self.size))

    @property
    def is_identity(self) -> bool:
        """A 1 x 1 kernel, stride 1, no padding: each output position reads its own input position."""
        return (all(k == 1 for k in self.kernel) and all(s == 1 for s in self.strides)
                and not any(self.begins) and self.out == self.size)

    def pad(self, x: np.ndarray, value=0) -> np.ndarray:
        """x placed in a buffer of the padded extent, ``value`` around it."""
        if self.extent == self.size and not any(self.begins):
            return x
        padded = np.full(x.shape[:2] + self.extent, value, x.dtype)
        padded[(slice(None), slice(None)) + self.data_slices] = x
        return padded

    def view(self, padded: np.ndarray, taps_last: bool = False) -> np.ndarray:
        """Strided view N x C x kernel... x out... (or N x C x out... x kernel...) of a padded buffer."""
        spatial = padded.strides[2:]
        tap_strides = tuple(st * d for st, d in zip(spatial, self.dilations))
        out_strides = tuple(st * s for st, s in zip(spatial, self.strides))
        if taps_last:
            shape, strides = self.out + self.kernel, out_strides + tap_strides
        else:
            shape, strides = self.kernel + self.out, tap_strides + out_strides
        return np.lib.stride_tricks.as_strided(padded, padded.shape[:2] + shape, padded.strides[:2] + strides,
                                               writeable=False)

    def scatter(self, padded: np.ndarray, cols: np.ndarray, channels: slice = slice(None)) -> None:
        """Add cols (N x C' x kernel... x out...) into the padded buffer, each tap at the place it read."""
        for tap in self.taps:
            target = padded[(slice(None), channels) + self.tap_slices(tap)]
            target += cols[(slice(None), slice(None)) + tap]
