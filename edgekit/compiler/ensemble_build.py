"""Writing an ensemble file (`edgekit ensemble`): check the members, co-compile them, and say whether their
parameters fit the Edge TPU's cache together.

This is the build side of ensembles; the file format and running one live in `edgekit.runtime.ensemble`,
which a board that only runs models needs without the compiler. Co-compiling passes all members to one
edgetpu_compiler call, so that they share the on-chip parameter cache instead of evicting each other
(Coral's compiler page, "Parameter data caching": https://coral.ai/docs/edgetpu/compiler/#parameter-data-caching).
"""

import json
import os
from collections import namedtuple

import numpy as np

from edgekit.compiler import check, compiler, rules
from edgekit.compiler.compiled_model import inspect_model
from edgekit.errors import EdgekitError
from edgekit.files import write_atomic
from edgekit.runtime.ensemble import COMBINES, FORMAT, VERSION, check_weights
from edgekit.runtime.tasks import CLASSIFICATION, detect_task, recorded_task
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

EnsembleBuild = namedtuple("EnsembleBuild", "path combine members labels parameters compile_note")
"""What `write_ensemble` wrote: the file's path, how it combines, a `WrittenMember` per member in order,
the label file relative to the ensemble file (None without one), the `ParameterReport` and the compile note
(whether and how the members were co-compiled; None when some members came compiled and some did not)."""

WrittenMember = namedtuple("WrittenMember", "path weight cpu_path")
"""A member as the file names it, relative to the file: the model it runs (the compiled one when
co-compiled), its weight (normalised, to six places) and its CPU model when that is another file (else
None)."""

ParameterReport = namedtuple("ParameterReport", "members total_bytes cache_bytes fits_cache")
"""The members' parameter bytes (`MemberParameters`), their total, the Edge TPU's on-chip cache and whether
the total fits it."""

MemberParameters = namedtuple("MemberParameters", "model parameter_bytes")
"""A member model's parameter bytes of the ops the Edge TPU would run."""


def _class_count(model):
    outputs = model.output_tensors()
    return int(np.prod(outputs[0].shape)) if outputs else 0


def _member_facts(path):
    """(model, class count, embedded labels) of a would-be member, refusing what cannot be one."""
    if not os.path.isfile(path):
        raise EdgekitError(f"{path}: no such model file (a missing ensemble member)")
    model = read_model(path)
    recorded = read_edgekit_metadata(model)
    task = recorded_task(recorded, path) or detect_task(model)
    if task != CLASSIFICATION:
        raise EdgekitError(f"{path}: a {task} model; ensembles combine classifiers' scores only")
    return model, _class_count(model), recorded.get("labels") or None


def _first_difference(named, other_named):
    """The first class index where two label lists differ (the shorter one's length when one extends the other)."""
    return next((i for i, (a, b) in enumerate(zip(named, other_named)) if a != b), min(len(named), len(other_named)))


def check_members(paths):
    """Refuse members that do not score the same classes, saying which and why; their read models."""
    facts = [_member_facts(p) for p in paths]
    first, (_, count, named) = paths[0], facts[0]
    for path, (_, other_count, other_named) in zip(paths[1:], facts[1:]):
        if other_count != count:
            raise EdgekitError(f"different label sets: {first} scores {count} classes and {path} "
                               f"{other_count}; ensemble members must score the same classes in the same order")
        if named and other_named and list(named) != list(other_named):
            where = _first_difference(named, other_named)
            shown = [(lst[where] if where < len(lst) else None) for lst in (named, other_named)]
            raise EdgekitError(f"different label sets: {first} and {path} embed different labels (class "
                               f"{where}: {shown[0]!r} vs {shown[1]!r}); ensemble members must score the "
                               "same classes in the same order")
    return [f[0] for f in facts]


