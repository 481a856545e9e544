"""Backward rules of ops that move values without computing on them: reshapes, transposes,
concatenation, splitting, slicing, padding, gathering, broadcasting and depth/space shuffles."""
import numpy as np

from app.net.autodiff.op import Op, ints, unbroadcast


def reshape(op: Op):
    """Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: the diff takes the input's shape."""
    return [op.dy.reshape(op.x.shape)]


def transpose(op: Op):
    perm = op.attrs.get("perm") or list(range(op.x.ndim))[::-1]
    return [op.dy.transpose(np.argsort(perm))]


def depth_to_space(op: Op):
    n, c, h, w = op.x.shape
    b = op.attrs["blocksize"]
    if op.attrs.get("mode", "DCR") == "DCR":
        return [_unshuffle(op, (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2))]
    return [_unshuffle(op, (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3))]


def space_to_depth(op: Op):
    n, c, h, w = op.x.shape
    b = op.attrs["blocksize"]
    return [_unshuffle(op, (n, c, h // b, b, w // b, b), (0, 3, 5, 1, 2, 4))]


def _unshuffle(op: Op, blocks: tuple, perm: tuple) -> np.ndarray:
    """The diff of y = x.reshape(blocks).transpose(perm).reshape(y.shape): the steps undone in reverse."""
    moved = tuple(blocks[p] for p in perm)
    return op.dy.reshape(moved).transpose(np.argsort(perm)).reshape(op.x.shape)


def concat(op: Op):
    axis = op.attrs["axis"] % op.y.ndim
    bounds = np.cumsum([v.shape[axis] for v in op.inputs])[:-1]
    return [part if want else None for part, want in zip(np.split(op.dy, bounds, axis=axis), op.wants)]


def split(op: Op):
    axis = op.attrs.get("axis", 0)
    return [np.concatenate([op.output_diff(i) for i in range(len(op.outputs))], axis=axis)]


def slice_(op: Op):
    if op.opset < 10:
        starts, ends, axes, steps = op.attrs["starts"], op.attrs["ends"], op.attrs.get("axes"), None
    else:
        starts, ends, axes, steps = (ints(v) if v is not None else None
                                     for v in (op.inputs[1], op.inputs[2], op.input(3), op.input(4)))
    axes = axes or list(range(len(starts)))
    steps = steps or [1] * len(starts)
    index = [slice(None)] * op.x.ndim
    for axis, start, end, step in zip(axes, starts, ends, steps):
        # ONNX clamps out-of-range starts and ends exactly as Python slices do.
        index[axis] = slice(start, end, step)
    dx = np.zeros(op.x.shape, op.dy.dtype)
    dx[tuple(index)] = op.dy
    return [dx]


def gather(op: Op):
    axis = op.attrs.get("axis", 0) % op.x.ndim
    dx = np.zeros(op.x.shape, op.dy.dtype)
    np.add.at(dx, (slice(None),) * axis + (op.inputs[1],), op.dy)
    return [dx]


def expand(op: Op):
    return [unbroadcast(op.dy, op.x.shape)]


def tile(op: Op):
    repeats = ints(op.inputs[1])
    interleaved = [n for pair in zip(repeats, op.x.shape) for n in pair]
    return [op.dy.reshape(interleaved).sum(axis=tuple(range(0, 2 * op.x.ndim, 2)))]


def pad(op: Op):
    """Every pad mode: the core is copied back; for edge, reflect and wrap each padded position also
    adds its diff to the input position it copied."""
    x, dy = op.x, op.dy
    mode = op.attrs.get("mode", "constant")
    if op.opset < 11:
        pads = op.attrs.get("pads") or op.attrs["paddings"]
        axes = list(range(x.ndim))
    else:
        pads = ints(op.inputs[1])
        axes = [a % x.ndim for a in ints(op.input(3, range(x.ndim)))]
    begins, ends = pads[:len(axes)], pads[len(axes):]
    for axis, begin, end in zip(axes, begins, ends):
        dy = _unpad_axis(dy, axis, begin, x.shape[axis], mode)
    return [dy]


def _unpad_axis(dy: np.ndarray, axis: int, begin: int, size: int, mode: str) -> np.ndarray:
    """The diff of one axis' padding: output position o read input position o - begin."""
    moved = np.moveaxis(dy, axis, 0)
    dx = np.zeros((size,) + moved.shape[1:], dy.dtype)
    low, high = max(0, -begin), min(size, moved.shape[0] - begin)
    dx[low:high] = moved[low + begin:high + begin]
    if mode != "constant":
        for position in list(range(0, begin + low)) + list(range(high + begin, moved.shape[0])):
            dx[_source(position - begin, size, mode)] += moved[position]
    return np.moveaxis(dx, 0, axis)


def _source(index: int, size: int, mode: str) -> int:
    if mode == "edge":
        return min(max(index, 0), size - 1)
    if mode == "wrap":
        return index % size
    period = 2 * (size - 1)  # reflect, edge values not repeated
    index = index % period if period else 0
    return index if index < size else period - index
