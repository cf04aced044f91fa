"""`edgekit eval` as a library function: several models, one data set, an `EvalReport` of plain data.

Which figures a model gets follows from its task and the data: accuracy when class folders match its
labels, agreement when a reference model is given, mAP for detectors, mean IoU for segmenters. Models are
evaluated one after the other, each over `workers` processes, so their latencies are comparable. The CLI
(`edgekit.cli.cmd_eval`) turns the report into its table, its JSON and, through `plot.py`, its chart.
"""

import os
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.evaluation import datasets, metrics
from edgekit.evaluation.workers import ModelSpec, run_model
from edgekit.runtime import ensemble as ensemble_mod, labels as labels_mod
from edgekit.runtime.benchmark import latency_stats
from edgekit.runtime.interpreter import model_paths, names_segments, set_name
from edgekit.runtime.segmented import SEGMENT_FILE, find_segments
from edgekit.runtime.tasks import CLASSIFICATION, DETECTION, detect_task, recorded_task
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

EvalReport = namedtuple("EvalReport", "task data images models classes format annotations categories reference",
                        defaults=(None,) * 5)
"""What `evaluate` found: the task, the data as given (a str), how many images it holds, and a `ModelScores`
per model in the order given. Classification: how many class folders (None when the images are not in
class folders) and the reference model's run (a `ModelScores` without figures; None without --reference).
Detection: the data set's format ("coco", "yolo", "voc") and how many annotations and categories it has.
The fields a task does not have are None."""

ModelScores = namedtuple("ModelScores", "model device ran workers threads seconds images_per_second latency "
                                        "top1 top5 per_class worst confusions agreement mean_kl "
                                        "map map50 detections miou pixel_accuracy mask_iou",
                         defaults=(None,) * 13)
"""One model's run and figures. The run: the file evaluated, where it ran (the device, and the model file or
files that ran), worker processes and interpreter threads per worker, wall-clock seconds with start-up (to
the millisecond), images per second (to two places; None when no time passed) and the invoke
`LatencyStats`. The figures, fractions to six places, None where the task or the data gives none:
top1, top5, per_class and worst (`ClassScore`) and confusions (`LabelConfusion`) for a classifier scored
against class folders; agreement and mean_kl (nats) with a reference model; map (COCO's mAP@[.5:.95]),
map50 and detections (how many) for a detector; miou, pixel_accuracy, mask_iou and per_class (`ClassIoU`)
for a segmenter."""

ClassScore = namedtuple("ClassScore", "id label count top1")
"""A class's top-1 accuracy over its `count` images."""

LabelConfusion = namedtuple("LabelConfusion", "true predicted count")
"""How many images of the class labelled `true` the model took for `predicted` (both label names)."""

ClassIoU = namedtuple("ClassIoU", "id label iou")
"""A segmentation class's IoU, from pixels summed over the whole data set."""


def _fraction(value):
    """A figure in [0, 1] (or a divergence) as eval reports it: to six places."""
    return round(value, 6)


def model_groups(models):
    """`models` as evaluate takes them, each model once: a path (a .tflite or ensemble file, or a folder of
    segments) as a str, a model cut into segments as a tuple of its segment files. Consecutive files named as
    segments of one model (`..._segment_K_of_N[_edgetpu].tflite` in one folder, the same stem and N) form one
    model; a list or tuple in `models` is one model as given."""
    groups = []
    for model in models:
        if isinstance(model, (list, tuple)):
            groups.append(tuple(os.fspath(p) for p in model))
            continue
        model = os.fspath(model)
        before = (groups[-1] if isinstance(groups[-1], tuple) else (groups[-1],)) if groups else ()
        key = _segment_key(model)
        if key is not None and before and key == _segment_key(before[-1]):
            groups[-1] = before + (model,)
        else:
            # A segment file on its own stays a set of one, which find_segments refuses naming what is missing.
            groups.append((model,) if key is not None else model)
    return groups


