"""`edgekit.train`: teach a zoo classifier or detector your own classes, from your pictures to an Edge TPU model.

    from edgekit import train
    result = train.image_classifier("pictures/", model="efficientnet-lite0")
    print(result.scores["test"].accuracy)
    result.export("out/")            # <name>.keras, labels.txt, <name>_int8.tflite, train_report.html

    detector = train.object_detector("boxes/", model="efficientdet-lite0")   # COCO, VOC, YOLO or Model Maker CSV
    detector.export("out/")          # the same files; mAP of the float and int8 models in the report

TFLite Model Maker's calls map onto these: `DataLoader.from_folder(path)` is the `data` argument (a folder
with a sub-folder per class, or a CSV of path,label[,split]); `image_classifier.create(train_data,
model_spec=..., epochs=..., train_whole_model=...)` is `image_classifier(data, model=..., epochs=...,
fine_tune=...)`; `model.evaluate(test_data)` is `result.evaluate(data)`; `model.export(export_dir)` is
`result.export(out_dir)`, which also writes the int8 model and compiles it when the compiler is installed.
Model Maker's `object_detector.DataLoader.from_pascal_voc(images, annotations, label_map)` / `from_csv(file)`
is the `data` argument (with `classes=` for the label map) and `object_detector.create(train_data,
model_spec=..., epochs=..., batch_size=..., train_whole_model=...)` is `object_detector(data, model=...,
epochs=..., batch_size=..., freeze_backbone=not train_whole_model)`.

This module imports no TensorFlow until a function runs, like `edgekit.convert`.
"""

import os

from edgekit.errors import EdgekitError
from edgekit.training.labelled_data import TEST_SPLIT, VAL_SPLIT

__all__ = ["image_classifier", "object_detector", "train_to_folder", "DEFAULT_MODEL", "DEFAULT_DETECTOR"]

DEFAULT_MODEL = "efficientnet-lite0"
DEFAULT_DETECTOR = "efficientdet-lite0"
_DEFAULT = object()


def image_classifier(data, model=DEFAULT_MODEL, weights=_DEFAULT, *, epochs=None, batch_size=None,
                     learning_rate=None, fine_tune=False, val=None, val_split=VAL_SPLIT, test=None,
                     test_split=TEST_SPLIT, augment=None, seed=0, input_size=None, checkpoint_dir=None,
                     resume=False, devices=None, log=None):
    """Train `model` (an EfficientNet-Lite of the zoo) on `data` and return a `TrainedClassifier`.

    weights: "imagenet" (the default where the zoo has them), None (random initialisation), or the path of
    your own `.keras` classifier to start from (its head is replaced). fine_tune: train the whole network after
    the head (default: the head only, on a frozen backbone). val / test: data of their own, else `val_split` /
    `test_split` of `data` (0 for none). augment: random resized crop and flip (default: on for fine-tuning).
    input_size: pixels (int or (height, width)) instead of the model's own. checkpoint_dir: where a checkpoint is
    kept after every epoch; resume=True continues from it. devices: TensorFlow device names to train on (default:
    every GPU, else the CPU). log: a callable taking one line of progress per epoch.
    """
    import time

    from edgekit.training import labelled_data, recipe as recipes

    begun = time.perf_counter()
    weights, input_size = _common_options(model, weights, input_size, resume, checkpoint_dir, "classification")
    # The pictures are read and checked before TensorFlow loads: a bad dataset fails in a moment.
    splits = labelled_data.make_splits(data, val=val, val_split=val_split, test=test, test_split=test_split,
                                       seed=seed)
    scanned = time.perf_counter() - begun
    from edgekit.training import image_classifier as trainer
    from edgekit.training.trained_classifier import TrainedClassifier

    head = recipes.recipe_for(False, *((None,) * 4 if fine_tune else (epochs, batch_size, learning_rate, augment)))
    if fine_tune and batch_size is not None:
        head = head._replace(batch_size=batch_size)
    fine = recipes.recipe_for(True, epochs, batch_size, learning_rate, augment) if fine_tune else None
    settings = trainer.Settings(model=os.fspath(model), weights=weights, input_size=input_size, fine_tune=fine_tune,
                                head=dict(head._asdict()), fine=dict(fine._asdict()) if fine else None, seed=seed)
    if weights is None:
        _say(log, f"{model}: no pretrained weights, so training starts from random weights; expect to need many "
                  "more pictures and epochs (use efficientnet-lite0..2 for ImageNet weights)")
    from edgekit.training import resume as checkpoints_module

    checkpoints = checkpoints_module.CheckpointFolder(checkpoint_dir) if checkpoint_dir else None
    trained = _interruptible(checkpoints, lambda: trainer.train_run(splits, settings, head, fine, checkpoints,
                                                                     resume, devices, log))
    recipe_document = recipe_summary(head, fine, trained, splits, seed)
    return TrainedClassifier(trained, data_summary(splits, data), recipe_document, {"scan": round(scanned, 3)})


