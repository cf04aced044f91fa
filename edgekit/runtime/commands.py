"""What `edgekit run`, `bench` and `doctor` do, as library functions returning JSON-ready documents.

The click layer in cli.py only parses options and prints; everything here is callable from Python.
"""

import os
import platform
import sys
import tempfile
import time

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import annotate, edgetpu, ensemble, images, labels
from edgekit.runtime.backends import select_backend
from edgekit.runtime.interpreter import invoke, open_model
from edgekit.runtime.pipeline import Runner, public

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Classification lists only classes with some score (a quantized softmax rounds most to exactly 0);
# detection follows pycoral's examples.
DEFAULT_THRESHOLD = {"classification": 1e-9, "detection": 0.4, "segmentation": 0.0}


def _model_document(opened, runner):
    return {"model": str(opened.requested_path), "ran": str(opened.path), "device": opened.device,
            "backend": f"{opened.backend.name} {opened.backend.version}", "task": runner.task}


def _load_labels(path, runner):
    if not path:
        return {}
    found = labels.read_label_file(path)
    classes = runner_class_count(runner)
    message = labels.missing_labels_message(found, classes, path) if classes else None
    if message:
        print(f"edgekit: warning: {message}", file=sys.stderr)
    return found


def runner_class_count(runner):
    """How many classes the classifier scores (0 when the task has no fixed count)."""
    if runner.task != "classification":
        return 0
    details = runner.interpreter.get_output_details()[0]
    return int(np.prod(details["shape"]))


def _save_path(save_to, image_path, count):
    if count == 1 and save_to.lower().endswith(IMAGE_SUFFIXES):
        return save_to
    os.makedirs(save_to, exist_ok=True)
    stem = os.path.splitext(os.path.basename(str(image_path)))[0]
    return os.path.join(save_to, stem + "_annotated.png")


def run_images(model, image_paths, device="auto", labels_path=None, top_k=5, threshold=None, task=None,
               resize=None, threads=None, save_to=None):
    """Run every image through the model; the document `edgekit run --json` prints."""
    if ensemble.is_ensemble_file(model):
        return ensemble.run_images(model, image_paths, device, labels_path, top_k, threshold, task, resize,
                                   threads, save_to)
    opened = open_model(model, device=device, num_threads=threads)
    runner = Runner(opened, task=task, top_k=top_k, resize=resize)
    runner.threshold = DEFAULT_THRESHOLD[runner.task] if threshold is None else threshold
    if labels_path:
        runner.labels = _load_labels(labels_path, runner)
    results = []
    for path, result in zip(image_paths, runner.run_images(image_paths)):
        if save_to:
            target = _save_path(save_to, path, len(image_paths))
            annotate.save_image(_annotated(result["_image"], runner, result), target)
            result["saved"] = target
        results.append(public(result))
    return dict(_model_document(opened, runner), results=results)


def _annotated(picture, runner, result):
    if runner.task == "detection":
        return annotate.draw_objects(picture, result["_found"], runner.labels)
    if runner.task == "segmentation":
        return annotate.overlay_mask(picture, result["_mask"])
    return annotate.draw_classes(picture, result["classes"])


def format_run(document):
    lines = [f"{document['model']} on {document['device']} ({document['backend']}, {document['task']})"]
    for result in document["results"]:
        lines.append(f"{result['image']}: invoke {result['latency_ms']:.1f} ms")
        for c in result.get("classes", []):
            lines.append(f"  {c['id']:>5}  {c['label']:<30} {c['score']:.4f}")
        for o in result.get("objects", []):
            box = ", ".join(f"{v:.0f}" for v in o["bbox"])
            lines.append(f"  {o['id']:>5}  {o['label']:<20} {o['score']:.4f}  [{box}]")
        if "mask" in result:
            parts = [f"{c['label']} {100 * c['fraction']:.1f}%" for c in result["mask"]["classes"][:6]]
            lines.append("  mask " + "x".join(map(str, result["mask"]["shape"])) + ": " + ", ".join(parts))
        if "saved" in result:
            lines.append(f"  saved {result['saved']}")
    if not document["results"]:
        lines.append("no images")
    return "\n".join(lines)


def latency_stats(samples_ms):
    values = np.asarray(samples_ms, dtype=np.float64)
    mean = float(values.mean())
    return {"n": int(values.size), "min_ms": round(float(values.min()), 3),
            **{f"p{q}_ms": round(float(np.percentile(values, q)), 3) for q in (50, 90, 99)},
            "max_ms": round(float(values.max()), 3), "mean_ms": round(mean, 3),
            "fps": round(1000.0 / mean, 2) if mean > 0 else None}


def _write_bench_picture(folder):
    """A generated 640x480 JPEG, so the pipeline timing includes a real decode like a camera frame's."""
    from PIL import Image

    width, height = 640, 480
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (height, 1)), np.tile(ramp[::-1], (height, 1)),
                       np.full((height, width), 128.0)], axis=-1).astype(np.uint8)
    path = os.path.join(folder, "bench.jpg")
    Image.fromarray(pixels).save(path, quality=90)
    return path


