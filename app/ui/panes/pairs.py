"""A siamese pair shown "both": the two images' pictures side by side in one tile or pane."""
import numpy as np

from app.views.grid import joined

SEPARATOR = (20, 20, 20)   # between a pair's two maps: darker than the gray (50) between tiles


def pair_width(width: int) -> int:
    """Width of a picture holding a pair's two ``width`` wide maps (a separator between maps,
    none between two 1 x 1 units)."""
    return 2 * width + (1 if width > 1 else 0)


def side_by_side(maps: list, colored) -> np.ndarray:
    """The maps (... x H x W, one per image shown) drawn by ``colored`` on one scale into
    pictures (... x H x W' x 3), a pair's two side by side with the separator between them."""
    pictures = colored(np.concatenate(maps, axis=-1))
    return separated(pictures, maps[0].shape[-1]) if len(maps) == 2 else pictures


def separated(pictures: np.ndarray, first_width: int) -> np.ndarray:
    """Pictures (... x H x 2W x 3) of the two maps drawn side by side, with the separator line
    put between them (not between two 1 x 1 units)."""
    if first_width == 1:
        return pictures
    return joined([pictures[..., :first_width, :], pictures[..., first_width:, :]], gap=1, color=SEPARATOR)