def _common_options(model, weights, input_size, resume, checkpoint_dir, task):
    """(weights, input_size) as the trainers take them, after the checks every training run makes first."""
    if weights is _DEFAULT:
        weights = default_weights(model)
    if weights is not None and not isinstance(weights, str):
        weights = os.fspath(weights)
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if resume and checkpoint_dir is None:
        raise TrainingOptionError("resume=True needs the checkpoint_dir of the run to resume")
    _check_model(model, weights, task)
    return weights, input_size


def _interruptible(checkpoints, train_run):
    """Run `train_run()`; Ctrl-C or SIGTERM after a checkpoint becomes TrainingInterrupted, saying how to resume."""
    from edgekit.training import resume as checkpoints_module

    with checkpoints_module.sigterm_as_interrupt():
        try:
            return train_run()
        except KeyboardInterrupt:
            if checkpoints is not None and checkpoints.exists():
                raise checkpoints_module.TrainingInterrupted(
                    f"training interrupted; the last finished epoch's checkpoint is in {checkpoints.folder}: run "
                    "the same command with --resume to continue") from None
            raise


def object_detector(data, model=DEFAULT_DETECTOR, weights=_DEFAULT, *, epochs=None, batch_size=None,
                    learning_rate=None, freeze_backbone=False, val=None, val_split=VAL_SPLIT, test=None,
                    test_split=TEST_SPLIT, augment=None, seed=0, input_size=None, classes=None, checkpoint_dir=None,
                    resume=False, devices=None, log=None):
    """Train `model` (an EfficientDet-Lite of the zoo) on the boxes of `data` and return a `TrainedDetector`.

    data: a COCO folder or instances .json, a Pascal VOC folder, a YOLO folder or Model Maker's CSV. weights:
    "imagenet" (the backbone's ImageNet weights, the default where the zoo has them; the BiFPN and heads
    start fresh), None (random), or a `.keras` detector trained before (its class head replaced when the
    classes differ). freeze_backbone: train only the BiFPN and heads (faster; for small data). augment: scale
    jitter and flips (default on). classes: the class names in order (a list or a text file), else the data's.
    The other arguments are `image_classifier`'s.
    """
    import time

    from edgekit import models
    from edgekit.compiler import check
    from edgekit.models.efficientdet_lite.anchors import anchor_count
    from edgekit.training import labelled_boxes, recipe as recipes

    begun = time.perf_counter()
    weights, input_size = _common_options(model, weights, input_size, resume, checkpoint_dir, "detection")
    # The boxes are read and checked before TensorFlow loads: a bad dataset fails in a moment.
    splits = labelled_boxes.read_boxes(data, val=val, test=test, val_split=val_split, test_split=test_split,
                                       seed=seed, classes=classes)
    scanned = time.perf_counter() - begun
    side = input_size or models.model_entry(model).input_size
    advice = check.class_count_advice(len(splits.class_names), anchor_count(side), model)
    if advice:
        splits = splits._replace(warnings=list(splits.warnings) + [advice])
        _say(log, f"warning: {advice}")
    if weights is None:
        _say(log, f"{model}: no pretrained weights, so training starts from random weights; expect to need many "
                  "more pictures and epochs (efficientdet-lite0..2 start from an ImageNet backbone)")
    from edgekit.training import object_detector as trainer, resume as checkpoints_module
    from edgekit.training.trained_detector import TrainedDetector

    recipe = recipes.detector_recipe(epochs, batch_size, learning_rate, freeze_backbone, augment)
    settings = trainer.Settings(model=os.fspath(model), weights=weights, input_size=input_size,
                                recipe=dict(recipe._asdict()), seed=seed)
    checkpoints = checkpoints_module.CheckpointFolder(checkpoint_dir) if checkpoint_dir else None
    run = _interruptible(checkpoints, lambda: trainer.train_detector(splits, settings, checkpoints, resume, devices,
                                                                       log))
    recipe_document = dict(recipe._asdict(), weights=weights, seed=seed, input_size=list(run.input_size),
                           device=run.placement, optimizer=f"SGD momentum {recipe.momentum}, warm-up and cosine "
                           "decay", **trainer.loss_settings())
    return TrainedDetector(run, box_data_summary(splits, data), recipe_document, {"scan": round(scanned, 3)})