def check_bench_counts(iterations, warmup):
    if iterations < 1 or warmup < 0:
        raise EdgekitError("bench needs -n of at least 1 and --warmup of 0 or more")


def time_bench(predictor, invoke_all, iterations, warmup, image=None):
    """The timed half of `edgekit bench` for anything with `mode` and `run_loaded(image)` (a Runner, an
    ensemble): the whole pipeline on one picture, then `invoke_all()` alone. Returns the document's
    warmup / image / invoke / pipeline entries."""
    invoke_ms, pipeline_ms = [], []
    with tempfile.TemporaryDirectory() as folder:
        picture = image or _write_bench_picture(folder)
        for i in range(warmup + iterations):
            start = time.perf_counter()
            predictor.run_loaded(images.load_image(picture, predictor.mode))
            elapsed = (time.perf_counter() - start) * 1000.0
            if i >= warmup:
                pipeline_ms.append(elapsed)
    for i in range(warmup + iterations):
        start = time.perf_counter()
        invoke_all()
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= warmup:
            invoke_ms.append(elapsed)
    return {"warmup": warmup, "image": str(image) if image else "generated 640x480 JPEG",
            "invoke": latency_stats(invoke_ms), "pipeline": latency_stats(pipeline_ms)}


def bench_model(model, device="auto", iterations=100, warmup=10, threads=None, image=None):
    if ensemble.is_ensemble_file(model):
        return ensemble.bench_model(model, device, iterations, warmup, threads, image)
    check_bench_counts(iterations, warmup)
    opened = open_model(model, device=device, num_threads=threads)
    runner = Runner(opened)
    return dict(_model_document(opened, runner), threads=threads or os.cpu_count(),
                **time_bench(runner, lambda: invoke(opened), iterations, warmup, image))


def format_bench(document):
    lines = [f"{document['model']} on {document['device']} ({document['backend']}, "
             f"{document['threads']} threads, {document['invoke']['n']} runs after {document['warmup']} warm-up)",
             f"{'':<10}{'min':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'fps':>9}"]
    for name in ("invoke", "pipeline"):
        s = document[name]
        lines.append(f"{name:<10}" + "".join(f"{s[k]:>9.2f}" for k in ("min_ms", "p50_ms", "p90_ms", "p99_ms",
                                                                       "max_ms")) + f"{s['fps']:>9.1f}")
    lines.append("(milliseconds; pipeline = decode + preprocess + invoke + postprocess)")
    return "\n".join(lines)


def doctor():
    """Facts about this machine's runtime, and the next step for whichever part is missing."""
    try:
        backend = select_backend()
        backend_text = f"{backend.name} {backend.version}"
    except EdgekitError as e:
        backend, backend_text = None, f"none ({e})"
    library = edgetpu.delegate_library()
    has_library = edgetpu.library_available()
    version, version_text = edgetpu.runtime_version()
    devices = edgetpu.list_edge_tpus()
    hardware = edgetpu.visible_hardware()
    next_steps = []
    if backend is None:
        next_steps.append("pip install ai-edge-litert")
    if not has_library:
        next_steps.append(f"install the Edge TPU runtime ({library}): sudo apt-get install libedgetpu1-std "
                          "(see 'Edge TPU setup' in the README); until then models run on the CPU")
    elif not devices:
        next_steps.append("no Edge TPU visible: plug in the USB Accelerator or install the PCIe driver "
                          "(gasket-dkms), and check the udev rules")
    if not next_steps:
        next_steps.append("ready: edgekit run MODEL_edgetpu.tflite IMAGE --device edgetpu")
    return {"python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}",
            "backend": backend_text, "tensorflow_loaded": "tensorflow" in sys.modules,
            "libedgetpu": {"library": library, "found": has_library, "runtime_version": version,
                           "version_string": version_text},
            "edge_tpus": [d._asdict() for d in devices],
            "hardware_seen": [d._asdict() for d in hardware],
            "next": next_steps}


def format_doctor(document):
    lib = document["libedgetpu"]
    lines = [f"python       {document['python']} ({document['platform']})",
             f"backend      {document['backend']}",
             f"libedgetpu   {lib['library']}: " + ("found" if lib["found"] else "not found") +
             (f", runtime version {lib['runtime_version']}" if lib["runtime_version"] else ""),
             "edge tpus    " + (", ".join(f"{d['type']} {d['path']}" for d in document["edge_tpus"]) or "none"),
             "hardware     " + (", ".join(f"{d['type']} {d['path']}" for d in document["hardware_seen"])
                                or "none on USB or PCIe")]
    lines += [f"next         {step}" for step in document["next"]]
    return "\n".join(lines)

