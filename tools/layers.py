"""List every layer of a model with its shape and kind.

    python -m tools.layers [--model M]
"""
import argparse

from app.errors import DeepVisError, exit_with_message
from app.net import Net


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.layers", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model_zoo name or model file (default: the default model)")
    args = parser.parse_args(argv)
    try:
        net = Net.load(args.model, provider="cpu")
    except DeepVisError as error:
        exit_with_message(error)
    print(f"{net.spec.name}: input {net.input_name} {' x '.join(map(str, net.input_shape))}, "
          f"{len(net.layers)} layers, {net.provider}")
    width = max(len(layer.name) for layer in net.layers)
    for layer in net.layers:
        shape = " x ".join(map(str, layer.shape)) or "scalar"
        print(f"{layer.name:<{width}}  {layer.op_type:<20} {layer.kind:<6}  {shape}")


if __name__ == "__main__":
    main()