def trains_detector(model):
    """Whether `model` (a zoo name) is a detector, which `object_detector` trains (else `image_classifier`)."""
    from edgekit import models
    from edgekit.runtime.tasks import DETECTION

    return models.model_entry(model).task == DETECTION


def default_weights(model):
    """"imagenet" where the zoo has ImageNet weights for `model`, else None (random initialisation)."""
    from edgekit import models

    if os.path.exists(os.fspath(model)):
        return None
    return "imagenet" if _imagenet_name(models.model_entry(model)) else None


def _check_model(model, weights, task=None):
    """One-line errors, before any slow work, for a model `edgekit train` cannot train (as a `task` model when
    given)."""
    from edgekit import models
    from edgekit.runtime.tasks import CLASSIFICATION, DETECTION

    entry = models.model_entry(model)
    trainable = (CLASSIFICATION, DETECTION)
    if entry.task not in trainable or (task is not None and entry.task != task):
        names = [name for kind in trainable if task in (None, kind) for name in models.list_models(kind)]
        raise TrainingOptionError(f"{model} is a {entry.task} model; `edgekit train` trains "
                                  f"{'these' if task is None else task + ' models'}: {', '.join(names)}")
    if isinstance(weights, str) and weights.lower() == "imagenet" and _imagenet_name(entry) is None:
        raise TrainingOptionError(f"{model}: no ImageNet weights in the zoo (efficientnet-lite0..2 and "
                                  "efficientdet-lite0..2 have them): use --weights none to train from random "
                                  "weights, or a smaller model")
    if isinstance(weights, str) and weights.lower() != "imagenet" and not os.path.exists(weights):
        raise TrainingOptionError(f"{weights}: no such weights file: give imagenet, none, or your own .keras "
                                  f"{'detector' if entry.task == DETECTION else 'classifier'} trained before")


def _imagenet_name(entry):
    """The name of `entry`'s ImageNet weights (a detector's backbone's), or None."""
    return next((name for name in entry.weights if name.split("=")[-1] == "imagenet"), None)


def _say(log, text):
    if log is not None:
        log(text)


