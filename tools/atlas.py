"""A static web site of every unit: index, layer and unit pages over what the offline jobs wrote.

    python -m tools.atlas --units-dir DIR [--model M] [--layers L1,L2|all] [--out SITE] [--title T] [--link]

Reads what tools.find_maxes, crop_max_patches, optimize_image and layer_stats wrote under DIR
(whatever subset exists) and writes plain HTML, CSS, JavaScript and the images to SITE; it opens
from file:// and from any static host. A rerun writes only what changed; a run killed at any moment and run again ends with the same site.
A unit's file that cannot be read (a damaged info.json, opt.json, stats.npz or image) is one line
on stderr and is left out; the rest of the site is written, then the exit status is 1.
"""
import sys
from pathlib import Path

from app.atlas import model_facts, site, units_dir
from app.errors import DeepVisError
from tools import cli


def parse_args(argv, settings):
    parser = cli.parser("python -m tools.atlas", __doc__, model_default="maxes.json's model, else settings.py's")
    parser.add_argument("--units-dir", required=True, metavar="DIR",
                        help="the --out folder of the offline tools (maxes.json, <layer>/unit_NNNN/, stats/)")
    parser.add_argument("--layers", default="all", help="comma list of layers, or all (every layer with files)")
    parser.add_argument("--out", default=None, metavar="SITE",
                        help="the site's folder (default: settings.py's atlas_dir, where the app looks)")
    parser.add_argument("--title", default=None, help="the site's title (default: '<model> atlas')")
    parser.add_argument("--link", action="store_true", help="hard-link the images instead of copying them")
    return parser.parse_args(argv)


def build(argv=None) -> tuple:
    """Build the site these arguments ask for: (its folder, site.Built, the units_dir.UnitsDir read)."""
    settings = cli.settings(argv)
    args = parse_args(argv, settings)
    if not Path(args.units_dir).expanduser().is_dir():
        raise DeepVisError(f"{args.units_dir}: no such folder (the --out of the offline tools)")
    net = cli.load_net(args, settings, model=units_dir.recorded_model(args.units_dir))
    names = [layer.name for layer in net.layers]
    if args.layers != "all":
        wanted = args.layers.split(",")
        unknown = [name for name in wanted if name not in names]
        if unknown:
            raise DeepVisError(f"{net.spec.name}: no layer {unknown[0]!r} (python -m tools.layers lists them)")
        names = [name for name in names if name in wanted]
    units = units_dir.read_units_dir(args.units_dir, names)
    if not units.layers:
        raise DeepVisError(f"{args.units_dir}: nothing of {net.spec.name}'s layers here (run the offline tools "
                           "with --out pointing here first)")
    filters = {name: model_facts.first_layer_filters(net, name) for name in units.layers}
    out = Path(args.out).expanduser() if args.out else site.site_folder(settings.atlas_dir, net.spec.name)
    site.check_folder(out, net.spec.name)
    built = site.build_site(units, model_facts.model_facts(net), out, args.title, args.link,
                            {name: tiles for name, tiles in filters.items() if tiles})
    return out, built, units


def main(argv=None) -> None:
    with cli.one_line_errors():
        out, built, units = build(argv)
    print(f"{out}: {len(units.layers)} layers, {built.files} files, {built.bytes / 2 ** 20:.1f} MiB; "
          f"{len(built.written)} files written now" + (f", {len(built.removed)} no page uses removed" if built.removed else ""))
    print(f"open {(out.resolve() / 'index.html').as_uri()}")
    for problem in built.problems:
        print(f"error: {problem}", file=sys.stderr)
    if built.problems:
        print(f"error: {len(built.problems)} files of {units.root} could not be read; the rest of the site is written",
              file=sys.stderr)
        raise SystemExit(cli.SOME_INPUTS_FAILED)


if __name__ == "__main__":
    main()
