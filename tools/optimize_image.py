"""Regularized activation maximization: for each unit of a layer, an image that makes it fire.

    python -m tools.optimize_image --layer L [--units 0-63|all] [--preset 1|2|3|4|5] [--seed S]
        [--batch N] [--iters N] [--model M] [--cpu|--gpu] [--settings FILE] --out OUT

Presets 1-4 are the four hyperparameter sets of Yosinski et al. 2015 (3, the default, made most of
the paper's figures); 5 adds Lucid-style random jitter, zoom and rotation to preset 3. Writes
OUT/<layer>/unit_NNNN/opt.png and opt.json (activation, preset, iterations) per unit and
OUT/<layer>/sprite_opt.png; units already done are skipped, so a killed run resumes.
"""
from app.errors import DeepVisError
from app.offline import optimize
from app.offline.regularizers import PRESETS
from tools import cli


def parse_args(argv, settings):
    parser = cli.parser("python -m tools.optimize_image", __doc__)
    parser.add_argument("--layer", required=True, help="layer name (python -m tools.layers lists them)")
    parser.add_argument("--units", default="all", help="all, N, A-B or a comma list of them (all)")
    parser.add_argument("--preset", type=int, default=settings.optimize_preset, choices=sorted(PRESETS),
                        help=f"hyperparameter set ({settings.optimize_preset})")
    parser.add_argument("--seed", type=int, default=0, help="random seed: one seed, one result (0)")
    parser.add_argument("--batch", type=int, default=settings.optimize_batch,
                        help=f"units optimized together ({settings.optimize_batch})")
    parser.add_argument("--iters", type=int, default=None, help="steps per unit (default: the preset's)")
    parser.add_argument("--out", required=True, help="output folder (the app's unit image folder)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = parse_args(argv, settings)
        if args.batch < 1 or (args.iters is not None and args.iters < 1):
            raise DeepVisError(f"{args.out}: --batch and --iters must be at least 1")
        net = cli.load_net(args, settings)
        where = f"{net.spec.name}: layer {args.layer}"
        units = optimize.parse_units(args.units, net.layer(args.layer).shape[0], where)
        ran = optimize.optimize_layer(net, args.layer, units, args.out, preset=args.preset, seed=args.seed,
                                      batch=args.batch, iterations=args.iters,
                                      sprite_tile=settings.offline_sprite_tile)
        print(f"{args.out}: {args.layer}: optimized {len(ran)} units, {len(units) - len(ran)} already done")


if __name__ == "__main__":
    main()
