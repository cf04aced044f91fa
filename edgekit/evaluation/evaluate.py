"""`edgekit eval` as a library function: several models, one data set, one JSON-ready document.

Which figures a model gets follows from its task and the data: accuracy when class folders match its
labels, agreement when a reference model is given, mAP for detectors, mean IoU for segmenters. Models are
evaluated one after the other, each over `workers` processes, so their latencies are comparable.
"""

import os

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.evaluation import datasets, metrics
from edgekit.evaluation.workers import ModelSpec, run_model
from edgekit.runtime import ensemble as ensemble_mod, labels as labels_mod
from edgekit.runtime.benchmark import latency_stats
from edgekit.runtime.tasks import CLASSIFICATION, DETECTION, detect_task, recorded_task
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model


def describe(path):
    """(task, embedded labels {id: name}) of a model or ensemble file, without opening an interpreter."""
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
    task = recorded_task(recorded) or detect_task(model)
    return task, dict(enumerate(recorded.get("labels") or []))


def _task_of(models, task):
    tasks = {m: describe(m) for m in models}
    found = {t for t, _ in tasks.values()}
    if task is None and len(found) > 1:
        shown = ", ".join(f"{m}: {t}" for m, (t, _) in tasks.items())
        raise EdgekitError(f"the models do different tasks ({shown}); evaluate them separately or pass --task")
    return task or found.pop(), {m: labels for m, (_, labels) in tasks.items()}


def evaluate(models, data, labels_path=None, reference=None, device="auto", workers=1, threads=None,
             task=None, resize=None, progress=None):
    """Evaluate MODELS on DATA; the document `edgekit eval --json` prints (see the module docstring)."""
    models = [os.fspath(m) for m in models]
    if not models:
        raise EdgekitError("give at least one model to evaluate")
    if workers < 1:
        raise EdgekitError("--workers must be 1 or more")
    task, embedded = _task_of(models, task)
    given = labels_mod.read_label_file(labels_path) if labels_path else None
    labels = {m: given or embedded[m] for m in models}
    spec = ModelSpec(None, device, threads, task, resize)

    def run(path):
        return run_model(spec._replace(path=path), samples, workers, progress, os.path.basename(path))

    if task == CLASSIFICATION:
        folder = datasets.image_folder(data)
        samples = folder.samples
        document = {"task": task, "data": str(data), "images": len(samples),
                    "classes": None if folder.unlabelled else len(folder.classes)}
        # Folder names matched to every model's labels before any model runs.
        matched = {m: _matched_classes(folder, labels[m], m, labels_path, bool(reference))
                   for m in models if labels[m] and not folder.unlabelled}
        reference_scores = reference_floor = None
        if reference:
            if describe(reference)[0] != CLASSIFICATION:
                raise EdgekitError(f"{reference}: the reference must be a classifier like the models")
            reference_run = run(reference)
            reference_scores = np.stack([r[0] for r in reference_run.records])
            reference_floor = reference_run.floor
            document["reference"] = _run_document(reference, reference_run)
        document["models"] = [_classification(m, run(m), folder, labels[m], matched.get(m),
                                              (reference_scores, reference_floor))
                              for m in models]
    elif task == DETECTION:
        dataset = datasets.detection_set(data)
        samples = dataset.samples
        document = {"task": task, "data": str(data), "format": dataset.format, "images": len(samples),
                    "annotations": len(dataset.annotations), "categories": len(dataset.categories)}
        document["models"] = [_detection(m, run(m), dataset, labels[m]) for m in models]
    else:
        masks = datasets.mask_set(data)
        samples = masks.samples
        document = {"task": task, "data": str(data), "images": len(samples)}
        document["models"] = [_segmentation(m, run(m), labels[m]) for m in models]
    if len(models) == 1:
        # One model: its headline figures at the top level too, as `--json` users look for them there.
        document.update({k: v for k, v in document["models"][0].items()
                         if k in ("top1", "top5", "agreement", "mean_kl", "map", "map50", "miou")})
    return document


def _run_document(path, run):
    latencies = [r[1] for r in run.records]
    return {"model": path, "device": run.device, "ran": run.ran, "workers": run.workers,
            "threads": run.threads, "seconds": round(run.seconds, 3),
            "images_per_second": round(len(run.records) / run.seconds, 2) if run.seconds > 0 else None,
            "latency": latency_stats(latencies)._asdict() if latencies else None}


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
    document = _run_document(path, run)
    scores = np.stack([r[0] for r in run.records])
    if not folder.unlabelled:
        if matched is not None:
            targets = [s.target for s in matched.samples]
            found = metrics.accuracy(scores, targets)
            name = lambda class_id: labels_mod.label_name(labels, class_id)  # noqa: E731
            document.update(
                top1=round(found.top1, 6), top5=round(found.top5, 6),
                per_class=[{"id": c.id, "label": name(c.id), "count": c.count, "top1": round(c.top1, 6)}
                           for c in found.per_class],
                worst=[{"id": c.id, "label": name(c.id), "count": c.count, "top1": round(c.top1, 6)}
                       for c in found.worst],
                confusions=[{"true": name(c.true), "predicted": name(c.predicted), "count": c.count}
                            for c in found.confusions])
        elif reference_scores is None:
            raise EdgekitError(f"{path}: no labels to match the class folders of {folder.root} against: pass "
                               "--labels FILE, or --reference MODEL to measure agreement instead")
    elif reference_scores is None:
        raise EdgekitError(f"{folder.root}: no class subfolders, so no accuracy: put the images in one folder "
                           "per class, or pass --reference MODEL to measure agreement with it")
    if reference_scores is not None:
        agreed = metrics.agreement(scores, reference_scores, run.floor, reference_floor)
        document.update(agreement=round(agreed.top1, 6), mean_kl=round(agreed.mean_kl, 6))
    return document


def _detection(path, run, dataset, labels):
    document = _run_document(path, run)
    mapping = datasets.category_map(dataset, labels)
    detections = [{"image_id": sample.target, "category_id": mapping[class_id], "bbox": box, "score": score}
                  for sample, (boxes, _) in zip(dataset.samples, run.records)
                  for class_id, score, box in boxes if class_id in mapping]
    score = metrics.coco_map(dataset.images, dataset.categories, dataset.annotations, detections)
    document.update(map=round(score.map, 6), map50=round(score.map50, 6), detections=len(detections))
    return document


def _segmentation(path, run, labels):
    document = _run_document(path, run)
    found = metrics.mean_iou([r[0][:3] for r in run.records])
    document.update(miou=round(found.miou, 6), pixel_accuracy=round(found.pixel_accuracy, 6),
                    mask_iou=round(float(np.mean([r[0][3] for r in run.records])), 6),
                    per_class=[{"id": c, "label": labels_mod.label_name(labels, c), "iou": round(v, 6)}
                               for c, v in found.per_class.items()])
    return document
