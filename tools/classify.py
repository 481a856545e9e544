"""Classify images: one line per label with its probability.

    python -m tools.classify IMAGE... [--model M] [--top K] [--fit crop|stretch] [--cpu|--gpu] [--settings FILE]

Each image is fitted to the model's input as the app fits it (settings.py's input_fit_mode:
the largest centred window with the input's aspect ratio, or the whole image stretched), so the
labels equal the app's. Images that cannot be read get one line on stderr.
"""
import sys

from app.errors import DeepVisError
from app.inputs import fit_to_input
from app.inputs.fit import MODES
from app.net.preprocess import read_image
from tools import cli


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        parser = cli.parser("python -m tools.classify", __doc__)
        parser.add_argument("images", nargs="+", help="image files")
        parser.add_argument("--top", type=int, default=5, help="labels to print per image (default 5)")
        parser.add_argument("--fit", default=settings.input_fit_mode, choices=MODES,
                            help=f"fit images to the model's input as the app does ({settings.input_fit_mode})")
        args = parser.parse_args(argv)
        net = cli.load_net(args, settings)
        width, height = net.spec.input.image_size()
        for path in args.images:
            try:
                image = fit_to_input(read_image(path), (height, width), args.fit)
                predictions = net.predict([image], top=args.top)[0]
            except DeepVisError as error:
                print(f"error: {error}", file=sys.stderr)
                continue
            print(path)
            for label, probability in predictions:
                print(f"  {probability:7.4f}  {label}")


if __name__ == "__main__":
    main()