def recipe_summary(head, fine, trained, splits, seed):
    """The report's "recipe": the main phase's settings at the top, each phase's in full below."""
    main = fine or head
    weights = trained.class_weights
    return {"mode": "fine-tune" if fine else "head", "epochs": main.epochs, "batch_size": main.batch_size,
            "learning_rate": main.learning_rate, "optimizer": f"SGD momentum {main.momentum}"
            + (", warm-up and cosine decay" if main.cosine else ", constant rate"),
            "augment": main.augment, "label_smoothing": main.label_smoothing, "dropout": main.dropout,
            "early_stopping_patience": main.patience, "freeze_batch_norm": main.freeze_batch_norm,
            "class_weights": {splits.class_names[i]: round(w, 4) for i, w in weights.items()} if weights else None,
            "seed": seed, "input_size": list(trained.input_size), "device": trained.placement,
            "head": dict(head._asdict()), "fine_tune": dict(fine._asdict()) if fine else None}


def data_summary(splits, source):
    """The report's "data": pictures per split and class, and what was skipped."""
    names = list(splits.class_names)
    per_class = {name: {"train": 0, "val": 0, "test": 0} for name in names}
    counts = {}
    for split in ("train", "val", "test"):
        subset = getattr(splits, split)
        counts[split] = 0 if subset is None else len(subset.paths)
        if subset is not None:
            for label in subset.labels:
                per_class[names[int(label)]][split] += 1
    return {"source": os.fspath(source), **counts, "per_class": per_class, "skipped": len(splits.skipped),
            "skipped_files": [{"file": os.fspath(path), "reason": reason} for path, reason in splits.skipped[:50]],
            "warnings": list(splits.warnings)}


def box_data_summary(splits, source):
    """The detector report's "data": pictures, boxes and empty pictures per split, boxes per class, and the
    boxes the reader clipped or dropped."""
    from edgekit.training import labelled_boxes

    return {"source": os.fspath(source), "format": splits.format, "root": splits.root, "clipped": splits.clipped,
            "dropped": splits.dropped,
            **{split: labelled_boxes.describe_split(getattr(splits, split)) for split in ("train", "val", "test")},
            "boxes_per_class": labelled_boxes.box_counts(splits.train, splits.class_names),
            "warnings": list(splits.warnings)}


CHECKPOINT_FOLDER = "checkpoint"


class OutputFolderError(EdgekitError):
    exit_code = 2


class TrainingOptionError(EdgekitError):
    """A model, weights or option `edgekit train` cannot use."""

    exit_code = 2


def prepare_out(out_dir, resume=False, overwrite=False):
    """Check `out_dir` before any slow work: writable, and empty unless resuming or told to overwrite. Returns
    the checkpoint folder inside it."""
    from edgekit.files import writable_folder

    out_dir = os.fspath(out_dir)
    existed = os.path.isdir(out_dir)
    checkpoint_dir = os.path.join(out_dir, CHECKPOINT_FOLDER)
    present = [n for n in os.listdir(out_dir) if not n.startswith(".")] if existed else []
    if present and not (resume or overwrite):
        if present == [CHECKPOINT_FOLDER]:
            raise OutputFolderError(f"{out_dir}: holds an interrupted training run: add --resume to continue it, "
                                    "or --overwrite to start again")
        raise OutputFolderError(f"{out_dir}: the output folder is not empty: choose an empty or new --out, or add "
                                "--overwrite to replace what edgekit writes there")
    writable_folder(out_dir, "--out", error=OutputFolderError)
    return checkpoint_dir


def train_to_folder(data, out_dir, model=DEFAULT_MODEL, resume=False, overwrite=False, compile=True, log=None,
                    **options):
    """What `edgekit train` does: check `out_dir`, train (checkpointing into `out_dir`/checkpoint), export
    everything into `out_dir`, and drop the checkpoint once all is written. Returns the export's `Exported`."""
    import shutil

    checkpoint_dir = prepare_out(out_dir, resume, overwrite)
    train = object_detector if trains_detector(model) else image_classifier
    trained = train(data, model=model, checkpoint_dir=checkpoint_dir, resume=resume, log=log, **options)
    exported = trained.export(out_dir, compile=compile, log=log)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return exported
