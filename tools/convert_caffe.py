"""Convert a Caffe net (prototxt + caffemodel) to an ONNX file, every layer's output named after it.

    python -m tools.convert_caffe DEPLOY.prototxt [WEIGHTS.caffemodel] -o OUT.onnx
        [--cut-before LAYER ...] [--input-shape N,C,H,W] [--random-weights SEED]

Without weights the graph is written with zero weights (for inspecting layers and receptive fields).
--random-weights SEED fills a deploy prototxt that has no weights with seeded He-init weights and
also writes them as OUT.caffemodel, so Caffe or OpenCV can run the same net for a comparison.
A net that cannot be converted gets one line on stderr, exit status 2, and no file is written.
"""
import argparse
from pathlib import Path

from app.errors import DeepVisError, exit_with_message
from app.files import write_bytes_atomic
from app.net.caffe import convert
from app.net.caffe.convert import convert_random


def _shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not N,C,H,W (four positive integers)")
    return shape


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.convert_caffe", description=__doc__.splitlines()[0],
                                     epilog="exit status: 0 when the ONNX file was written; 2 when the net "
                                            "cannot be converted (one line on stderr, nothing written)")
    parser.add_argument("prototxt", type=Path, help="deploy (or train_val) prototxt")
    parser.add_argument("weights", type=Path, nargs="?", help="caffemodel (leave out for zero weights)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--cut-before", nargs="+", action="extend", default=[], metavar="LAYER",
                        help="leave out these layers and all that depend on them (e.g. PriorBox, DetectionOutput)")
    parser.add_argument("--input-shape", type=_shape, default=None, metavar="N,C,H,W",
                        help="input shape, for nets whose data layer does not give it")
    parser.add_argument("--random-weights", type=int, default=None, metavar="SEED",
                        help="seeded random weights instead of a caffemodel; also written to OUT.caffemodel")
    args = parser.parse_args(argv)
    if args.random_weights is not None and args.weights is not None:
        parser.error("give either a caffemodel or --random-weights, not both")
    options = dict(input_shape=args.input_shape, cut_before=args.cut_before)
    random_caffemodel = args.output.with_suffix(".caffemodel")
    try:
        if args.random_weights is None:
            model = convert(args.prototxt, args.weights, **options)
        else:
            model = convert_random(args.prototxt, args.random_weights, random_caffemodel, **options)
        try:
            write_bytes_atomic(args.output, model.SerializeToString())
        except OSError as error:
            raise DeepVisError(f"{args.output}: cannot write ({error.strerror})") from None
    except DeepVisError as error:
        exit_with_message(error)
    outputs = ", ".join(output.name for output in model.graph.output)
    print(f"{args.output}: {len(model.graph.node)} nodes, outputs {outputs}")
    if args.random_weights is not None:
        print(f"{random_caffemodel}: the random weights (seed {args.random_weights}) as a caffemodel")


if __name__ == "__main__":
    main()
