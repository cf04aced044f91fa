"""A trained detector: what `edgekit.train.object_detector` returns, with `evaluate` and `export`.

Float and int8 models are scored the same way: both keep the detections the exported model's
TFLite_Detection_PostProcess keeps (its score threshold, IoU threshold and most detections, `convert`'s
defaults), boxes are mapped back to the picture through the runtime's letterbox scale, and pycocotools
scores them (`evaluation.metrics`), as `edgekit eval` does. The int8 model runs through the runtime, exactly as
`edgekit run` runs it, so its figures are the deployed model's.

Imported only from inside training functions (it imports TensorFlow through the trainer).
"""

import os
import time
import numpy as np

from edgekit.converters.options import DEFAULTS
from edgekit.errors import EdgekitError
from edgekit.evaluation import datasets, metrics
from edgekit.files import write_atomic
from edgekit.models.efficientdet_lite.anchors import detect as decode_detections
from edgekit.progress import Progress
from edgekit.runtime.adapters.detect import picture_box
from edgekit.runtime.pipeline import clipped_box
from edgekit.runtime.tasks import DEFAULT_THRESHOLD, DETECTION
from edgekit.training import box_input, labelled_boxes, recipe as recipes
from edgekit.training.image_classifier import say
from edgekit.training.trained_classifier import LABELS_FILE, Exported, save_keras

# Test pictures drawn in the report with their true and predicted boxes.
EXAMPLES_SHOWN = 12
PREDICT_BATCH = 8
SETTINGS = DEFAULTS.detection


def float_detections(model, pictures, input_size, settings=SETTINGS, progress_label=None):
    """Per picture, [(class index, score, (xmin, ymin, xmax, ymax) in picture pixels)] of the Keras detector,
    decoded as the exported model's post-processing op does and mapped to the picture as the runtime maps it."""
    height, width = input_size
    found = []
    with Progress(len(pictures), progress_label or "float model", unit="img") as bar:
        for start in range(0, len(pictures), PREDICT_BATCH):
            chunk = pictures[start:start + PREDICT_BATCH]
            placed = [box_input.input_pixels(item, input_size) for item in chunk]
            pixels = np.stack([p for p, _ in placed]).astype(np.float32)
            box_encodings, class_logits = model.predict_on_batch(pixels)
            for item, (_, scale), encodings, logits in zip(chunk, placed, np.asarray(box_encodings),
                                                           np.asarray(class_logits)):
                boxes, classes, scores = decode_detections(encodings, logits, model.edgekit_anchors,
                                                           settings.score_threshold, settings.iou_threshold,
                                                           settings.max_detections)
                # Mapped to the picture and clipped to it as the runtime does with the int8 model's boxes, so that
                # the two are compared alike (pycoral truncates them to whole pixels).
                in_picture = [clipped_box(picture_box(b, (width, height), (scale, scale)), (item.width, item.height))
                              for b in boxes]
                found.append([(int(c), float(s), tuple(b)) for c, s, b in zip(classes, scores, in_picture)])
                bar.update(1)
    return found


def int8_detections(model_path, pictures, progress_label=None):
    """Per picture, the runtime's detections of the .tflite at `model_path` (as `edgekit run` gives them)."""
    from edgekit.evaluation.workers import ModelSpec, open_predictor, predict

    predictor = open_predictor(ModelSpec(os.fspath(model_path), "cpu", None, DETECTION, None), quiet=True)
    found = []
    with Progress(len(pictures), progress_label or os.path.basename(model_path), unit="img") as bar:
        for index, item in enumerate(pictures):
            objects, _ = predict(predictor, datasets.Sample(item.path, index))
            found.append([(int(c), float(s), (x, y, x + w, y + h)) for c, s, (x, y, w, h) in objects])
            bar.update(1)
    return found


