"""What `edgekit.train.image_classifier` returns: the trained network with `evaluate(data)` and `export(dir)`.

`export` writes what `edgekit train --out DIR` promises: `<name>.keras` (preprocessing inside, accepted by
`edgekit convert`), `labels.txt`, `<name>_int8.tflite` made by `edgekit.convert` itself and calibrated on
training pictures (labels in its metadata), the compiled twin when `edgetpu_compiler` is installed, and
`train_report.json` / `.html`. The int8 model is scored through `edgekit.runtime`, exactly as `edgekit run`
runs it, so the accuracy in the report is the accuracy a user gets.

Imported only from inside `edgekit.train` functions: it imports TensorFlow through the trainer.
"""

import os
import time
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.files import atomic_path, write_atomic
from edgekit.progress import Progress
from edgekit.runtime.tasks import CLASSIFICATION
from edgekit.training import image_classifier as trainer
from edgekit.training import input_data, int8_head, labelled_data, recipe as recipes

LABELS_FILE = "labels.txt"
# files: {"keras", "int8", "edgetpu", "labels", "report", "report_json"}; document: the report's JSON; conversion:
# edgekit.convert's ConversionResult.
Exported = namedtuple("Exported", "files document conversion")


def save_keras(model, out_dir, name):
    """`model` written atomically as `out_dir`/`name`.keras (a trained classifier's or detector's); its path."""
    path = os.path.join(out_dir, f"{name}.keras")
    with atomic_path(path) as temporary:
        model.save(temporary)
    return path


def calibration_pictures(subset, count, seed):
    """Up to `count` training pictures, the same share from every class, in a seeded order."""
    rng = np.random.default_rng([seed, 11])
    by_class = {}
    for index in rng.permutation(len(subset.labels)):
        by_class.setdefault(int(subset.labels[index]), []).append(int(index))
    chosen, queues = [], [list(v) for _, v in sorted(by_class.items())]
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return [subset.paths[i] for i in chosen]


def runtime_scores(results, subset, num_classes, model_path, progress_label):
    """`trainer.Scores` from the runtime's `ImageResult`s of the pictures of `subset`, in order (a model's or an
    ensemble's, run as `edgekit run` runs them), with a progress bar."""
    rows = []
    with Progress(len(subset.paths), progress_label, unit="img") as bar:
        for result in results:
            rows.append(np.asarray(result.scores, dtype=np.float64))
            bar.update()
    probabilities = np.stack(rows) if rows else np.zeros((0, num_classes))
    if probabilities.shape[1] != num_classes:
        raise EdgekitError(f"{model_path}: gives {probabilities.shape[1]} scores, the classifier has {num_classes} "
                           "classes")
    return trainer.scores_of(probabilities, subset.labels, num_classes)


def int8_scores(model_path, subset, num_classes, progress_label="int8 test pictures"):
    """`trainer.Scores` of a .tflite classifier on `subset`, through the runtime as `edgekit run` runs it."""
    from edgekit.runtime.interpreter import open_model
    from edgekit.runtime.pipeline import Runner

    runner = Runner(open_model(model_path, device="cpu", notice=lambda message: None), task=CLASSIFICATION)
    return runtime_scores(runner.run_images(subset.paths), subset, num_classes, model_path, progress_label)


def scores_document(scores, class_names):
    if scores is None:
        return None
    return {"accuracy": scores.accuracy, "loss": scores.loss, "count": scores.count,
            "per_class": {name: row for name, row in zip(class_names, scores.per_class)},
            "confusion": scores.confusion.tolist()}


def misclassified(subset, scores, class_names, model_kind, limit=recipes.MISCLASSIFIED_SHOWN):
    """The wrongly classified pictures, most confident mistakes first (the most telling), at most `limit`."""
    wrong = np.flatnonzero(scores.predicted != subset.labels)
    rows = []
    for index in wrong[np.argsort(-scores.confidence[wrong], kind="stable")][:limit]:
        rows.append({"file": os.path.abspath(subset.paths[index]), "label": class_names[int(subset.labels[index])],
                     "predicted": class_names[int(scores.predicted[index])],
                     "score": round(float(scores.confidence[index]), 4), "model": model_kind})
    return rows


