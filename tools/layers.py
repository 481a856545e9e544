"""List every layer of a model with its shape and kind.

    python -m tools.layers [--model M] [--cpu|--gpu] [--settings FILE]
"""
from tools import cli


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = cli.parser("python -m tools.layers", __doc__).parse_args(argv)
        net = cli.load_net(args, settings)
    print(f"{net.spec.name}: input {net.input_name} {' x '.join(map(str, net.input_shape))}, "
          f"{len(net.layers)} layers, {net.provider}")
    width = max(len(layer.name) for layer in net.layers)
    for layer in net.layers:
        shape = " x ".join(map(str, layer.shape)) or "scalar"
        print(f"{layer.name:<{width}}  {layer.op_type:<20} {layer.kind:<6}  {shape}")


if __name__ == "__main__":
    main()
