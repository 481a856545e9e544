"""Classify images: one line per label with its probability.

    python -m tools.classify IMAGE... [--model M] [--top K] [--fit crop|stretch] [--cpu]

Each image is fitted to the model's input as the app fits it (settings.py's input_fit_mode:
the largest centred window with the input's aspect ratio, or the whole image stretched), so the
labels equal the app's. Images that cannot be read get one line on stderr.
"""
import argparse
import sys

from app.errors import DeepVisError, exit_with_message
from app.inputs import fit_to_input
from app.inputs.fit import MODES
from app.net import Net
from app.net.preprocess import read_image
from app.settings import load_settings


def main(argv=None) -> None:
    try:
        settings = load_settings()
        parser = argparse.ArgumentParser(prog="python -m tools.classify", description=__doc__.splitlines()[0])
        parser.add_argument("images", nargs="+", help="image files")
        parser.add_argument("--model", default=None,
                            help="model_zoo name or model file (default: settings.py's model)")
        parser.add_argument("--top", type=int, default=5, help="labels to print per image (default 5)")
        parser.add_argument("--fit", default=settings.input_fit_mode, choices=MODES,
                            help=f"fit images to the model's input as the app does ({settings.input_fit_mode})")
        parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU works")
        args = parser.parse_args(argv)
        net = Net.load(args.model or settings.model, provider="cpu" if args.cpu else settings.provider,
                       input=settings.model_input or None)
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
    except DeepVisError as error:
        exit_with_message(error)


if __name__ == "__main__":
    main()
