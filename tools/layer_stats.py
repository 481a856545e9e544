"""Per-layer histograms of channel maxima, inactivity and channel correlation, from a find_maxes run.

    python -m tools.layer_stats --maxes OUT/maxes.json [--layers L1,L2|all] [--bins 50]
        [--order cluster|pca|none] [--ray [ADDRESS]] [--actors N] [--settings FILE]

Writes OUT/stats/<layer>/{stats.npz, histograms.png, inactivity.png, correlation.png} beside maxes.json.
--ray computes one layer per task on a Ray pool whose workers read the chunks (this machine, or a file
system every node sees) and writes the same files here (docs/distributed.md).
"""
import argparse
from pathlib import Path

from app.offline import layer_stats as stats
from tools import cli


def parse_args(argv, settings):
    parser = argparse.ArgumentParser(prog="python -m tools.layer_stats", description=__doc__.splitlines()[0],
                                     epilog=cli.EXIT_STATUS)
    cli.add_settings_file(parser)
    parser.add_argument("--maxes", required=True, help="the maxes.json tools.find_maxes wrote")
    parser.add_argument("--layers", default="all", help="comma list of layers, or all (every layer stored)")
    parser.add_argument("--bins", type=int, default=settings.layer_stats_bins,
                        help=f"bins of each histogram ({settings.layer_stats_bins})")
    parser.add_argument("--order", default=settings.layer_stats_order, choices=stats.ORDERS,
                        help=f"order of the correlation matrix's channels ({settings.layer_stats_order})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    cli.add_ray(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = parse_args(argv, settings)
        results = stats.layer_stats(args.maxes, args.layers, bins=args.bins, order=args.order,
                                    progress=not args.quiet, pool=cli.ray_pool(args, settings))
    root = Path(args.maxes).parent / stats.STATS_DIR
    for layer, result in results.items():
        dead = (result.percent_dead >= 100).sum()
        print(f"{layer}: {len(result.percent_dead)} channels, {dead} dead on every image, "
              f"mean {result.percent_dead.mean():.1f}% dead")
    print(f"written under {root}")


if __name__ == "__main__":
    main()