def parameter_report(models):
    """Members' summed parameter bytes of ops the Edge TPU would run, against the on-chip cache."""
    members = []
    for model in models:
        if model.is_edgetpu_compiled:
            size = sum(c.cached_bytes + c.streamed_bytes for c in inspect_model(model).custom_ops)
        else:
            size = check.predict(model).parameter_bytes
        members.append(MemberParameters(model.path, int(size)))
    total = sum(m.parameter_bytes for m in members)
    return ParameterReport(members, total, rules.ON_CHIP_CACHE_BYTES, total <= rules.ON_CHIP_CACHE_BYTES)


def co_compile(paths, out_dir):
    """Compile the members together so they share the Edge TPU cache, with the compile command's code.

    Returns ({cpu path: compiled path}, note). Without the compiler, or when it fails, the members stay
    CPU models and the note says why (an ensemble works on the CPU either way).
    """
    try:
        result = compiler.compile_models(paths, compiler.DEFAULT_OPTIONS._replace(out_dir=out_dir))
    except EdgekitError as e:
        return {}, f"not co-compiled: {e}"
    compiled = {os.path.splitext(os.path.basename(p))[0]: p for p in result.outputs}
    found = {p: compiled.get(os.path.splitext(os.path.basename(p))[0] + "_edgetpu") for p in paths}
    return {p: c for p, c in found.items() if c}, "co-compiled: the members share the on-chip cache"


def _relative(path, folder):
    return os.path.relpath(os.path.abspath(path), folder) if path else None


def _check_request(models, weights, combine, labels):
    """Refuse what cannot make an ensemble before reading any model; the weights normalised."""
    if len(models) < 2:
        raise EdgekitError("an ensemble needs at least two models")
    if combine not in COMBINES:
        raise EdgekitError(f"unknown combine {combine!r}: use {' or '.join(COMBINES)}")
    weights = check_weights(weights if weights is not None else [1.0] * len(models))
    if len(weights) != len(models):
        raise EdgekitError(f"--weights: {len(weights)} weights for {len(models)} models; give one per model")
    if labels and not os.path.isfile(labels):
        raise EdgekitError(f"{labels}: no such label file")
    return weights


def write_ensemble(models, out, weights=None, combine="mean", labels=None, compile_members=True):
    """Check the members, co-compile them when the compiler is present, and write the ensemble file.

    Returns an `EnsembleBuild`: what the file says, the parameter report and the compile note.
    """
    models = [os.fspath(m) for m in models]
    weights = _check_request(models, weights, combine, labels)
    opened = check_members(models)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    compiled, note = {}, "members are already compiled" if all(m.is_edgetpu_compiled for m in opened) else None
    if compile_members and not any(m.is_edgetpu_compiled for m in opened):
        compiled, note = co_compile(models, folder)
    elif not compile_members:
        note = "not co-compiled (--no-compile)"
    members = [WrittenMember(_relative(compiled.get(path, path), folder), round(weight, 6),
                             _relative(path, folder) if path in compiled else None)
               for path, weight in zip(models, weights)]
    build = EnsembleBuild(os.fspath(out), combine, members, _relative(labels, folder),
                          parameter_report([read_model(compiled.get(p, p)) for p in models]), note)
    write_atomic(out, json.dumps(ensemble_file_document(build), indent=2) + "\n")
    return build


def ensemble_file_document(build):
    """What the ensemble file of an `EnsembleBuild` holds, as JSON: the format `runtime.ensemble` reads, with
    the parameter report and the compile note beside it for people to read."""
    members = []
    for member in build.members:
        entry = {"path": member.path, "weight": member.weight}
        if member.cpu_path is not None:
            entry["cpu_path"] = member.cpu_path
        members.append(entry)
    document = {"format": FORMAT, "version": VERSION, "task": CLASSIFICATION, "combine": build.combine,
                "members": members}
    if build.labels is not None:
        document["labels"] = build.labels
    parameters = build.parameters
    document["parameters"] = {"members": [m._asdict() for m in parameters.members],
                              "total_bytes": parameters.total_bytes, "cache_bytes": parameters.cache_bytes,
                              "fits_cache": parameters.fits_cache}
    document["compile"] = build.compile_note
    return document
