"""Feature visualization quality by preset: do the images show what the class is?

    python bench/bench_featurevis.py [--model M] [--presets 3,lucid,maco] [--classes 20 numbers]
        [--steps 512] [--maco-crops 32] [--batch 8] [--photos DIR] [--figure IMAGE] [--speed] [--cpu]

For each preset, on the same classes and the same step budget (--steps; 0: each preset's own):
- recognizability: each class unit's image (the logit before the softmax), classified under 8
  perturbations the optimizer never used (a random resized crop of 60-100 % of the area, a
  horizontal flip half the time, JPEG at quality 75, a small colour jitter): the percent of
  perturbed images whose top-5 holds the class. Adversarial noise fails; the object's features pass.
- the logit on its image over the class's highest logit on the photos of --photos (default: the
  sample photos; above 1: the image beats every photo);
- seconds per unit (the batch of --batch units, this machine).
--figure writes the first 8 classes' images as opt.png shows them, a row per preset. --speed adds
seconds per unit for lucid and maco at 128 and 224 px, batch 1 and --batch views (4 steps, scaled
to each preset's steps).
"""
import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.inputs.samples import default_input_dir  # noqa: E402
from app.labels import class_name  # noqa: E402
from app.net import Net, heap  # noqa: E402
from app.net.preprocess import read_image  # noqa: E402
from app.offline import optimize  # noqa: E402
from app.offline.montage import PAD, grid  # noqa: E402
from app.offline.render import Recipe  # noqa: E402

# goldfish, ostrich, flamingo, golden retriever, tabby, analog clock, orange, banana (the figure's
# eight), bald eagle, hummingbird, king penguin, lion, bee, monarch, zebra, balloon, basketball,
# jeep, sports car, volcano
CLASSES = (1, 9, 130, 207, 281, 409, 950, 954, 22, 94, 145, 291, 309, 323, 340, 417, 430, 609, 817, 980)
PERTURBATIONS = 8


def perturb(image: np.ndarray, stream) -> np.ndarray:
    """One random perturbation of a H x W x 3 uint8 BGR image."""
    height, width = image.shape[:2]
    area = stream.uniform(0.6, 1.0) * height * width
    aspect = np.exp(stream.uniform(np.log(3 / 4), np.log(4 / 3)))
    crop_h, crop_w = min(height, round(np.sqrt(area / aspect))), min(width, round(np.sqrt(area * aspect)))
    top, left = stream.integers(0, height - crop_h + 1), stream.integers(0, width - crop_w + 1)
    image = cv2.resize(image[top:top + crop_h, left:left + crop_w], (width, height), interpolation=cv2.INTER_LINEAR)
    if stream.random() < 0.5:
        image = image[:, ::-1]
    _, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, 75])
    image = cv2.imdecode(encoded, cv2.IMREAD_COLOR).astype(np.float32)
    brightness, contrast, saturation = stream.uniform(0.9, 1.1, 3)
    gray = image.mean(axis=2, keepdims=True)
    image = (gray + (image - gray) * saturation - image.mean()) * contrast + image.mean() * brightness
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def optimized_images(net, layer: str, classes, preset: str, steps, batch: int, maco_crops: int) -> tuple:
    """(images, as opt.png shows them, seconds per unit) for each class unit with ``preset``: the
    paper's presets' images are stretched for viewing, and classified as they are."""
    key, settings = optimize.preset_named(preset)
    if isinstance(settings, Recipe) and settings.crops > 1:
        settings = dataclasses.replace(settings, crops=maco_crops)
    images, shown, start = [], [], time.perf_counter()
    for first in range(0, len(classes), batch):
        group = classes[first:first + batch]
        if isinstance(settings, Recipe):
            results = optimize.render_units(net, layer, group, settings, iterations=steps or None)
        else:
            results = optimize.optimize_units(net, layer, group, settings, iterations=steps or None)
        images += [result.image for result in results]
        shown += [result.shown for result in results]
    return images, shown, (time.perf_counter() - start) / len(classes)


