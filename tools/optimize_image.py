"""Activation maximization: for each unit of a layer, an image that makes it fire.

    python -m tools.optimize_image --layer L [--units 0-63|all] [--preset 1|2|3|4|5|lucid|maco]
        [--objective neuron|channel|class|TEXT] [--size N|WxH] [--diversity N] [--seed S]
        [--batch N] [--iters N] [--ray [ADDRESS]] [--actors N] [--model M] [--cpu|--gpu] [--settings FILE] --out OUT

Presets 1-4 are the four hyperparameter sets of Yosinski et al. 2015 in pixel space (3 made most of
the paper's figures); 5 adds Lucid-style random jitter, zoom and rotation to preset 3. lucid (the
default; Olah et al. 2017: a 1/f Fourier image in decorrelated colours, Adam, 512 steps) and maco (Fel et al. 2023:
only the Fourier phase, 32 noisy crops a step, NAdam, 256 steps) make a --size image (128) resized to
the net's input. --objective: each unit's neuron (the map's centre; the default of 1-5), its channel
(the map's mean; the default of lucid and maco), class (--units are classes of the logits layer), or
a written objective such as "blocks.3.0.dw:5 + 0.5*blocks.3.0.dw:7" (docs/offline_images.md).
--diversity N: N images of each unit pushed apart (Lucid's Gram penalty), as one montage.
Writes OUT/<layer>/unit_NNNN/opt.png, opt_raw.png, opt.json (activation, preset, objective, seed,
iterations), opt_transparency.png (lucid, maco) and OUT/<layer>/sprite_opt.png; a written objective
goes to OUT/objectives/<its text>/. Units already done are skipped, so a killed run resumes.
--ray optimizes the groups of --batch units on a Ray actor pool and writes the same files here
(docs/distributed.md); a written objective is one image and runs here.
"""
import re
from pathlib import Path

import numpy as np

from app.errors import DeepVisError
from app.files import write_image_atomic, write_json_atomic
from app.offline import objectives, optimize, render
from app.offline.montage import grid
from app.unit_images import shortened
from tools import cli

UNIT_OBJECTIVES = ("neuron", "channel", "class")


def parse_size(text):
    """"128" or "160x128" (width x height) -> (height, width); None stays None."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text)
    if not match or int(match.group(1)) < 8 or int(match.group(2) or 8) < 8:
        raise DeepVisError(f"--size {text}: give N or WxH in pixels, at least 8")
    width = int(match.group(1))
    return (int(match.group(2) or width), width)


def parse_args(argv, settings):
    parser = cli.parser("python -m tools.optimize_image", __doc__)
    parser.add_argument("--layer", help="layer name (python -m tools.layers lists them); "
                                        "not needed for class or a written objective")
    parser.add_argument("--units", default="all", help="all, N, A-B or a comma list of them (all)")
    parser.add_argument("--preset", default=str(settings.optimize_preset), choices=optimize.PRESET_NAMES,
                        help=f"hyperparameter set ({settings.optimize_preset})")
    parser.add_argument("--objective", default=None,
                        help="neuron, channel, class or a written objective (default: the preset's)")
    parser.add_argument("--size", default=None, help="lucid, maco: image size N or WxH (the preset's, 128)")
    parser.add_argument("--diversity", type=int, default=1, help="lucid, maco: images per unit (1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: one seed, one result (0)")
    parser.add_argument("--batch", type=int, default=settings.optimize_batch,
                        help=f"images through the net together ({settings.optimize_batch}; "
                             "maco's 32 crops of one unit count 32)")
    parser.add_argument("--iters", type=int, default=None, help="steps per unit (default: the preset's)")
    cli.add_ray(parser)
    parser.add_argument("--out", required=True, help="output folder (the app's unit image folder)")
    return parser.parse_args(argv)


def render_written(net, text: str, args, size, diversity_weight: float) -> str:
    """A written objective's image: OUT/objectives/<text>/opt.png, opt_transparency.png, opt.json."""
    key, recipe = optimize.preset_named(args.preset)
    if not isinstance(recipe, render.Recipe):
        raise DeepVisError(f"--objective {text!r}: a written objective needs preset lucid or maco")
    terms = objectives.parse(net, text)
    streams = [np.random.default_rng([args.seed, copy]) for copy in range(args.diversity)]
    groups = [list(range(args.diversity))] if args.diversity > 1 else None
    results = render.render(net, [terms] * args.diversity, recipe, streams, args.iters, size, groups,
                            diversity_weight)
    folder = Path(args.out) / "objectives" / shortened(re.sub(r"[^\w.+@,=-]+", "_", text.replace(" ", "")), text)
    write_image_atomic(folder / "opt.png", grid([r.image for r in results], columns=args.diversity))
    transparency = sum(r.transparency for r in results)
    write_image_atomic(folder / "opt_transparency.png",
                       np.uint8(np.round(255 * transparency / max(float(transparency.max()), 1e-12))))
    write_json_atomic(folder / "opt.json", dict(
        objective=text, preset=key, seed=args.seed, iterations=recipe.iterations if args.iters is None else args.iters,
        size=list(size or (recipe.size, recipe.size)), diversity=args.diversity, model=net.spec.name,
        activation=float(np.mean([r.activation for r in results])),
        start_activation=float(np.mean([r.start_activation for r in results]))), indent=1)
    return str(folder)


def main(argv=None) -> None:
    with cli.one_line_errors():
        settings = cli.settings(argv)
        args = parse_args(argv, settings)
        if args.batch < 1 or (args.iters is not None and args.iters < 1) or args.diversity < 1:
            raise DeepVisError(f"{args.out}: --batch, --iters and --diversity must be at least 1")
        size = parse_size(args.size)
        net = cli.load_net(args, settings)
        objective = args.objective
        if objective not in (None,) + UNIT_OBJECTIVES:
            folder = render_written(net, objective, args, size, settings.optimize_diversity_weight)
            print(f"{folder}: optimized {objective!r}")
            return
        layer = args.layer
        if objective == "class":
            layer, objective = net.logits_layer(), "channel"
            if layer is None:
                raise DeepVisError(f"{net.spec.name}: --objective class: the net has no class output")
        if layer is None:
            raise DeepVisError(f"{args.out}: --layer is needed (or --objective class or a written objective)")
        where = f"{net.spec.name}: layer {layer}"
        units = optimize.parse_units(args.units, net.layer(layer).shape[0], where)
        ran = optimize.optimize_layer(net, layer, units, args.out, preset=args.preset, seed=args.seed,
                                      batch=args.batch, iterations=args.iters,
                                      sprite_tile=settings.offline_sprite_tile, objective=objective, size=size,
                                      copies=args.diversity, diversity_weight=settings.optimize_diversity_weight,
                                      pool=cli.ray_pool(args, settings))
        print(f"{args.out}: {layer}: optimized {len(ran)} units, {len(units) - len(ran)} already done")


if __name__ == "__main__":
    main()
