"""`edgekit run` as a library function: images through one model (or an ensemble file), with results.

The CLI (`edgekit.cli.cmd_run`) only parses options and prints; everything here is callable from Python.
"""

import os
import sys

import numpy as np

from edgekit.runtime import annotate, ensemble, labels
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner, public
from edgekit.runtime.tasks import DEFAULT_THRESHOLD


def model_document(opened, runner):
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
    if count == 1 and annotate.is_savable_image_name(save_to):
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
    return dict(model_document(opened, runner), results=results)


def _annotated(picture, runner, result):
    if runner.task == "detection":
        return annotate.draw_objects(picture, result["_found"], runner.labels)
    if runner.task == "segmentation":
        return annotate.overlay_mask(picture, result["_mask"])
    return annotate.draw_classes(picture, result["classes"])
