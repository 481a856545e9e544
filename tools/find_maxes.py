"""Every channel's top-k images (by its spatial max, with the position) over a dataset, in one pass.

    python -m tools.find_maxes --images DIR_OR_LIST [--model M] [--layers units|all|L1,L2] [--top 9] [--min]
        [--batch N] [--checkpoint-every N] [--no-stats] [--ray [ADDRESS]] [--actors N] [--cpu|--gpu]
        [--settings FILE] --out OUT

DIR: every file of the folder in name order, also as a URI pyarrow reads (s3://bucket/folder, gs://...);
LIST: a text file of `path [label]` lines. Writes
OUT/maxes.json and, unless --no-stats, every image's channel maxima under OUT/channel_maxima/ (the
input of tools.layer_stats). Unreadable images are skipped, counted and named on stderr, one line
each, and the exit status is then 1 (the others are still ranked). A killed run restarted with
the same arguments goes on from its last checkpoint and ends with the same maxes.json. --ray scores
shards of the list on a Ray actor pool (docs/distributed.md): the same files, byte for byte.
"""
import sys
from pathlib import Path

from app.errors import DeepVisError
from app.offline import image_sources
from app.offline import maxes as find
from tools import cli


def parse_args(argv, settings):
    parser = cli.parser("python -m tools.find_maxes", __doc__)
    parser.add_argument("--images", required=True,
                        help="folder of images (or its URI: s3://, gs://, file://), or a list file of `path [label]` lines")
    parser.add_argument("--layers", default=settings.find_maxes_layers,
                        help="units (every layer but those only an activation reads), all, or a comma list of "
                             f"layers ({settings.find_maxes_layers})")
    parser.add_argument("--top", type=int, default=settings.find_maxes_top,
                        help=f"images kept per channel ({settings.find_maxes_top})")
    parser.add_argument("--min", action="store_true", help="also keep each channel's bottom-k (layers_min)")
    parser.add_argument("--batch", type=int, default=settings.find_maxes_batch,
                        help=f"images per forward pass ({settings.find_maxes_batch})")
    parser.add_argument("--checkpoint-every", type=int, default=settings.find_maxes_checkpoint_every,
                        help=f"batches between checkpoints ({settings.find_maxes_checkpoint_every})")
    parser.add_argument("--no-stats", action="store_true", help="do not store every image's channel maxima")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    cli.add_ray(parser)
    parser.add_argument("--out", required=True, help="output folder")
    return parser.parse_args(argv)


def model_reference(model, net) -> str:
    """How maxes.json names the model so that later tools load the same one: a path made absolute."""
    if model is None:
        return net.spec.name
    return str(Path(model).resolve()) if Path(model).exists() else str(model)


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = parse_args(argv, settings)
        model = args.model or settings.model
        net = cli.load_net(args, settings)
        paths, labels = find.list_images(args.images)
        job = find.FindMaxes(net, paths, find.choose_layers(net, args.layers), args.out, labels=labels,
                             model=model_reference(model, net), top=args.top, minima=args.min, batch=args.batch,
                             checkpoint_every=args.checkpoint_every, stats=not args.no_stats)
        maxes = job.run(progress=not args.quiet, pool=cli.ray_pool(args, settings))
    scored = len(maxes["images"]) - maxes["skipped_count"]
    print(f"{Path(args.out) / find.MAXES_FILE}: {len(maxes['shapes'])} layers, {scored} images scored, "
          f"{maxes['skipped_count']} unreadable skipped")
    if maxes["skipped_count"]:
        for path in maxes["skipped"]:
            print(f"error: {why_unreadable(path)}; skipped (fix or remove it, then run again with a new --out)",
                  file=sys.stderr)
        print(f"error: {maxes['skipped_count']} of {len(maxes['images'])} images could not be read "
              "(listed in maxes.json under skipped)", file=sys.stderr)
        raise SystemExit(cli.SOME_INPUTS_FAILED)


def why_unreadable(path: str) -> str:
    """The reader's line for a skipped image (read again: a checkpoint keeps only which ones)."""
    try:
        image_sources.read(path)
    except DeepVisError as error:
        return str(error)
    return f"{path}: could not be read when it was scored (it reads now)"

if __name__ == "__main__":
    main()
