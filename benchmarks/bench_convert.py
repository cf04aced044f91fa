"""`edgekit convert` on EfficientNet-Lite0 (ImageNet weights): speed against the bare TFLite converter, peak
memory, and the fidelity of each calibration method.

Speed: 300 calibration images (seeded crops of real photos), minmax, against TFLiteConverter.from_saved_model
with the same SavedModel and the same pixels (target <= 1.2x); percentile / MSE / KL against minmax (<= 2x).
Each variant runs in its own process so peak memory (ru_maxrss) is its own; TensorFlow's import is not timed.

Fidelity: >= 500 seeded crops and flips of real photos (the Coral test photos under EDGEKIT_TESTDATA,
scikit-image's and scikit-learn's), none of them calibration crops; top-1 agreement of the int8 model with the
float Keras model and the mean KL divergence of their output distributions, per method. Also the ceilings no
calibration can pass while the head stays 8-bit on the Edge TPU: the float model's own logits put through the
int8 model's logit quantization (its 8-bit grid) and through the uint8 softmax output (steps of 1/256).

    .venv/bin/python benchmarks/bench_convert.py [--samples 300] [--eval 500] [--skip-speed] [--skip-fidelity]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from shared_testdata import CORAL, ROOT

from edgekit.calibration.ranges import METHODS

HERE = Path(__file__).resolve().parent
MODEL = "efficientnet-lite0"
SIZE = 224
# Float top-1 minus top-2 probability above which an input counts as one the float model decides clearly.
CLEAR_MARGIN = 0.02


def photos():
    """Real photos as RGB uint8 arrays: the shared test photos, scikit-image's and scikit-learn's."""
    from PIL import Image

    found = []
    for name in ("cat.bmp", "parrot.jpg", "grace_hopper.bmp"):
        if (CORAL / name).exists():
            found.append(np.asarray(Image.open(CORAL / name).convert("RGB")))
    from skimage import data

    for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "cat", "coins", "camera"):
        try:
            image = getattr(data, name)()
        except Exception:          # a data file scikit-image would have to download
            continue
        found.append(image if image.ndim == 3 else np.stack([image] * 3, -1))
    try:
        from sklearn.datasets import load_sample_images

        found += list(load_sample_images().images)
    except ImportError:
        pass
    return [p[..., :3] for p in found]


def crops(pictures, count, seed):
    """Seeded random square crops (30-100% of the short side), half of them mirrored, resized to SIZE with
    the runtime's tflite-bilinear (what `edgekit run` does for classifiers)."""
    from PIL import Image

    from edgekit.runtime import images

    rng = np.random.default_rng(seed)
    out = np.empty((count, SIZE, SIZE, 3), np.uint8)
    for k in range(count):
        picture = pictures[rng.integers(len(pictures))]
        h, w = picture.shape[:2]
        side = int(min(h, w) * rng.uniform(0.3, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = picture[y:y + side, x:x + side]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        out[k] = np.asarray(images.resize(Image.fromarray(np.ascontiguousarray(patch)), (SIZE, SIZE),
                                          "tflite-bilinear"))
    return out


def build_model():
    """The zoo's EfficientNet-Lite0 with its ImageNet weights (a model that takes raw pixels)."""
    from edgekit import models

    return models.create(MODEL, weights="imagenet")


def model_input(pixels, model):
    """What the Keras model takes: the zoo's models normalise raw pixels themselves (edgekit_raw_pixels)."""
    assert getattr(model, "edgekit_raw_pixels", False), "a zoo model takes raw pixels"
    return np.asarray(pixels, np.float32)


def peak_mib():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- workers: each runs in its own process and prints one JSON line ------------------------------------

def worker_bare(folder, pixels_path):
    import tensorflow as tf

    from edgekit.converters import keras_export

    model = build_model()
    pixels = np.load(pixels_path)
    # Timed from the Keras model, like edgekit's: both export the same fixed-batch SavedModel first.
    start = time.perf_counter()
    saved = keras_export.export_fixed_batch(model, os.path.join(folder, "bare_sm"), (SIZE, SIZE, 3))
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([model_input(p[None], model)] for p in pixels)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    converter.convert()
    return {"seconds": time.perf_counter() - start, "peak_mib": peak_mib()}


def worker_edgekit(folder, calib, methods, cache_dir):
    from edgekit.calibration.cache import CalibrationCache
    from edgekit.converters import api
    from edgekit.converters.options import DEFAULT_METHOD

    model = build_model()
    # One cache for every method: the first conversion calibrates and histograms, the others reuse both.
    cache = CalibrationCache(cache_dir)
    timings = {}
    for method in methods:
        start = time.perf_counter()
        # "default": what `edgekit convert` does with no options (mse + bias correction), report included.
        settings = dict(method=DEFAULT_METHOD, report=True) if method == "default" else \
            dict(method=method, report=False, bias_correction=False)
        result = api.convert(model, calib, os.path.join(folder, f"out_{method}"), name=f"lite0_{method}",
                             compile=False, cache=cache, num_samples=300, **settings)
        timings[method] = {"seconds": time.perf_counter() - start, "phases": result.timings}
    return {"runs": timings, "peak_mib": peak_mib()}


def float_logits(model, pixels):
    """The float model's logits (the zoo's Dense "predictions", before its softmax)."""
    import keras

    head = keras.Model(model.inputs, model.get_layer("predictions").output)
    return np.concatenate([np.asarray(head.predict(model_input(pixels[s:s + 50], model), verbose=0, batch_size=50))
                           for s in range(0, len(pixels), 50)]).astype(np.float64)


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def head_ceilings(logits, int8_model_path):
    """Top-1 agreement with float that a perfect network upstream of the head would still lose: the float
    logits rounded to the int8 model's logit grid (scale and zero point of the SOFTMAX input), then the
    softmax rounded to the uint8 output's 1/256 steps; argmax picks the lowest index on a tie, as np.argmax."""
    from edgekit.converters.conversion_report import logits_tensor
    from edgekit.tflite.model import read_model

    scale, zero_point = logits_tensor(read_model(int8_model_path).main).quantization.per_tensor
    top = logits.argmax(axis=1)
    on_grid = scale * (np.clip(np.round(logits / scale + zero_point), -128, 127) - zero_point)
    return {"logit_scale": round(float(scale), 5),
            "logit_range": [round(float(scale * (-128 - zero_point)), 3), round(float(scale * (127 - zero_point)), 3)],
            "float_logits_on_int8_grid": float((on_grid.argmax(axis=1) == top).mean()),
            "float_logits_on_int8_grid_then_uint8_softmax":
                float((np.round(softmax(on_grid) * 256).argmax(axis=1) == top).mean()),
            "float_softmax_on_uint8_grid": float((np.round(softmax(logits) * 256).argmax(axis=1) == top).mean())}


def worker_fidelity(folder, calib, eval_path):
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.calibration.cache import CalibrationCache
    from edgekit.converters import api
    from edgekit.evaluation import metrics
    from edgekit.runtime.adapters.common import dequantize

    model = build_model()
    cache = CalibrationCache(os.path.join(folder, "cache"))
    evaluation = np.load(eval_path)
    floats = []
    for start in range(0, len(evaluation), 50):
        batch = model_input(evaluation[start:start + 50], model)
        floats.append(np.asarray(model.predict(batch, verbose=0, batch_size=50)))
    reference = np.concatenate(floats)
    logits = float_logits(model, evaluation)
    table = {}
    for variant in METHODS + tuple(f"{m}+bias_correction" for m in METHODS[:3]):
        method, corrected = variant.split("+")[0], variant.endswith("+bias_correction")
        start = time.perf_counter()
        result = api.convert(model, calib, os.path.join(folder, f"fid_{variant}"), name=f"lite0_{method}",
                             method=method, report=False, compile=False, cache=cache, bias_correction=corrected,
                             bias_samples=32)
        seconds = time.perf_counter() - start
        interpreter = Interpreter(model_path=result.int8_path, num_threads=os.cpu_count())
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        scale, zero_point = out["quantization"]
        agree, confident, confident_agree = 0, 0, 0
        ties, clear, clear_agree, outputs = 0, 0, 0, []
        for k, pixels in enumerate(evaluation):
            interpreter.set_tensor(inp["index"], pixels[None])
            interpreter.invoke()
            q = dequantize(interpreter.get_tensor(out["index"])[0], scale, zero_point, np.float64)
            p = reference[k].astype(np.float64)
            same = int(np.argmax(q) == np.argmax(p))
            agree += same
            if p.max() >= 0.5:
                confident, confident_agree = confident + 1, confident_agree + same
            # Where the disagreements come from: an int8 softmax output has steps of 1/256, so two classes
            # can tie exactly (argmax then picks by index); and inputs the float model itself barely decides.
            top_q, top_p = np.sort(q)[-2:], np.sort(p)[-2:]
            ties += int(top_q[1] == top_q[0] and not same)
            if top_p[1] - top_p[0] >= CLEAR_MARGIN:
                clear, clear_agree = clear + 1, clear_agree + same
            outputs.append(q)
        table[variant] = {"seconds": round(seconds, 1), "top1_agreement": round(agree / len(evaluation), 4),
                         # KL as `edgekit eval` computes it: an int8 output's zeros stand for at most half a step.
                         "mean_kl": round(metrics.agreement(np.array(outputs), reference, scale / 2).mean_kl, 5),
                         "top1_agreement_float_p_ge_0.5": round(confident_agree / max(confident, 1), 4),
                         "inputs_float_p_ge_0.5": confident,
                         "disagreements_that_are_int8_ties": ties,
                         f"top1_agreement_float_margin_ge_{CLEAR_MARGIN}": round(clear_agree / max(clear, 1), 4),
                         f"inputs_float_margin_ge_{CLEAR_MARGIN}": clear,
                         "ceilings_of_an_8bit_head": head_ceilings(logits, result.int8_path)}
    return {"fidelity": table, "inputs": int(len(evaluation)), "peak_mib": peak_mib()}


def run_worker(*args):
    done = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": f"worker {args[0]} failed (exit {done.returncode})", "stdout": done.stdout[-2000:]}
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--eval", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-fidelity", action="store_true")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, *rest = args.worker
        handler = {"bare": worker_bare, "edgekit": worker_edgekit, "fidelity": worker_fidelity}[name]
        if name == "edgekit":
            rest = [rest[0], rest[1], rest[2].split(","), rest[3]]
        print(json.dumps(handler(*rest)))
        return 0

    from PIL import Image

    pictures = photos()
    report = {"model": f"{MODEL} (ImageNet weights, edgekit.models)", "photos": len(pictures),
              "calibration_images": args.samples,
              "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder:
        calib = os.path.join(folder, "calib")
        os.makedirs(calib)
        calibration = crops(pictures, args.samples, seed=args.seed)
        for k, p in enumerate(calibration):
            Image.fromarray(p).save(os.path.join(calib, f"{k:04d}.png"))
        pixels_path = os.path.join(folder, "calib.npy")
        np.save(pixels_path, calibration)
        if not args.skip_speed:
            bare = run_worker("bare", folder, pixels_path)
            ours = run_worker("edgekit", folder, calib, ",".join(METHODS), os.path.join(folder, "speed_cache"))
            default = run_worker("edgekit", folder, calib, "default", os.path.join(folder, "default_cache"))
            report["bare_converter"] = bare
            report["edgekit"] = ours
            report["edgekit_default_options"] = default
            if "runs" in ours and "seconds" in bare:
                minmax = ours["runs"]["minmax"]["seconds"]
                report["ratios"] = {"minmax_vs_bare": round(minmax / bare["seconds"], 3),
                                    "default_vs_bare": round(default["runs"]["default"]["seconds"] / bare["seconds"], 3)
                                    if "runs" in default else None,
                                    **{f"{m}_vs_minmax": round(ours["runs"][m]["seconds"] / minmax, 3)
                                       for m in METHODS[1:]}}
                report["targets"] = {"minmax <= 1.2x bare": report["ratios"]["minmax_vs_bare"] <= 1.2,
                                     "others <= 2x minmax": all(report["ratios"][f"{m}_vs_minmax"] <= 2.0
                                                                for m in METHODS[1:])}
        if not args.skip_fidelity:
            eval_path = os.path.join(folder, "eval.npy")
            np.save(eval_path, crops(pictures, args.eval, seed=args.seed + 1000))
            report["fidelity"] = run_worker("fidelity", folder, calib, eval_path)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