def detection_scores(pictures, class_names, found):
    """COCO mAP, mAP@0.5, per-class AP and the precision-recall curve at IoU 0.5 of `found` (per picture, as
    `float_detections` returns) against the pictures' boxes, as a JSON-ready dict."""
    images, categories, annotations = labelled_boxes.coco_truth(pictures, class_names)
    # Boxes come clipped to their picture (the runtime clips them; float_detections as it does).
    detections = [{"image_id": index, "category_id": class_index + 1,
                   "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score}
                  for index, objects in enumerate(found) for class_index, score, box in objects
                  if 0 <= class_index < len(class_names)]
    details = metrics.coco_details(images, categories, annotations, detections)
    per_class = {class_names[c - 1]: (None if values is None else {"ap": _round(values[0]), "ap50": _round(values[1])})
                 for c, values in details.per_class.items()}
    return {"map": _round(details.map), "map50": _round(details.map50), "per_class": per_class,
            "pr_curve": {key: [_round(v) for v in values] for key, values in details.pr_curve.items()
                         if key in ("recall", "precision")},
            "pictures": len(pictures), "boxes": len(annotations), "detections": len(detections)}


def _round(value):
    return None if value is None else round(float(value), 4)


def examples(pictures, found, most=EXAMPLES_SHOWN, threshold=DEFAULT_THRESHOLD[DETECTION]):
    """The report's side-by-side pictures: truth and predictions (at `edgekit run`'s default threshold)."""
    shown = []
    for item, objects in list(zip(pictures, found))[:most]:
        truth = [(int(label), tuple(float(v) for v in box)) for box, label in zip(item.boxes, item.labels)]
        shown.append({"path": item.path, "truth": truth,
                      "predicted": [(c, s, b) for c, s, b in objects if s >= threshold]})
    return shown


class TrainedDetector:
    """A detector trained by `object_detector.train_detector`: `.model` (Keras, raw pixels in, box regressions and
    class logits out), `.labels`, `.history`, `.evaluate(data)` and `.export(out_dir)`."""

    def __init__(self, run, data_summary, recipe_document, timings):
        self.run, self.model, self.labels = run, run.model, list(run.splits.class_names)
        self.input_size, self.history = run.input_size, run.history
        self.name = os.path.basename(os.fspath(run.settings.model))
        self.data_summary, self.recipe_document = data_summary, recipe_document
        self.timings = dict(timings, train=run.seconds)
        self.warnings = list(run.warnings)

    def detect(self, pictures):
        """Per picture (labelled_boxes.BoxPicture, or a path), the float model's detections."""
        pictures = [_unlabelled(p) if isinstance(p, (str, os.PathLike)) else p for p in pictures]
        return float_detections(self.model, pictures, self.input_size)

    def evaluate(self, data=None, model_path=None):
        """Scores (see `detection_scores`) on `data` (a dataset of any format `train` reads, all its pictures), or
        on the test split; of the float model, or of the .tflite at `model_path` run by the runtime."""
        if data is None:
            pictures = self.run.splits.test
        else:
            pictures = labelled_boxes.pictures_for(data, self.labels)
        if not pictures:
            raise EdgekitError("no test pictures to evaluate on: give data, or train with a test split")
        found = (int8_detections(model_path, pictures) if model_path
                 else float_detections(self.model, pictures, self.input_size))
        return detection_scores(pictures, self.labels, found)

    def export(self, out_dir, compile=True, calibration_samples=recipes.CALIBRATION_SAMPLES, log=None):
        """Write `<name>.keras`, labels.txt, `<name>_int8.tflite` (+ its compiled twin when edgetpu_compiler is
        installed), the conversion report and train_report.json/.html into `out_dir`; score float and int8 on
        the test split. Returns `Exported(files, document, conversion)`."""
        from edgekit.converters.api import convert
        from edgekit.training import box_report

        begun = time.perf_counter()
        os.makedirs(out_dir, exist_ok=True)
        keras_path = save_keras(self.model, out_dir, self.name)
        labels_path = write_atomic(os.path.join(out_dir, LABELS_FILE), "".join(f"{n}\n" for n in self.labels))
        train = self.run.splits.train
        rng = np.random.default_rng([self.run.settings.seed, 11])
        chosen = sorted(rng.permutation(len(train))[:calibration_samples])
        pixels = np.stack([box_input.input_pixels(train[i], self.input_size)[0] for i in chosen])
        say(log, f"converting to int8, calibrated on {len(pixels)} training pictures")
        conversion = convert(self.model, pixels, out_dir, name=self.name, labels=labels_path, compile=compile,
                             task=DETECTION)
        self.timings["convert"] = round(time.perf_counter() - begun, 3)
        begun = time.perf_counter()
        test, scores, shown = self.run.splits.test, {}, []
        if test:
            float_found = float_detections(self.model, test, self.input_size, progress_label="float, test")
            int8_found = int8_detections(conversion.int8_path, test, progress_label="int8, test")
            scores = {"float": detection_scores(test, self.labels, float_found),
                      "int8": detection_scores(test, self.labels, int8_found)}
            shown = examples(test, int8_found)
        self.timings["evaluate"] = round(time.perf_counter() - begun, 3)
        files = {"keras": keras_path, "int8": conversion.int8_path, "edgetpu": conversion.compiled_path,
                 "labels": labels_path, "report": os.path.join(out_dir, box_report.HTML_NAME),
                 "report_json": os.path.join(out_dir, box_report.JSON_NAME),
                 "conversion_report": conversion.report_html}
        document = {"task": DETECTION, "model": self.name, "input_size": list(self.input_size),
                    "classes": list(self.labels), "data": self.data_summary, "recipe": self.recipe_document,
                    "history": self.history, "best_epoch": self.run.best, "device": self.run.placement,
                    "test": scores or None, "edgetpu": conversion.check, "compile": conversion.compile,
                    "files": files, "timings": self.timings, "warnings": self.warnings + list(conversion.warnings)}
        box_report.write(out_dir, document, shown)
        return Exported(files, document, conversion)


def _unlabelled(path):
    """A picture with no boxes, to detect objects in (its size as the runtime reads it, turned upright)."""
    from edgekit.runtime import images

    width, height = images.load_image(path, "RGB").size
    return labelled_boxes.BoxPicture(os.fspath(path), width, height, np.zeros((0, 4), np.float32),
                                     np.zeros(0, np.int32), np.zeros(0, bool))