def _segment_key(path):
    """(folder, stem, count, compiled) of a file named as a segment, else None."""
    if not isinstance(path, str):
        return None
    match = SEGMENT_FILE.match(os.path.basename(path))
    if match is None:
        return None
    return os.path.dirname(path), match["stem"], match["count"], bool(match["edgetpu"])


def model_name(model):
    """How a model of `model_groups` is named in the report: its path, or its segment files joined by ", "."""
    return model if isinstance(model, str) else set_name(model)


def describe(path):
    """(task, embedded labels {id: name}) of a model or ensemble file, or of a model cut into segments (a folder,
    or a tuple of its files: every segment carries the whole model's metadata, and the last one's outputs are the
    model's), without opening an interpreter."""
    if names_segments(path):
        return describe(find_segments(model_paths(path))[-1])
    path = os.fspath(path)
    if ensemble_mod.is_ensemble_file(path):
        spec = ensemble_mod.read_ensemble(path)
        if spec.labels:
            return CLASSIFICATION, labels_mod.read_label_file(spec.labels)
        first = spec.members[0]
        return CLASSIFICATION, describe(first.path if os.path.isfile(first.path) else first.cpu_path)[1]
    if not os.path.isfile(path):
        raise EdgekitError(f"{path}: no such model file")
    if not path.lower().endswith(".tflite"):
        raise EdgekitError(f"{path}: edgekit eval takes .tflite models and ensemble .json files")
    model = read_model(path)
    recorded = read_edgekit_metadata(model)
    task = recorded_task(recorded, path) or detect_task(model)
    return task, dict(enumerate(recorded.get("labels") or []))


def _task_of(models, task):
    tasks = {m: describe(m) for m in models}
    found = {t for t, _ in tasks.values()}
    if task is None and len(found) > 1:
        shown = ", ".join(f"{model_name(m)}: {t}" for m, (t, _) in tasks.items())
        raise EdgekitError(f"the models do different tasks ({shown}); evaluate them separately or pass --task")
    return task or found.pop(), {m: labels for m, (_, labels) in tasks.items()}


def evaluate(models, data, labels_path=None, reference=None, device="auto", workers=1, threads=None,
             task=None, resize=None, progress=None):
    """Evaluate MODELS on DATA: an `EvalReport` (see the module docstring). A model may be cut into segments (its
    folder, its segment files one after the other, or a tuple of them: `model_groups`); its segments then run
    pipelined over its devices (`device` "usb:0,usb:1", one per segment)."""
    models = model_groups(models)
    if reference is not None:
        reference = model_groups([reference] if isinstance(reference, (str, os.PathLike)) else [reference])[0]
    if not models:
        raise EdgekitError("give at least one model to evaluate")
    if workers < 1:
        raise EdgekitError("--workers must be 1 or more")
    task, embedded = _task_of(models, task)
    given = labels_mod.read_label_file(labels_path) if labels_path else None
    labels = {m: given or embedded[m] for m in models}
    spec = ModelSpec(None, device, threads, task, resize)

    def run(path):
        return run_model(spec._replace(path=path), samples, workers, progress, os.path.basename(model_name(path)))

    if task == CLASSIFICATION:
        folder = datasets.image_folder(data)
        samples = folder.samples
        # Folder names matched to every model's labels before any model runs.
        matched = {m: _matched_classes(folder, labels[m], m, labels_path, bool(reference))
                   for m in models if labels[m] and not folder.unlabelled}
        reference_found = reference_scores = reference_floor = None
        if reference:
            if describe(reference)[0] != CLASSIFICATION:
                raise EdgekitError(f"{model_name(reference)}: the reference must be a classifier like the models")
            reference_run = run(reference)
            reference_found = _run_scores(reference, reference_run)
            reference_scores = np.stack([r[0] for r in reference_run.records])
            reference_floor = reference_run.floor
        scored = [_classification(m, run(m), folder, labels[m], matched.get(m), (reference_scores, reference_floor))
                  for m in models]
        return EvalReport(task, str(data), len(samples), scored,
                          classes=None if folder.unlabelled else len(folder.classes), reference=reference_found)
    if task == DETECTION:
        dataset = datasets.detection_set(data)
        samples = dataset.samples
        scored = [_detection(m, run(m), dataset, labels[m]) for m in models]
        return EvalReport(task, str(data), len(samples), scored, format=dataset.format,
                          annotations=len(dataset.annotations), categories=len(dataset.categories))
    samples = datasets.mask_set(data).samples
    return EvalReport(task, str(data), len(samples), [_segmentation(m, run(m), labels[m]) for m in models])


