"""Receptive-field crops of each unit's top images and backward passes from it, with montages.

    python -m tools.crop_max_patches --maxes OUT/maxes.json [--modes maxim,deconv,guided,backprop]
        [--layers L1,L2] [--units 0-63|all] [--batch N] [--ray [ADDRESS]] [--actors N] [--model M] [--cpu|--gpu]
        [--settings FILE] --out OUT

Reads the top-k (image, y, x) of every unit from tools.find_maxes's maxes.json and writes, per unit,
OUT/<layer>/unit_NNNN/<mode>_KKK.png crops, montage_<mode>.png (3 x 3) and info.json, and per layer
OUT/<layer>/sprite_<mode>.png. Units with an info.json are skipped, so a killed run resumes.
A unit whose top images cannot be read (moved or changed since find_maxes) is left undone with one
line on stderr, the others are still cropped, and the exit status is then 1.
Where a unit's receptive field is larger than the image, its crops show the image inside the field
scaled to fill the tile, with a ring at the unit's position. After a few units it prints an
estimate of the layer's time (units x seconds per unit). --ray crops the groups of units on a Ray
actor pool and writes the same files here (docs/distributed.md).
"""
import sys

from app.errors import DeepVisError
from app.offline import crops
from app.offline.maxes import read_maxes
from app.offline.optimize import parse_units
from tools import cli


def parse_args(argv, settings):
    parser = cli.parser("python -m tools.crop_max_patches", __doc__, model_default="maxes.json's model")
    parser.add_argument("--maxes", required=True, help="maxes.json written by tools.find_maxes")
    parser.add_argument("--modes", default=",".join(crops.KINDS),
                        help=f"comma list of {', '.join(crops.KINDS)} (all)")
    parser.add_argument("--layers", default=None, help="comma list of layers (default: every layer in maxes.json)")
    parser.add_argument("--units", default="all", help="all, N, A-B or a comma list of them, in every layer (all)")
    parser.add_argument("--batch", type=int, default=settings.crop_batch,
                        help=f"net input rows run together; entries whose fields do not overlap share one "
                             f"({settings.crop_batch})")
    cli.add_ray(parser)
    parser.add_argument("--out", required=True, help="output folder (the app's unit image folder)")
    return parser.parse_args(argv)


def fields_for(net, layers: list) -> dict:
    """Receptive fields of the map layers among ``layers`` (vector layers see the whole input)."""
    if all(net.layer(layer).kind != "map" for layer in layers):
        return {}
    from app.net.receptive_field import receptive_fields

    return receptive_fields(net)


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = parse_args(argv, settings)
        maxes = read_maxes(args.maxes)
        if args.batch < 1:
            raise DeepVisError(f"{args.maxes}: --batch must be at least 1")
        net = cli.load_net(args, settings, model=maxes.get("model"))
        layers = args.layers.split(",") if args.layers else list(maxes["layers"])
        kinds = [kind for kind in args.modes.split(",") if kind]
        fields = fields_for(net, layers)
        pool = cli.ray_pool(args, settings)
        failures, reported = [], 0
        for layer in layers:
            if layer not in maxes["layers"]:
                raise DeepVisError(f"{args.maxes}: layer {layer}: not in maxes.json (run find_maxes on it)")
            units = parse_units(args.units, len(maxes["layers"][layer]), f"{args.maxes}: layer {layer}")
            ran = crops.crop_layer(net, maxes, layer, args.out, fields.get(layer), kinds=kinds, units=units,
                                   batch=args.batch, sprite_tile=settings.offline_sprite_tile,
                                   percentile=settings.picture_percentile, pool=pool, failures=failures)
            failed = [unit for units_failed, _ in failures[reported:] for unit in units_failed]
            print(f"{args.out}: {layer}: cropped {len(ran)} units, {len(units) - len(ran) - len(failed)} already done"
                  + (f", {len(failed)} failed" if failed else ""))
            for units_failed, line in failures[reported:]:
                print(f"error: {line}; {layer} units {','.join(map(str, units_failed))} left undone (restore the image, "
                      "then run again)", file=sys.stderr)
            reported = len(failures)
    if failures:
        count = sum(len(units_failed) for units_failed, _ in failures)
        print(f"error: {count} units could not be cropped", file=sys.stderr)
        raise SystemExit(cli.SOME_INPUTS_FAILED)


if __name__ == "__main__":
    main()
