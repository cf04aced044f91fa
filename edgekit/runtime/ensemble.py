"""Ensembles of classifiers: a small JSON file that `run`, `bench` and `eval` use like a model.

    {"format": "edgekit-ensemble", "version": 1, "task": "classification", "combine": "mean",
     "labels": "imagenet_labels.txt",
     "members": [{"path": "a_edgetpu.tflite", "cpu_path": "a.tflite", "weight": 0.5}, ...]}

Paths are relative to the file, so an ensemble folder can be moved as a whole. Each member keeps its own
input size and preprocessing (its own Runner; `resize`, `mean`, `std` per member override its metadata),
and the combined scores are the weighted mean of the members' probabilities ("mean") or the softmax of the
weighted mean of their log-probabilities ("logit-mean": for softmax outputs log p = logit - constant, and
the constant cancels in the softmax, so this is the mean of the logits).

Why: on an Edge TPU, small models compiled together share the ~6.9 MiB on-chip parameter cache, so an
ensemble can run without streaming parameters, where one larger model might not.
"""

import json
import os
import sys
import time
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.files import write_atomic
from edgekit.runtime import images, labels as labels_mod
from edgekit.runtime.adapters import classify, common
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner
from edgekit.runtime.tasks import CLASSIFICATION, detect_task, recorded_task
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

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
    return EnsembleSpec(path, members, combine, document.get("task", "classification"),
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


# --- writing an ensemble file ------------------------------------------------------------------------

def _class_count(model):
    outputs = model.output_tensors()
    return int(np.prod(outputs[0].shape)) if outputs else 0


def _member_facts(path):
    """(model, class count, embedded labels) of a would-be member, refusing what cannot be one."""
    if not os.path.isfile(path):
        raise EdgekitError(f"{path}: no such model file (a missing ensemble member)")
    model = read_model(path)
    recorded = read_edgekit_metadata(model)
    task = recorded_task(recorded) or detect_task(model)
    if task != "classification":
        raise EdgekitError(f"{path}: a {task} model; ensembles combine classifiers' scores only")
    return model, _class_count(model), recorded.get("labels") or None


def check_members(paths):
    """Refuse members that do not score the same classes, saying which and why."""
    facts = [_member_facts(p) for p in paths]
    first, (_, count, named) = paths[0], facts[0]
    for path, (_, other_count, other_named) in zip(paths[1:], facts[1:]):
        if other_count != count:
            raise EdgekitError(f"different label sets: {first} scores {count} classes and {path} "
                               f"{other_count}; ensemble members must score the same classes in the same order")
        if named and other_named and list(named) != list(other_named):
            where = next(i for i, (a, b) in enumerate(zip(named, other_named)) if a != b) \
                if any(a != b for a, b in zip(named, other_named)) else min(len(named), len(other_named))
            shown = [(lst[where] if where < len(lst) else None) for lst in (named, other_named)]
            raise EdgekitError(f"different label sets: {first} and {path} embed different labels (class "
                               f"{where}: {shown[0]!r} vs {shown[1]!r}); ensemble members must score the "
                               "same classes in the same order")
    return [f[0] for f in facts]


def parameter_report(models):
    """Members' summed parameter bytes of ops the Edge TPU would run, against the on-chip cache."""
    from edgekit.compiler import check, rules  # no TensorFlow; only when writing an ensemble

    members = []
    for model in models:
        if model.is_edgetpu_compiled:
            from edgekit.compiler.compiled_model import inspect_model

            report = inspect_model(model)
            size = sum(c.cached_bytes + c.streamed_bytes for c in report.custom_ops)
        else:
            size = check.predict(model).parameter_bytes
        members.append({"model": model.path, "parameter_bytes": int(size)})
    total = sum(m["parameter_bytes"] for m in members)
    return {"members": members, "total_bytes": total, "cache_bytes": rules.ON_CHIP_CACHE_BYTES,
            "fits_cache": total <= rules.ON_CHIP_CACHE_BYTES}


def co_compile(paths, out_dir):
    """Compile the members together so they share the Edge TPU cache, with the compile command's code.

    Returns ({cpu path: compiled path}, note). Without the compiler, or when it fails, the members stay
    CPU models and the note says why (an ensemble works on the CPU either way).
    """
    from edgekit.compiler import compiler

    try:
        result = compiler.compile_models(paths, compiler.DEFAULT_OPTIONS._replace(out_dir=out_dir))
    except EdgekitError as e:
        return {}, f"not co-compiled: {e}"
    compiled = {os.path.splitext(os.path.basename(p))[0]: p for p in result.outputs}
    found = {p: compiled.get(os.path.splitext(os.path.basename(p))[0] + "_edgetpu") for p in paths}
    return {p: c for p, c in found.items() if c}, "co-compiled: the members share the on-chip cache"


def _relative(path, folder):
    return os.path.relpath(os.path.abspath(path), folder) if path else None


def write_ensemble(models, out, weights=None, combine="mean", labels=None, compile_members=True):
    """Check the members, co-compile them when the compiler is present, and write the ensemble file.

    Returns the document written, with the parameter report and the compile note beside it.
    """
    models = [os.fspath(m) for m in models]
    if len(models) < 2:
        raise EdgekitError("an ensemble needs at least two models")
    if combine not in COMBINES:
        raise EdgekitError(f"unknown combine {combine!r}: use {' or '.join(COMBINES)}")
    weights = check_weights(weights if weights is not None else [1.0] * len(models))
    if len(weights) != len(models):
        raise EdgekitError(f"--weights: {len(weights)} weights for {len(models)} models; give one per model")
    if labels and not os.path.isfile(labels):
        raise EdgekitError(f"{labels}: no such label file")
    opened = check_members(models)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    compiled, note = {}, "members are already compiled" if all(m.is_edgetpu_compiled for m in opened) else None
    if compile_members and not any(m.is_edgetpu_compiled for m in opened):
        compiled, note = co_compile(models, folder)
    elif not compile_members:
        note = "not co-compiled (--no-compile)"
    members = []
    for path, weight in zip(models, weights):
        member = {"path": _relative(compiled.get(path, path), folder), "weight": round(weight, 6)}
        if path in compiled:
            member["cpu_path"] = _relative(path, folder)
        members.append(member)
    document = {"format": FORMAT, "version": VERSION, "task": "classification", "combine": combine,
                "members": members}
    if labels:
        document["labels"] = _relative(labels, folder)
    document["parameters"] = parameter_report([read_model(compiled.get(p, p)) for p in models])
    document["compile"] = note
    write_atomic(out, json.dumps(document, indent=2) + "\n")
    return document


# --- running an ensemble -----------------------------------------------------------------------------

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


def _notice(message):
    print(f"edgekit: {message}", file=sys.stderr)


class Ensemble:
    """Opened members behaving like one classifier: `run_image(path)` gives a Runner-like result with
    `classes` from the combined scores (and `_scores`, the full vector, for evaluation)."""

    def __init__(self, spec, device="auto", num_threads=None, top_k=5, threshold=0.0, notice=_notice):
        self.spec = spec
        self.task = "classification"
        self.top_k, self.threshold = top_k, threshold
        self.opened = [_open_member(m, device, num_threads, notice) for m in spec.members]
        self.runners = [Runner(o, task="classification", resize=m.resize, mean=m.mean, std=m.std)
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

    def scores(self, image):
        """(combined scores, member scores, member invoke ms) for a decoded PIL image."""
        member_scores, latencies = [], []
        converted = {}
        for runner in self.runners:
            picture = converted.setdefault(runner.mode, images.convert(image, runner.mode))
            result = runner.run_loaded(picture)
            member_scores.append(classify.get_scores(runner.interpreter))
            latencies.append(result["latency_ms"])
        return combine_scores(member_scores, self.weights, self.spec.combine, self.floors), member_scores, latencies

    def run_loaded(self, image, path=""):
        start = time.perf_counter()
        combined, _, latencies = self.scores(image)
        found = classify.get_classes_from_scores(combined, self.top_k, self.threshold)
        classes = [{"id": c.id, "label": labels_mod.label_name(self.labels, c.id), "score": round(c.score, 6)}
                   for c in found]
        total = round((time.perf_counter() - start) * 1000.0, 3)
        return {"image": str(path), "latency_ms": round(sum(latencies), 3),
                "timings_ms": {"members_invoke": latencies, "total": total},
                "classes": classes, "_scores": combined, "_image": image}

    def run_image(self, path):
        return self.run_loaded(images.load_image(path, "RGB"), path)


def open_ensemble(path, device="auto", num_threads=None, top_k=5, threshold=0.0, notice=_notice):
    return Ensemble(read_ensemble(path), device, num_threads, top_k, threshold, notice)


def _document(ensemble):
    spec = ensemble.spec
    return {"model": str(spec.path), "ran": [str(o.path) for o in ensemble.opened],
            "device": ",".join(ensemble.devices),
            "backend": f"{ensemble.opened[0].backend.name} {ensemble.opened[0].backend.version}",
            "task": "classification", "combine": spec.combine, "weights": ensemble.weights}


def run_images(path, image_paths, device="auto", labels_path=None, top_k=5, threshold=None, task=None,
               resize=None, threads=None, save_to=None):
    """`edgekit run` for an ensemble file: the same document as runtime.inference.run_images."""
    if task not in (None, "classification"):
        raise EdgekitError(f"{path}: an ensemble is a classifier; --task {task} does not apply")
    if resize or save_to:
        raise EdgekitError(f"{path}: --resize and --save do not apply to an ensemble (each member keeps its "
                           "own preprocessing)")
    ensemble = open_ensemble(path, device, threads, top_k, 1e-9 if threshold is None else threshold)
    if labels_path:
        ensemble.labels = labels_mod.read_label_file(labels_path)
    results = []
    for image in image_paths:
        result = ensemble.run_image(image)
        results.append({k: v for k, v in result.items() if not k.startswith("_")})
    return dict(_document(ensemble), results=results)


def bench_model(path, device="auto", iterations=100, warmup=10, threads=None, image=None):
    """`edgekit bench` for an ensemble file: invoke = all members' invokes, pipeline = whole images."""
    from edgekit.runtime.benchmark import check_bench_counts, time_bench
    from edgekit.runtime.interpreter import invoke

    check_bench_counts(iterations, warmup)
    ensemble = open_ensemble(path, device, threads)

    def invoke_all():
        for opened in ensemble.opened:
            invoke(opened)

    return dict(_document(ensemble), threads=threads or os.cpu_count(),
                **time_bench(ensemble, invoke_all, iterations, warmup, image))
