"""Occlusion saliency of one unit for one image: a map of how much the unit drops where a patch covers.

    python -m tools.occlusion IMAGE --layer L --unit U [--model M] [--patch 32] [--stride 8]
        [--fill mean|zero|0-255] [--at Y,X] [--batch 8] [--overlay] [--cpu|--gpu] [--settings FILE] --out map.png

Writes map.png (red: covering lowers the unit, blue: raises it; over the input with --overlay)
and map.npy beside it (the raw drops, float32, at the net's input size).
"""
import argparse
from pathlib import Path

import cv2
import numpy as np

from app.errors import DeepVisError
from app.views import occlusion
from tools import cli


def position(text: str) -> tuple:
    try:
        y, x = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a position as Y,X") from None
    return y, x


def parse_args(argv):
    parser = cli.parser("python -m tools.occlusion", __doc__)
    parser.add_argument("image", help="image file")
    parser.add_argument("--layer", required=True, help="layer name (python -m tools.layers lists them)")
    parser.add_argument("--unit", type=int, required=True, help="channel / unit of the layer")
    parser.add_argument("--patch", type=int, default=32, help="occluding square's side in input pixels (32)")
    parser.add_argument("--stride", type=int, default=8, help="step between patches in input pixels (8)")
    parser.add_argument("--fill", default="mean",
                        help="mean (the image's channel means), zero (the model's mean) or a gray value 0-255")
    parser.add_argument("--at", type=position, default=None, help="score the unit at Y,X instead of its mean")
    parser.add_argument("--batch", type=int, default=8, help="occluded images per forward run (8)")
    parser.add_argument("--overlay", action="store_true", help="draw the map over the input image")
    parser.add_argument("--out", required=True, help="output .png (the .npy goes beside it)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = parse_args(argv)
        net = cli.load_net(args, settings)
        batch = net.preprocess([cli.read_one_image(args.image)])
        heat = occlusion.occlusion_map(net, batch, args.layer, args.unit, patch=args.patch, stride=args.stride,
                                       fill=args.fill, batch_size=args.batch, at=args.at)
        if net.spec.input.transpose:  # the map is in the input tensor's layout; show it as the image
            heat = np.ascontiguousarray(heat.T)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out.with_suffix(".npy"), heat)
        background = net.deprocess(batch)[0] if args.overlay else None
        if not cv2.imwrite(str(out.with_suffix(".png")), occlusion.render_map(heat, background)):
            raise DeepVisError(f"{out}: cannot write the image")
        print(f"{out.with_suffix('.png')}: {args.layer} unit {args.unit}, largest drop {heat.max():.4g}")


if __name__ == "__main__":
    main()
