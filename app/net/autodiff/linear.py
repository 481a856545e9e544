"""Backward rules of matrix products, inference batch normalisation, softmax and reductions."""
import numpy as np

from app.net.autodiff.op import Op, channel_shaped, ints, unbroadcast


def gemm(op: Op):
    """Y = alpha * A' B' + beta * C with A' = A or A^T, B' = B or B^T."""
    a, b = op.inputs[:2]
    alpha, beta = op.attrs.get("alpha", 1.0), op.attrs.get("beta", 1.0)
    trans_a, trans_b = op.attrs.get("transA", 0), op.attrs.get("transB", 0)
    dy = op.dy * alpha if alpha != 1 else op.dy
    da = db = dc = None
    if op.wants[0]:
        b_used = b.T if trans_b else b
        da = (dy @ b_used.T).T if trans_a else dy @ b_used.T
    if op.wants[1]:
        a_used = a.T if trans_a else a
        db = (a_used.T @ dy).T if trans_b else a_used.T @ dy
    if len(op.wants) > 2 and op.wants[2]:
        dc = unbroadcast(op.dy * beta, op.inputs[2].shape)
    return [da, db, dc]


def matmul(op: Op):
    """NumPy matmul semantics: 1-D operands gain and lose an axis, leading axes broadcast."""
    a, b = op.inputs
    dy = op.dy
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a.ndim == 1:
        dy = np.expand_dims(dy, -2)
    if b.ndim == 1:
        dy = np.expand_dims(dy, -1)
    da = unbroadcast(dy @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if op.wants[0] else None
    db = unbroadcast(np.swapaxes(a2, -1, -2) @ dy, b2.shape).reshape(b.shape) if op.wants[1] else None
    return [da, db]


def batch_normalization(op: Op):
    """Inference mode: y = (x - mean) / sqrt(var + eps) * scale + bias, a per-channel affine map."""
    x, scale, _, _, var = op.inputs[:5]
    gain = scale / np.sqrt(var + op.attrs.get("epsilon", 1e-5))
    return [op.dy * channel_shaped(gain.astype(op.dy.dtype), x.ndim)]


def _softmax_axes(op: Op) -> tuple:
    """Before opset 13 softmax runs on the input flattened to 2-D at ``axis``; after, along ``axis``."""
    if op.opset < 13:
        axis = op.attrs.get("axis", 1) % op.x.ndim
        return (int(np.prod(op.x.shape[:axis], dtype=np.int64)), -1), 1
    return None, op.attrs.get("axis", -1)


def softmax(op: Op):
    shape2d, axis = _softmax_axes(op)
    y, dy = op.y, op.dy
    if shape2d:
        y, dy = y.reshape(shape2d), dy.reshape(shape2d)
    dx = y * (dy - (dy * y).sum(axis=axis, keepdims=True))
    return [dx.reshape(op.x.shape)]


def log_softmax(op: Op):
    shape2d, axis = _softmax_axes(op)
    y, dy = op.y, op.dy
    if shape2d:
        y, dy = y.reshape(shape2d), dy.reshape(shape2d)
    dx = dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)
    return [dx.reshape(op.x.shape)]


def _reduced_axes(op: Op) -> tuple:
    """Axes of a Reduce* node (attribute in older opsets, second input in newer), keepdims as given."""
    axes = op.attrs.get("axes")
    if axes is None and op.input(1) is not None:
        axes = ints(op.inputs[1])
    if not axes:
        axes = [] if op.attrs.get("noop_with_empty_axes", 0) else list(range(op.x.ndim))
    return tuple(sorted(a % op.x.ndim for a in axes))


def _kept(op: Op, axes: tuple) -> np.ndarray:
    """The output diff with the reduced axes put back as size 1."""
    return op.dy if op.attrs.get("keepdims", 1) else np.expand_dims(op.dy, axes)


def reduce_sum(op: Op):
    axes = _reduced_axes(op)
    return [np.broadcast_to(_kept(op, axes), op.x.shape).copy()]


def reduce_mean(op: Op):
    axes = _reduced_axes(op)
    count = int(np.prod([op.x.shape[a] for a in axes], dtype=np.int64))
    return [np.broadcast_to(_kept(op, axes) / count, op.x.shape).copy()]


def reduce_max(op: Op):
    """ReduceMax / ReduceMin: the diff goes to the first extreme element, as for max pooling."""
    axes = _reduced_axes(op)
    moved = np.moveaxis(op.x, axes, range(-len(axes), 0))
    flat = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
    picked = np.argmax(flat, axis=-1) if op.node.op_type == "ReduceMax" else np.argmin(flat, axis=-1)
    dflat = np.zeros(flat.shape, op.dy.dtype)
    np.put_along_axis(dflat, picked[..., None], _kept(op, axes).reshape(picked.shape)[..., None], axis=-1)
    return [np.moveaxis(dflat.reshape(moved.shape), range(-len(axes), 0), axes)]