class TrainedClassifier:
    """A trained classifier: `.model` (keras.Model taking raw RGB pixels), `.labels` (class names in output
    order), `.history` (one dict per epoch), `.scores` ({"val", "test"}: float `Scores`)."""

    def __init__(self, trained, data_summary, recipe_document, timings):
        self.trained = trained
        self.model = trained.model
        self.labels = trained.class_names
        self.history = trained.history
        self.scores = trained.scores
        self.data_summary = data_summary
        self.recipe_document = recipe_document
        self.timings = dict(timings, **trained.timings)
        self.warnings = list(trained.warnings)
        self.export_name = None

    @property
    def name(self):
        """The files' stem: the export's own name when given, else the zoo model's name."""
        if self.export_name:
            return self.export_name
        return self.trained.settings.model if not os.path.exists(self.trained.settings.model) else \
            os.path.splitext(os.path.basename(self.trained.settings.model))[0]

    def subset_of(self, data):
        """A `labelled_data.Subset` of `data` (a folder, a CSV, or a Subset) in this model's label order."""
        if isinstance(data, labelled_data.Subset):
            return data
        return labelled_data.subset_for(data, self.labels)

    def evaluate(self, data, model_path=None):
        """`Scores` on `data` (folder, CSV or Subset): of the float Keras model, or of the .tflite at `model_path`
        run by the runtime. Like Model Maker's `evaluate`, plus per-class figures and the confusion matrix."""
        subset = self.subset_of(data)
        if model_path is not None:
            return int8_scores(model_path, subset, len(self.labels), "pictures")
        return trainer.picture_scores(self.model, subset, self.trained.input_size)

    def save_keras(self, out_dir):
        return save_keras(self.model, out_dir, self.name)

    def rescore(self):
        """Score the float model again on the validation and test pictures (after its head changed)."""
        splits, scores = self.trained.splits, {}
        for split in ("val", "test"):
            subset = getattr(splits, split)
            if subset is not None:
                scores[split] = trainer.picture_scores(self.model, subset, self.trained.input_size)
        self.scores = scores

    def export(self, out_dir, compile=True, calibration_samples=recipes.CALIBRATION_SAMPLES, log=None, name=None,
               fit_to_int8=True):
        """Write the Keras model, labels, int8 model (+ compiled twin) and the report into `out_dir`. `name`: the
        files' stem (`<name>.keras`, `<name>_int8.tflite`) instead of the model's name, e.g. for ensemble members,
        which edgetpu_compiler must tell apart. fit_to_int8: after converting, fit the head to the int8
        backbone's features and convert again when that lowers the validation loss (see `int8_head`)."""
        if name:
            self.export_name = name
        from edgekit.converters.api import convert
        from edgekit.training import train_report

        begun = time.perf_counter()
        os.makedirs(out_dir, exist_ok=True)
        keras_path = self.save_keras(out_dir)
        labels_path = write_atomic(os.path.join(out_dir, LABELS_FILE), "".join(f"{n}\n" for n in self.labels))
        splits = self.trained.splits
        picked = calibration_pictures(splits.train, calibration_samples, self.trained.settings.seed)
        pixels = np.stack([input_data.load_pixels(p, self.trained.input_size, trainer.RESIZE) for p in picked])
        trainer.say(log, f"converting to int8, calibrated on {len(pixels)} training pictures")
        conversion = convert(self.model, pixels, out_dir, name=self.name, labels=labels_path, compile=compile,
                             task=CLASSIFICATION)
        self.timings["convert"] = round(time.perf_counter() - begun, 3)
        refit = None
        if fit_to_int8:
            begun = time.perf_counter()
            refit = int8_head.refit_head(self, conversion.int8_path, recipes.Recipe(**self.trained.settings.head),
                                         log)
            if refit is not None and refit.kept:
                keras_path = self.save_keras(out_dir)
                conversion = convert(self.model, pixels, out_dir, name=self.name, labels=labels_path,
                                     compile=compile, task=CLASSIFICATION)
                self.rescore()
            self.timings["fit_to_int8"] = round(time.perf_counter() - begun, 3)
        begun = time.perf_counter()
        test = splits.test
        scores = {"val": scores_document(self.scores.get("val"), self.labels)}
        wrong, wrong_count = [], 0
        if test is not None:
            int8 = int8_scores(conversion.int8_path, test, len(self.labels))
            scores["test"] = {"float": scores_document(self.scores.get("test"), self.labels),
                              "int8": scores_document(int8, self.labels)}
            wrong = misclassified(test, int8, self.labels, "int8")
            wrong_count = int(np.sum(int8.predicted != test.labels))
        self.timings["evaluate_int8"] = round(time.perf_counter() - begun, 3)
        files = {"keras": keras_path, "int8": conversion.int8_path, "edgetpu": conversion.compiled_path,
                 "labels": labels_path, "report": os.path.join(out_dir, train_report.HTML_NAME),
                 "report_json": os.path.join(out_dir, train_report.JSON_NAME),
                 "conversion_report": conversion.report_html}
        warnings = self.warnings + list(conversion.warnings)
        document = {"model": self.name, "task": CLASSIFICATION, "labels": list(self.labels),
                    "recipe": self.recipe_document, "data": self.data_summary, "history": self.history,
                    "best_epoch": self.trained.best, "misclassified_count": wrong_count,
                    "stopped_early": _stopped_early(self.history, self.recipe_document),
                    "device": self.trained.placement, "metrics": scores, "misclassified": wrong,
                    "edgetpu": conversion.check, "compile": conversion.compile,
                    "agreement_with_float": conversion.agreement, "files": files,
                    "head_fitted_to_int8": refit._asdict() if refit is not None else None,
                    "timings": self.timings, "warnings": warnings}
        train_report.write(out_dir, document)
        return Exported(files, document, conversion)


def _stopped_early(history, recipe_document):
    stopped = {}
    for phase, key in ((trainer.HEAD, "head"), (trainer.FINE_TUNE, "fine_tune")):
        planned = (recipe_document.get(key) or {}).get("epochs")
        ran = sum(1 for row in history if row["phase"] == phase)
        if planned:
            stopped[phase] = ran < planned
    return stopped
