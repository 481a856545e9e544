"""Where the net looks on a parameterized image: affine views (Lucid's pad, jitter, scale, rotate,
jitter; MACO's random crops) resampled bilinearly to the net's input size, with their exact adjoint.

A view is a 3 x 3 matrix taking continuous coordinates of the net's input (x, y; a pixel's centre is
at i + 0.5) to continuous coordinates of the image. ``sample`` builds the bilinear sampling matrix
of one view as a sparse matrix M, so the net input is M @ image (+ gray where the view falls outside
the image, as Lucid's constant padding) and the gradient goes back as M.T @ grad: exact, not an
inverse warp.
"""
import numpy as np
from scipy import sparse

FILL = 0.5  # the value of pixels outside the image (Lucid pads with gray)


def translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def scale(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def rotate(degrees: float, centre: tuple) -> np.ndarray:
    angle = np.deg2rad(degrees)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1.0]])
    return translate(*centre) @ turn @ translate(-centre[0], -centre[1])


def resize_view(image_size: tuple, out_size: tuple) -> np.ndarray:
    """Out (height, width) coordinates -> image coordinates when the whole image is resized to out."""
    return scale(image_size[1] / out_size[1], image_size[0] / out_size[0])


def lucid_view(stream, image_size: tuple, out_size: tuple, pad: int = 12, jitter: int = 8,
               scales=tuple(1 + (i - 5) / 50 for i in range(11)), angles=tuple(range(-10, 11)) + (0,) * 5,
               final_jitter: int = 4) -> np.ndarray:
    """Lucid's standard transforms in its order (pad 12 with gray, jitter 8, scale 0.9..1.1, rotate
    -10..10 degrees with 0 five times as likely, jitter 4), then resized to the net's input."""
    height, width = image_size[0] + 2 * pad, image_size[1] + 2 * pad
    view = translate(-pad, -pad)                    # padded -> image
    dx, dy = stream.integers(0, jitter, size=2) if jitter else (0, 0)
    view = view @ translate(dx, dy)                 # jittered crop -> padded
    height, width = height - jitter, width - jitter
    zoom = float(stream.choice(scales))
    view = view @ scale(1 / zoom, 1 / zoom)         # zoomed -> cropped
    height, width = round(height * zoom), round(width * zoom)
    view = view @ rotate(float(stream.choice(angles)), (width / 2, height / 2))
    dx, dy = stream.integers(0, final_jitter, size=2) if final_jitter else (0, 0)
    view = view @ translate(dx, dy)
    height, width = height - final_jitter, width - final_jitter
    return view @ resize_view((height, width), out_size)


def crop_view(image_size: tuple, out_size: tuple, centre: tuple, side: float) -> np.ndarray:
    """A square-ish crop (``side`` a fraction of the image's sides) around ``centre`` (fractions),
    resized to the net's input."""
    height, width = image_size
    crop = (side * height, side * width)
    left, top = centre[0] * width - crop[1] / 2, centre[1] * height - crop[0] / 2
    return translate(left, top) @ resize_view(crop, out_size)


def sample(view: np.ndarray, image_size: tuple, out_size: tuple):
    """(M, outside): the sparse bilinear sampling matrix (out pixels x image pixels) of ``view`` and,
    per out pixel, the weight that falls outside the image (filled with FILL)."""
    height, width = image_size
    rows, cols = np.mgrid[0:out_size[0], 0:out_size[1]]
    points = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5, np.ones(rows.size)])
    x, y = (view @ points)[:2] - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    out = np.arange(rows.size)
    entries, columns, weights = [], [], []
    for oy, ox, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy),
                           (1, 1, fx * fy)):
        xi, yi = (x0 + ox).astype(int), (y0 + oy).astype(int)
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height) & (weight > 0)
        entries.append(out[inside])
        columns.append(yi[inside] * width + xi[inside])
        weights.append(weight[inside])
    matrix = sparse.csr_matrix((np.concatenate(weights), (np.concatenate(entries), np.concatenate(columns))),
                               shape=(rows.size, height * width), dtype=np.float32)
    outside = (1.0 - np.asarray(matrix.sum(axis=1)).ravel()).astype(np.float32)
    return matrix, outside


class Views:
    """A batch of views: row r of the batch shows image ``owners[r]`` through its own view."""

    def __init__(self, views: list, owners: list, image_size: tuple, out_size: tuple):
        self.samplers = [sample(view, image_size, out_size) for view in views]
        self.owners, self.image_size, self.out_size = list(owners), tuple(image_size), tuple(out_size)

    def apply(self, images: np.ndarray) -> np.ndarray:
        """N x C x H x W images -> R x C x h x w: each view's resampled image."""
        channels = images.shape[1]
        flat = images.reshape(len(images), channels, -1)
        rows = [(matrix @ flat[owner].T).T + outside * FILL for (matrix, outside), owner in zip(self.samplers,
                                                                                                 self.owners)]
        return np.stack(rows).reshape(len(rows), channels, *self.out_size).astype(np.float32)

    def adjoint(self, grad: np.ndarray, count: int) -> np.ndarray:
        """R x C x h x w gradient wrt the views -> count x C x H x W gradient wrt the images (summed
        over each image's views)."""
        channels = grad.shape[1]
        total = np.zeros((count, channels, self.image_size[0] * self.image_size[1]), np.float32)
        for (matrix, _), owner, rows in zip(self.samplers, self.owners, grad.reshape(len(grad), channels, -1)):
            total[owner] += (matrix.T @ rows.T).T
        return total.reshape(count, channels, *self.image_size)
