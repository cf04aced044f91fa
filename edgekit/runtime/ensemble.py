"""Ensembles of classifiers: a small JSON file that `run`, `bench` and `eval` use like a model.

    {"format": "edgekit-ensemble", "version": 1, "task": "classification", "combine": "mean",
     "labels": "imagenet_labels.txt",
     "members": [{"path": "a_edgetpu.tflite", "cpu_path": "a.tflite", "weight": 0.5}, ...]}

Paths are relative to the file, so an ensemble folder can be moved as a whole. Each member keeps its own
input size and preprocessing (its own Runner; `resize`, `mean`, `std` per member override its metadata),
and the combined scores are the weighted mean of the members' probabilities ("mean") or the softmax of the
weighted mean of their log-probabilities ("logit-mean": for softmax outputs log p = logit - constant, and
the constant cancels in the softmax, so this is the mean of the logits).

Why: on an Edge TPU, small models compiled together share the on-chip parameter cache (Coral's
compiler page, "Parameter data caching": https://coral.ai/docs/edgetpu/compiler/#parameter-data-caching),
so an ensemble can run without streaming parameters, where one larger model might not.

This module is the runtime's half: the file format, reading it, and running an ensemble. Writing one
(checking members, co-compiling them) is the build side's: `edgekit.compiler.ensemble_build`.
"""

import json
import os
import time
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import images, labels as labels_mod
from edgekit.runtime.adapters import classify, common
from edgekit.runtime.interpreter import invoke, open_model, print_notice
from edgekit.runtime.pipeline import ImageResult, ModelInfo, Runner
from edgekit.runtime.tasks import CLASSIFICATION

FORMAT = "edgekit-ensemble"
VERSION = 1
COMBINES = ("mean", "logit-mean")

Member = namedtuple("Member", "path weight cpu_path resize mean std")
EnsembleSpec = namedtuple("EnsembleSpec", "path members combine task labels")


def is_ensemble_file(path):
    """True for an ensemble file (JSON); a .tflite model is never one."""
    return str(path).lower().endswith(".json")


def _resolve(folder, path):
    return path if path is None or os.path.isabs(path) else os.path.normpath(os.path.join(folder, path))


