"""`edgekit demo` (what `make demo` runs): the longest pipeline a fresh machine can run with nothing
downloaded but packages.

No model hub and no test data are reachable there, so the demo writes its own small real uint8
classifier (edgekit.tflite.builder), predicts what the Edge TPU compiler would do with it, classifies
generated pictures, saves them annotated, and benchmarks the model. The convert issue replaces the
model with a converted EfficientNet-Lite0.
"""

import os

import numpy as np

from edgekit.compiler import check
from edgekit.compiler.commands import format_prediction
from edgekit.runtime import commands
from edgekit.tflite import builder


def _pictures(size=320):
    """Pictures whose dominant colour is known, so the printed answers can be checked by eye."""
    rng = np.random.default_rng(7)
    noise = rng.integers(-25, 26, (size, size, 3))
    y, x = np.mgrid[0:size, 0:size]
    sky = np.stack([90 + 0 * x, 150 + 0 * x, 235 - y * 60 // size], axis=-1)
    grass = np.stack([60 + 0 * x, 170 - y * 40 // size, 50 + 0 * x], axis=-1)
    tomato = np.where(((x - size / 2) ** 2 + (y - size / 2) ** 2 < (0.42 * size) ** 2)[..., None],
                      np.array([215, 40, 30]), np.array([240, 235, 225]))
    lemon = np.stack([235 + 0 * x, 215 + 0 * x, 40 + y * 0], axis=-1)
    pictures = {"sky": sky, "grass": grass, "tomato": tomato, "lemon": lemon}
    return {name: np.clip(p + noise, 0, 255).astype(np.uint8) for name, p in pictures.items()}


def _write_picture(pixels, path):
    from PIL import Image

    from edgekit.runtime.annotate import save_image

    save_image(Image.fromarray(pixels), path)


def run_demo(out="demo-out", iterations=50):
    """Build, check, run and benchmark the demo model; returns a JSON-ready summary."""
    os.makedirs(out, exist_ok=True)
    model_path = os.path.join(out, "colours.tflite")
    builder.write_model(builder.colour_classifier(), model_path)
    labels_path = os.path.join(out, "colours_labels.txt")
    with open(labels_path + ".tmp", "w") as f:
        f.write("\n".join(builder.COLOUR_LABELS) + "\n")
    os.replace(labels_path + ".tmp", labels_path)

    image_paths = []
    for name, pixels in _pictures().items():
        path = os.path.join(out, "pictures", name + ".png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_picture(pixels, path)
        image_paths.append(path)

    prediction = check.check_file(model_path)
    summary = {"model": model_path, "check": check.summary(prediction),
               "check_table": format_prediction(prediction)}
    summary["run"] = commands.run_images(model_path, image_paths, device="auto", labels_path=labels_path,
                                         top_k=2, save_to=os.path.join(out, "annotated"))
    summary["bench"] = commands.bench_model(model_path, device="auto", iterations=iterations, warmup=5)
    return summary


def format_demo(summary):
    lines = [f"model: {summary['model']} (a real uint8 colour classifier written by edgekit)", "",
             summary["check_table"], "",
             commands.format_run(summary["run"]), "",
             commands.format_bench(summary["bench"])]
    return "\n".join(lines)
