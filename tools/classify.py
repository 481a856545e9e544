"""Classify images: one line per label with its probability.

    python -m tools.classify IMAGE... [--model M] [--top K] [--cpu]
"""
import argparse

from app.errors import DeepVisError, exit_with_message
from app.net import Net
from app.net.preprocess import read_image


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.classify", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--model", default=None, help="model_zoo name or model file (default: the default model)")
    parser.add_argument("--top", type=int, default=5, help="labels to print per image (default 5)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU works")
    args = parser.parse_args(argv)
    try:
        net = Net.load(args.model, provider="cpu" if args.cpu else "auto")
        for path in args.images:
            try:
                predictions = net.predict([read_image(path)], top=args.top)[0]
            except DeepVisError as error:
                print(f"error: {error}")
                continue
            print(path)
            for label, probability in predictions:
                print(f"  {probability:7.4f}  {label}")
    except DeepVisError as error:
        exit_with_message(error)


if __name__ == "__main__":
    main()
