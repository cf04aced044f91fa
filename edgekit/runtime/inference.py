"""`edgekit run` as a library function: images through one model (an ensemble file, or a model cut into
segments), with results.

Returns a `RunReport` of plain data; the CLI (`edgekit.cli.cmd_run`) parses options and turns the report
into its JSON and text, so everything here is callable from Python without the CLI.
"""

import os
import sys
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import annotate, ensemble, labels
from edgekit.runtime.interpreter import model_paths, open_model
from edgekit.runtime.pipeline import Runner
from edgekit.runtime.tasks import CLASSIFICATION, DETECTION, DEFAULT_THRESHOLD, SEGMENTATION

# Classes reported per image unless asked otherwise.
DEFAULT_TOP_K = 5

RunReport = namedtuple("RunReport", "model labels results saved")
"""What `run_images` did: model (a pipeline.ModelInfo), labels ({id: name} that name the results' class
ids), results (a pipeline.ImageResult per image, in order; pictures are let go of, so that a report over
many photos does not hold them all decoded) and saved (per image, where its annotated picture was
written, or None)."""


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
    if runner.task != CLASSIFICATION:
        return 0
    details = runner.interpreter.get_output_details()[0]
    return int(np.prod(details["shape"]))


def _save_path(save_to, image_path, count):
    if count == 1 and annotate.is_savable_image_name(save_to):
        return save_to
    os.makedirs(save_to, exist_ok=True)
    stem = os.path.splitext(os.path.basename(str(image_path)))[0]
    return os.path.join(save_to, stem + "_annotated.png")


def run_images(model, image_paths, device="auto", labels_path=None, top_k=DEFAULT_TOP_K, threshold=None,
               task=None, resize=None, threads=None, save_to=None):
    """Run every image through the model; a `RunReport`. model: a .tflite file, an ensemble file, or a model cut
    into segments (a folder of them, or a list of its segment files in order), which runs pipelined over its
    devices (`device` "usb:0,usb:1", one per segment; see `interpreter.open_segment_set`)."""
    paths = model_paths(model)
    if len(paths) == 1 and ensemble.is_ensemble_file(paths[0]):
        return _run_ensemble(paths[0], image_paths, device, labels_path, top_k, threshold, task, resize, threads,
                             save_to)
    opened = open_model(model, device=device, num_threads=threads)
    runner = Runner(opened, task=task, top_k=top_k, resize=resize)
    runner.threshold = DEFAULT_THRESHOLD[runner.task] if threshold is None else threshold
    if labels_path:
        runner.labels = _load_labels(labels_path, runner)
    results, saved = [], []
    for path, result in zip(image_paths, runner.run_images(image_paths)):
        target = None
        if save_to:
            target = _save_path(save_to, path, len(image_paths))
            annotate.save_image(annotated(result, runner.labels), target)
        results.append(result._replace(picture=None))
        saved.append(target)
    return RunReport(runner.info, runner.labels, results, saved)


def _run_ensemble(path, image_paths, device, labels_path, top_k, threshold, task, resize, threads, save_to):
    """`run_images` for an ensemble file, which is a classifier whose members keep their own preprocessing."""
    if task not in (None, CLASSIFICATION):
        raise EdgekitError(f"{path}: an ensemble is a classifier; --task {task} does not apply")
    if resize or save_to:
        raise EdgekitError(f"{path}: --resize and --save do not apply to an ensemble (each member keeps its "
                           "own preprocessing)")
    opened = ensemble.open_ensemble(path, device, threads, top_k,
                                    DEFAULT_THRESHOLD[CLASSIFICATION] if threshold is None else threshold)
    if labels_path:
        opened.labels = labels.read_label_file(labels_path)
    results = [opened.run_image(image)._replace(picture=None) for image in image_paths]
    return RunReport(opened.info, opened.labels, results, [None] * len(results))


def annotated(result, labels=None):
    """A copy of the result's picture with its findings drawn: boxes, the mask's colours, or class lines."""
    if result.task == DETECTION:
        return annotate.draw_objects(result.picture, result.objects, labels)
    if result.task == SEGMENTATION:
        return annotate.overlay_mask(result.picture, result.mask)
    return annotate.draw_classes(result.picture, result.classes, labels)
