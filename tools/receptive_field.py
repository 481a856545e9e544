"""Receptive field of every layer: size, effective stride and padding, worked out from the graph.

    python -m tools.receptive_field [--model M] [--probe] [--batch N] [--random-weights SEED] [--cpu|--gpu]
        [--settings FILE]

A position (y, x) of a layer sees input rows [y * stride - padding, y * stride - padding + size) and
columns alike. --probe changes each input row and column in turn through the real net and counts
the (line, position) pairs where the positions that changed disagree with the table (0 = agrees).
The graph is enough: a Caffe prototxt without a caffemodel gets seeded random weights (seed 0).
"""
from pathlib import Path

from app.errors import DeepVisError
from app.net import receptive_field, spec
from tools import cli


def _pair(values) -> str:
    return str(values[0]) if values[0] == values[1] else f"{values[0]}x{values[1]}"


def table(net, fields: dict, mismatches: dict = None) -> list:
    """The printed lines: layer, shape, size, stride, padding (and the probe's verdict)."""
    width = max(len(layer.name) for layer in net.layers)
    lines = [f"{'layer':<{width}}  {'shape':<16} {'size':>11} {'stride':>7} {'padding':>8}"
             + ("  probe" if mismatches is not None else "")]
    for layer in net.layers:
        field = fields[layer.name]
        shape = " x ".join(map(str, layer.shape))
        if field.whole:
            numbers = f"{'whole input':>11} {'-':>7} {'-':>8}"
        else:
            numbers = f"{_pair(field.size):>11} {_pair(field.stride):>7} {_pair(field.padding):>8}"
        verdict = ""
        if mismatches is not None:
            count = mismatches.get(layer.name)
            verdict = "  -" if count is None else ("  agrees" if count == 0 else f"  DIFFERS at {count}")
        lines.append(f"{layer.name:<{width}}  {shape:<16} {numbers}{verdict}")
    return lines


def _seed(args, model):
    """The random weights seed: as given, or 0 for a prototxt with no caffemodel beside it."""
    if args.random_weights is not None or not str(model).endswith(".prototxt"):
        return args.random_weights
    try:
        spec.caffemodel_beside(Path(model))
    except DeepVisError:
        return 0
    return None


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        parser = cli.parser("python -m tools.receptive_field", __doc__, random_weights=(
            "random weights for a Caffe prototxt (default: 0 when no caffemodel is beside it)"))
        parser.add_argument("--probe", action="store_true", help="check the table by changing input rows / columns")
        parser.add_argument("--batch", type=int, default=16, help="probe inputs per forward pass (16)")
        args = parser.parse_args(argv)
        net = cli.load_net(args, settings, random_weights=_seed(args, args.model or settings.model))
        fields = receptive_field.receptive_fields(net)
        mismatches = None
        if args.probe:
            mismatches = receptive_field.disagreements(net, fields, receptive_field.probe(net, batch=args.batch))
    print(f"{net.spec.name}: input {' x '.join(map(str, net.input_shape))}")
    print("\n".join(table(net, fields, mismatches)))
    if mismatches is not None:
        differing = [name for name, count in mismatches.items() if count]
        print(f"probe: {len(mismatches) - len(differing)} of {len(mismatches)} map layers agree")


if __name__ == "__main__":
    main()