def read_ensemble(path):
    """Read and check an ensemble file: EnsembleSpec with absolute member paths, weights summing to 1."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such ensemble file") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise EdgekitError(f"{path}: not an ensemble file ({str(e).splitlines()[0]}); write one with "
                           "`edgekit ensemble MODEL... --out FILE.json`") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or not document.get("members"):
        raise EdgekitError(f"{path}: not an edgekit ensemble file (no \"format\": \"{FORMAT}\" with members); "
                           "write one with `edgekit ensemble MODEL... --out FILE.json`")
    combine = document.get("combine", "mean")
    if combine not in COMBINES:
        raise EdgekitError(f"{path}: unknown combine {combine!r}: use {' or '.join(COMBINES)}")
    folder = os.path.dirname(os.path.abspath(path))
    members = []
    for entry in document["members"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise EdgekitError(f"{path}: every member needs a \"path\" (relative to the ensemble file)")
        member = Member(_resolve(folder, entry["path"]), float(entry.get("weight", 1.0)),
                        _resolve(folder, entry.get("cpu_path")), entry.get("resize"), entry.get("mean"),
                        entry.get("std"))
        if not os.path.isfile(member.path) and not (member.cpu_path and os.path.isfile(member.cpu_path)):
            raise EdgekitError(f"{path}: member {entry['path']} is missing ({member.path}); put the model "
                               "back or write the ensemble again")
        members.append(member)
    weights = check_weights([m.weight for m in members], path)
    members = [m._replace(weight=w) for m, w in zip(members, weights)]
    return EnsembleSpec(path, members, combine, document.get("task", CLASSIFICATION),
                        _resolve(folder, document.get("labels")))


def check_weights(weights, where="--weights"):
    """Weights as floats summing to 1; refuses negative ones and an all-zero set."""
    weights = [float(w) for w in weights]
    if any(w < 0 or not np.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise EdgekitError(f"{where}: weights must be zero or positive, and not all zero: {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def combine_scores(scores, weights, combine="mean", floors=None):
    """The ensemble's scores from members' probability vectors (a pure function).

    `floors` are each member's smallest meaningful probability (half a quantization step): a quantized
    softmax stores tiny probabilities as 0, whose log would be -inf, so logit-mean clips to the floor.
    """
    scores = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores]
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    if combine == "mean":
        return np.sum([w * s for w, s in zip(weights, scores)], axis=0).astype(np.float32)
    if combine != "logit-mean":
        raise ValueError(f"combine must be one of {COMBINES}")
    floors = floors or [1e-7] * len(scores)
    logits = np.sum([w * np.log(np.clip(s, f, None)) for w, s, f in zip(weights, scores, floors)], axis=0)
    exp = np.exp(logits - logits.max())
    return (exp / exp.sum()).astype(np.float32)


def _open_member(member, device, num_threads, notice):
    """A compiled member whose CPU model lives elsewhere (`cpu_path`) falls back to it off the Edge TPU."""
    if (member.cpu_path and device == "cpu") or not os.path.isfile(member.path):
        return open_model(member.cpu_path, device="cpu", num_threads=num_threads, notice=notice)
    try:
        return open_model(member.path, device=device, num_threads=num_threads, notice=notice)
    except EdgekitError:
        if not member.cpu_path or device not in ("auto", None):
            raise
        notice(f"{member.path} cannot run here; running its CPU model {member.cpu_path} instead")
        return open_model(member.cpu_path, device="cpu", num_threads=num_threads, notice=notice)


class Ensemble:
    """Opened members behaving like one classifier: `run_image(path)` gives an `ImageResult` whose
    `classes` come from the combined scores, and whose `scores` are the combined vector (for eval)."""

    def __init__(self, spec, device="auto", num_threads=None, top_k=5, threshold=0.0, notice=print_notice):
        self.spec = spec
        self.task = CLASSIFICATION
        self.top_k, self.threshold = top_k, threshold
        self.opened = [_open_member(m, device, num_threads, notice) for m in spec.members]
        self.runners = [Runner(o, task=CLASSIFICATION, resize=m.resize, mean=m.mean, std=m.std)
                        for o, m in zip(self.opened, spec.members)]
        counts = {classify.num_classes(r.interpreter) for r in self.runners}
        if len(counts) > 1:
            raise EdgekitError(f"{spec.path}: members score different numbers of classes ({sorted(counts)}); "
                               "ensemble members must share one label set")
        self.labels = labels_mod.read_label_file(spec.labels) if spec.labels else self.runners[0].labels
        # Half a quantization step of each member's output: the probability its stored 0 stands for.
        self.floors = [max(float(common.output_details(r.interpreter, 0)["quantization"][0]) / 2, 1e-7)
                       for r in self.runners]
        self.weights = [m.weight for m in spec.members]
        self.mode = "RGB"

    @property
    def devices(self):
        return sorted({o.device for o in self.opened})

    @property
    def info(self):
        """The ensemble's `ModelInfo`: every member's file, the devices they ran on, the combine rule."""
        return ModelInfo(str(self.spec.path), [str(o.path) for o in self.opened], ",".join(self.devices),
                         self.opened[0].backend.text, CLASSIFICATION, self.spec.combine, self.weights)

    def scores(self, image):
        """(combined scores, member scores, member invoke ms) for a decoded PIL image."""
        member_scores, latencies = [], []
        converted = {}
        for runner in self.runners:
            picture = converted.setdefault(runner.mode, images.convert(image, runner.mode))
            result = runner.run_loaded(picture)
            member_scores.append(result.scores)
            latencies.append(result.latency_ms)
        return combine_scores(member_scores, self.weights, self.spec.combine, self.floors), member_scores, latencies

    def run_loaded(self, image, path=""):
        start = time.perf_counter()
        combined, _, latencies = self.scores(image)
        classes = classify.get_classes_from_scores(combined, self.top_k, self.threshold)
        total = round((time.perf_counter() - start) * 1000.0, 3)
        return ImageResult(str(path), image, image.size, round(sum(latencies), 3),
                           {"members_invoke": latencies, "total": total}, CLASSIFICATION, classes, None, None,
                           combined)

    def run_image(self, path):
        return self.run_loaded(images.load_image(path, "RGB"), path)

    def invoke_all(self):
        """Invoke every member on its current input (what `edgekit bench` times as the ensemble's invoke)."""
        for opened in self.opened:
            invoke(opened)


def open_ensemble(path, device="auto", num_threads=None, top_k=5, threshold=0.0, notice=print_notice):
    return Ensemble(read_ensemble(path), device, num_threads, top_k, threshold, notice)