def _run_scores(path, run):
    """A `ModelScores` of the run alone: no figures yet."""
    latencies = [r[1] for r in run.records]
    return ModelScores(model_name(path), run.device, run.ran, run.workers, run.threads, round(run.seconds, 3),
                       round(len(run.records) / run.seconds, 2) if run.seconds > 0 else None,
                       latency_stats(latencies) if latencies else None)


def _matched_classes(folder, labels, path, labels_path, with_reference):
    try:
        return datasets.match_classes(folder, labels, labels_path or f"the labels of {path}")
    except EdgekitError as error:
        if not with_reference:
            raise
        # Subfolders that are not classes (dates, cameras) are a common layout for agreement runs.
        raise EdgekitError(f"{error}; to measure only agreement with --reference, put the images "
                           f"directly in {folder.root} (no subfolders)") from None


def _classification(path, run, folder, labels, matched, reference):
    """`matched`: the folder with class ids for targets (None without labels or class folders)."""
    reference_scores, reference_floor = reference
    found = _run_scores(path, run)
    scores = np.stack([r[0] for r in run.records])
    if not folder.unlabelled:
        if matched is not None:
            found = found._replace(**_accuracy(scores, [s.target for s in matched.samples], labels))
        elif reference_scores is None:
            raise EdgekitError(f"{path}: no labels to match the class folders of {folder.root} against: pass "
                               "--labels FILE, or --reference MODEL to measure agreement instead")
    elif reference_scores is None:
        raise EdgekitError(f"{folder.root}: no class subfolders, so no accuracy: put the images in one folder "
                           "per class, or pass --reference MODEL to measure agreement with it")
    if reference_scores is not None:
        agreed = metrics.agreement(scores, reference_scores, run.floor, reference_floor)
        found = found._replace(agreement=_fraction(agreed.top1), mean_kl=_fraction(agreed.mean_kl))
    return found


def _accuracy(scores, targets, labels):
    """The accuracy fields of `ModelScores` (for `_replace`), the classes named by `labels`."""
    found = metrics.accuracy(scores, targets)

    def name(class_id):
        return labels_mod.label_name(labels, class_id)

    def class_score(accuracy):
        return ClassScore(accuracy.id, name(accuracy.id), accuracy.count, _fraction(accuracy.top1))

    return {"top1": _fraction(found.top1), "top5": _fraction(found.top5),
            "per_class": [class_score(c) for c in found.per_class], "worst": [class_score(c) for c in found.worst],
            "confusions": [LabelConfusion(name(c.true), name(c.predicted), c.count) for c in found.confusions]}


def _detection(path, run, dataset, labels):
    mapping = datasets.category_map(dataset, labels)
    detections = [{"image_id": sample.target, "category_id": mapping[class_id], "bbox": box, "score": score}
                  for sample, (boxes, _) in zip(dataset.samples, run.records)
                  for class_id, score, box in boxes if class_id in mapping]
    score = metrics.coco_map(dataset.images, dataset.categories, dataset.annotations, detections)
    return _run_scores(path, run)._replace(map=_fraction(score.map), map50=_fraction(score.map50),
                                           detections=len(detections))


def _segmentation(path, run, labels):
    found = metrics.mean_iou([r[0][:3] for r in run.records])
    return _run_scores(path, run)._replace(
        miou=_fraction(found.miou), pixel_accuracy=_fraction(found.pixel_accuracy),
        mask_iou=_fraction(float(np.mean([r[0][3] for r in run.records]))),
        per_class=[ClassIoU(c, labels_mod.label_name(labels, c), _fraction(v)) for c, v in found.per_class.items()])