def top5_rate(net, layer: str, images, classes) -> float:
    hits = 0
    for image, unit in zip(images, classes):
        stream = np.random.default_rng([1, unit])
        logits = net.forward([perturb(image, stream) for _ in range(PERTURBATIONS)])[layer]
        hits += int(np.sum(np.argsort(-logits, axis=1)[:, :5] == unit))
    return 100.0 * hits / (PERTURBATIONS * len(classes))


def photo_maxima(net, layer: str, folder) -> np.ndarray:
    paths = sorted(path for path in Path(folder).iterdir() if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return np.max([net.forward([read_image(path)])[layer][0] for path in paths], axis=0)


def figure(rows: dict, path, names: list, tile: int = 128) -> None:
    """A row per preset of the first 8 classes' images, under a header naming each column's class."""
    label = 150
    strips = []
    for name, images in rows.items():
        strip = grid([cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA) for image in images[:8]],
                     columns=min(8, len(images)))
        caption = np.zeros((strip.shape[0], label, 3), np.uint8)
        cv2.putText(caption, name, (8, strip.shape[0] // 2 + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        strips.append(np.hstack([caption, strip]))
    header = np.zeros((24, strips[0].shape[1], 3), np.uint8)
    for column, name in enumerate(names[:8]):
        cv2.putText(header, name.split(",")[0][:17], (label + column * (tile + PAD) + 3, 17),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), np.vstack([header] + [np.vstack([s, np.zeros((4, s.shape[1], 3), np.uint8)])
                                                  for s in strips]))


def speed(net, layer: str, batch: int) -> None:
    steps = 4
    for preset in ("lucid", "maco"):
        _, recipe = optimize.preset_named(preset)
        for size in (128, 224):
            for count in sorted({1, max(1, batch // recipe.crops)}):   # batch counts views, as optimize_layer
                optimize.render_units(net, layer, range(count), recipe, iterations=1, size=(size, size))  # warm-up
                start = time.perf_counter()
                optimize.render_units(net, layer, range(count), recipe, iterations=steps, size=(size, size))
                per_step = (time.perf_counter() - start) / steps / count
                print(f"speed {preset} {size} px batch {count}: {per_step:.3f} s/unit/step, "
                      f"{per_step * recipe.iterations:.0f} s/unit for its {recipe.iterations} steps")


def main() -> None:
    heap.keep_freed_memory()  # as the app and the offline tools run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--presets", default="3,lucid,maco")
    parser.add_argument("--classes", default=",".join(map(str, CLASSES)))
    parser.add_argument("--steps", type=int, default=512, help="steps for every preset (0: each preset's own)")
    parser.add_argument("--maco-crops", type=int, default=32, help="maco's crops per step (32, its own)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--photos", default=None, help="folder of photos (default: the sample photos)")
    parser.add_argument("--figure", default=None, help="PNG: the first 8 classes, a row per preset")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--cpu", action="store_true")
    args = parser.parse_args()
    net = Net.load(args.model, provider="cpu" if args.cpu else "auto")
    layer = net.logits_layer()
    classes = [int(unit) for unit in args.classes.split(",")]
    best_photo = photo_maxima(net, layer, args.photos or default_input_dir())
    print(f"model {net.spec.name}, layer {layer}, {len(classes)} classes, steps {args.steps or 'own'}, "
          f"maco crops {args.maco_crops}, {net.provider}")
    print("| preset | top-5 under perturbations | logit / best photo (median, min-max) | s / unit |")
    print("|---|---|---|---|")
    rows = {}
    for preset in args.presets.split(","):
        images, shown, seconds = optimized_images(net, layer, classes, preset, args.steps, args.batch, args.maco_crops)
        logits = net.forward(images)[layer]
        ratios = [logits[index, unit] / best_photo[unit] for index, unit in enumerate(classes)]
        print(f"| {preset} | {top5_rate(net, layer, images, classes):.0f} % | {np.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) | {seconds:.1f} |", flush=True)
        rows[preset if not preset.isdigit() else f"paper {preset}"] = shown
    if args.figure:
        figure(rows, args.figure, [class_name(net.labels, unit) for unit in classes])
        print(f"figure: {args.figure}")
    if args.speed:
        speed(net, layer, args.batch)


if __name__ == "__main__":
    main()
