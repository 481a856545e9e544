"""Classify images: one line per label with its probability.

    python -m tools.classify [IMAGE...] [--list FILE] [--model M] [--top K] [--fit crop|stretch]
        [--cpu|--gpu] [--settings FILE]

Each image is fitted to the model's input as the app fits it (settings.py's input_fit_mode:
the largest centred window with the input's aspect ratio, or the whole image stretched), so the
labels equal the app's. An image that cannot be read gets one line on stderr and the others are
still classified; the exit status is then 1 (see --help).
"""
import sys

from app.errors import DeepVisError
from app.inputs import ImageListSource, fit_to_input
from app.inputs.fit import MODES, check_mode
from app.net.image_file import read_image
from tools import cli


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        parser = cli.parser("python -m tools.classify", __doc__)
        parser.add_argument("images", nargs="*", help="image files")
        parser.add_argument("--list", default=None, metavar="FILE",
                            help="also the images of this list (one path a line, as the app's image lists)")
        parser.add_argument("--top", type=int, default=5, help="labels to print per image (default 5)")
        parser.add_argument("--fit", default=settings.input_fit_mode, choices=MODES,
                            help=f"fit images to the model's input as the app does ({settings.input_fit_mode})")
        args = parser.parse_args(argv)
        check_mode(args.fit)
        paths = list(args.images) + _listed(args.list)
        if not paths:
            parser.error("give image files or --list FILE")
        net = cli.load_net(args, settings)
        failed = sum(not _classify(net, path, args) for path in paths)
    if failed:
        print(f"error: {failed} of {len(paths)} images failed", file=sys.stderr)
        raise SystemExit(cli.SOME_INPUTS_FAILED)


def _listed(list_file) -> list:
    return [str(entry.paths[0]) for entry in ImageListSource(list_file).entries] if list_file else []


def _classify(net, path: str, args) -> bool:
    """Print the image's labels; False (and one line on stderr) when it cannot be read."""
    width, height = net.spec.input.image_size()
    try:
        image = fit_to_input(read_image(path), (height, width), args.fit)
        predictions = net.predict([image], top=args.top)[0]
    except DeepVisError as error:
        print(f"error: {error}", file=sys.stderr)
        return False
    print(path)
    for label, probability in predictions:
        print(f"  {probability:7.4f}  {label}")
    return True


if __name__ == "__main__":
    main()
