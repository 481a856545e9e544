"""Export one layer's activation for an image as a 3-D volume (NRRD + .npy) for volume viewers.

    python -m tools.export_volume IMAGE --layer L [--model M] [--mip view.png] [--angle 30] [--cpu|--gpu]
        [--settings FILE] --out OUT

Writes OUT.nrrd (float32, raw, little endian; sizes W H C) and OUT.npy (C x H x W); with --mip also
a picture of the volume's maximum-intensity projection turned by --angle degrees.
"""
from pathlib import Path

from app.files import write_image_atomic
from app.views import volume
from tools import cli


def parse_args(argv):
    parser = cli.parser("python -m tools.export_volume", __doc__)
    parser.add_argument("image", help="image file")
    parser.add_argument("--layer", required=True, help="layer name (python -m tools.layers lists them)")
    parser.add_argument("--mip", default=None, help="also write the projection picture to this .png")
    parser.add_argument("--angle", type=float, default=30.0, help="turn of the projection in degrees (30)")
    parser.add_argument("--out", required=True, help="output path without suffix")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = parse_args(argv)
        net = cli.load_net(args, settings)
        net.layer(args.layer)
        activation = net.forward([cli.read_one_image(args.image)])[args.layer][0]
        for path in volume.export_volume(activation, Path(args.out), layer=args.layer):
            print(f"{path}: {args.layer} {'x'.join(str(s) for s in activation.shape)}")
        if args.mip:
            picture = volume.mip_image(activation if activation.ndim != 1 else activation[:, None, None], args.angle)
            write_image_atomic(args.mip, picture)
            print(args.mip)


if __name__ == "__main__":
    main()
