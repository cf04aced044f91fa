"""`edgekit train --ensemble K`: K classifiers trained with different seeds (or K zoo models), written as one
ensemble file that `edgekit run`, `bench` and `eval` take, and compared with one larger model of about the
same compute: test accuracy, CPU latency and parameter bytes against the Edge TPU's on-chip cache.

What `train_ensemble` leaves in `out_dir`:

    ensemble.json             the ensemble file (members relative to it, labels.txt named inside)
    labels.txt
    splits.csv                the one train / val / test split every model here trains and is tested on
    member-<i>/               member i's whole `edgekit train` export (its checkpoint/ while it trains)
    compare-<name>/           the comparison model's export (without compare_with="none")
    train_report.json, .html  the ensemble's report, with the comparison table
    <member>_int8_edgetpu.tflite ...  the members co-compiled together, when edgetpu_compiler is installed

Every model trains on the same split: `make_splits` runs once, with the ensemble's seed, and the split is
written as a path,label,split CSV that each member reads as its `data` (the trainer keeps a CSV's split
column as given), so member i's own seed (seed + i) changes its head's initialisation, the order of its
pictures and its dropout masks, never which pictures it is tested on. An interrupted run resumes member by
member: finished members (their export written, their checkpoint gone) are kept, the member in progress
continues from its own checkpoint.

Why ensembles on the Edge TPU: members compiled together share the on-chip parameter cache (Coral's compiler
page, "Parameter data caching": https://coral.ai/docs/edgetpu/compiler/#parameter-data-caching), so two small
models may run without streaming parameters where one larger model does not; the comparison shows whether
that trade pays on the user's own pictures.

No TensorFlow at import: the trainer is imported inside the functions that train.
"""

import csv
import io
import json
import os
import re
import shutil
import time
from collections import namedtuple

import numpy as np

from edgekit import models, train
from edgekit.compiler.ensemble_build import parameter_report, write_ensemble
from edgekit.compiler.rules import ON_CHIP_CACHE_BYTES
from edgekit.errors import EdgekitError
from edgekit.files import write_atomic
from edgekit.runtime.benchmark import bench_model
from edgekit.runtime.ensemble import open_ensemble
from edgekit.runtime.tasks import CLASSIFICATION
from edgekit.tflite.model import read_model
from edgekit.training import labelled_data, train_report
from edgekit.training.resume import CheckpointFolder, ResumeError

ENSEMBLE_FILE = "ensemble.json"
LABELS_FILE = "labels.txt"
SPLITS_FILE = "splits.csv"
MEMBER_FOLDER = "member-{}"
COMPARE_FOLDER = "compare-{}"
DEFAULT_MEMBERS = 2
# compare_with's two words; anything else names a zoo classifier.
AUTO, NONE = "auto", "none"
# Timed invokes (after untimed warm-up ones) per model for the CPU latency; the median is reported.
LATENCY_RUNS, LATENCY_WARMUP = 50, 5
# What the comparison's compute figure is: see `compute_cost`.
COMPUTE_RULE = "published parameters x input pixels"
_SPLIT_HEADER = ("path", "label", "split")
_OWN_FOLDER = re.compile(r"^(member-\d+|compare-.+)$")

EnsembleTraining = namedtuple("EnsembleTraining", "ensemble members compare comparison document")
"""What `train_ensemble` did: the ensemble file's path, a `TrainedModel` per member in order, the comparison
model's `TrainedModel` (None without one), the `ComparisonRow`s (ensemble, comparison model, members), and
the document (`edgekit train --ensemble K --json`; also train_report.json)."""

TrainedModel = namedtuple("TrainedModel", "name model seed folder int8 edgetpu accuracy document")
"""One exported model of the run: its name (the file stem of its exports), the zoo model it is, its seed, its
folder, its int8 .tflite, its compiled twin (None when not compiled), its int8 test accuracy through the
runtime, and its own training report document."""

ComparisonRow = namedtuple("ComparisonRow", "name kind accuracy latency_ms parameter_bytes fits_cache")
"""One row of the comparison: kind is "ensemble", "compare" or "member"; test accuracy of the int8 model(s)
through the runtime; the median CPU invoke latency in ms (the ensemble's: all members one after the other);
parameter bytes of the ops the Edge TPU runs (of the compiled models when compiled, else predicted) and
whether they fit the on-chip cache."""

ComparisonPick = namedtuple("ComparisonPick", "name ensemble_cost model_cost candidates")
"""compare_with="auto"'s choice: the zoo classifier picked (None when no zoo model is larger than a member),
the ensemble's and its compute figures (`compute_cost`), and {name: cost} of every candidate."""


class EnsembleTrainingError(EdgekitError):
    exit_code = 2


def _say(log, text):
    if log is not None:
        log(text)


# --- what to train ------------------------------------------------------------------------------------

def member_models(model, members=None):
    """The zoo model of each member: `members` copies of `model`, or the list `model` names (K model sizes)."""
    if isinstance(model, (list, tuple)):
        chosen = [os.fspath(m) for m in model]
        if members is not None and members != len(chosen):
            raise EnsembleTrainingError(f"--ensemble {members} with {len(chosen)} models ({', '.join(chosen)}): "
                                        "give one model per member, or one model for all")
    else:
        count = DEFAULT_MEMBERS if members is None else members
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise EnsembleTrainingError(f"--ensemble takes a whole number of members, not {count!r}")
        chosen = [os.fspath(model)] * int(count)
    if len(chosen) < 2:
        raise EnsembleTrainingError(f"--ensemble {len(chosen)}: an ensemble needs at least 2 members")
    for name in chosen:
        entry = models.model_entry(name)        # an unknown name fails here, with the zoo's suggestions
        if entry.task != CLASSIFICATION:
            raise EnsembleTrainingError(f"{name} is a {entry.task} model; ensembles combine classifiers "
                                        f"({', '.join(models.list_models(CLASSIFICATION))})")
    return chosen


def member_names(chosen, seed):
    """Member i's name: its model and its seed ("efficientnet-lite0-seed1"). Distinct names give distinct file
    stems, which co-compiling needs: edgetpu_compiler names each output after its input file."""
    return [f"{name}-seed{seed + i}" for i, name in enumerate(chosen)]


def _pixels(name, input_size):
    if input_size is None:
        return int(np.prod(models.model_entry(name).input_size))
    if isinstance(input_size, (int, np.integer)):
        return int(input_size) ** 2
    return int(np.prod(input_size))


def compute_cost(name, input_size=None):
    """A zoo classifier's compute figure: its published parameter count times its input pixels (`input_size`
    when training changes it, else the model's own).

    Within a family this tracks FLOPS: the EfficientNet paper (Tan and Le, arXiv:1905.11946, section 3.3)
    notes that a ConvNet's FLOPS grow with d * w^2 * r^2 while its parameters grow with d * w^2 alone, so
    parameters times pixels follows d * w^2 * r^2. Parameters alone would miss that Lite2 also runs at a
    larger resolution than Lite0. The published counts include the 1000-class ImageNet head, the same dense
    layer in every EfficientNet-Lite, which costs little compute; it is left in, being published."""
    published = models.model_entry(name).published_params
    return None if published is None else int(published) * _pixels(name, input_size)


def pick_comparison(chosen, input_size=None, pretrained=True):
    """compare_with="auto": the zoo classifier whose compute (`compute_cost`) is closest to the members'
    summed compute, among those larger than the largest member (a single larger model, as the issue asks:
    "two Lite0 against one Lite2") and, when the members start from ImageNet weights, those that have them
    (a randomly initialised model would lose for want of pretraining, not of size). `ComparisonPick`."""
    costs = [compute_cost(name, input_size) for name in chosen]
    if any(cost is None for cost in costs):
        return ComparisonPick(None, None, None, {})
    target, largest = sum(costs), max(costs)
    candidates = {}
    for name in models.list_models(CLASSIFICATION):
        cost = compute_cost(name, input_size)
        if cost is None or cost <= largest:
            continue
        if pretrained and "imagenet" not in models.model_entry(name).weights:
            continue
        candidates[name] = cost
    picked = min(candidates, key=lambda n: (abs(candidates[n] - target), n)) if candidates else None
    return ComparisonPick(picked, target, candidates.get(picked), candidates)


def _starts_pretrained(options):
    """Whether the members start from ImageNet weights (the trainer's default where the zoo has them)."""
    return options.get("weights", "imagenet") is not None


def comparison_model(compare_with, chosen, options):
    """(zoo name or None, `ComparisonPick` or None) for compare_with: "auto", "none" (or None), or a zoo name."""
    if compare_with is None or str(compare_with).lower() == NONE:
        return None, None
    if str(compare_with).lower() == AUTO:
        pick = pick_comparison(chosen, options.get("input_size"), _starts_pretrained(options))
        return pick.name, pick
    entry = models.model_entry(compare_with)
    if entry.task != CLASSIFICATION:
        raise EnsembleTrainingError(f"--compare-with {compare_with}: a {entry.task} model; compare with a "
                                    f"classifier ({', '.join(models.list_models(CLASSIFICATION))}), auto or none")
    return entry.name, None


# --- the shared split ---------------------------------------------------------------------------------

def split_rows(splits, given):
    """(path, label, split) rows of every picture of `splits`, leaving out the roles in `given` (val / test
    data of their own, which every member is handed as is)."""
    rows = []
    for role in labelled_data.SPLIT_NAMES:
        subset = getattr(splits, role)
        if subset is None or role in given:
            continue
        rows += [(os.path.abspath(path), splits.class_names[int(label)], role)
                 for path, label in zip(subset.paths, subset.labels)]
    return rows


def splits_csv_text(rows):
    """The split as CSV text, with the header line `labelled_data` recognises."""
    for path, label, _ in rows:
        # The CSV reader strips cells: a name with spaces at either end would come back as another.
        for value, what in ((label, "class name"), (path, "picture path")):
            if value != value.strip():
                raise EnsembleTrainingError(f"{value!r}: a {what} with spaces at its start or end cannot be "
                                            "written to the ensemble's split file: rename it")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_SPLIT_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


# --- the output folder --------------------------------------------------------------------------------

def _finished(folder):
    """Whether `folder` holds a whole export: its report written and its checkpoint gone."""
    return (os.path.isfile(os.path.join(folder, train_report.JSON_NAME))
            and not os.path.isdir(os.path.join(folder, train.CHECKPOINT_FOLDER)))


def _own_folders(out_dir):
    """The member and comparison folders an earlier run left in `out_dir`."""
    if not os.path.isdir(out_dir):
        return []
    return sorted(name for name in os.listdir(out_dir)
                  if _OWN_FOLDER.match(name) and os.path.isdir(os.path.join(out_dir, name)))


def prepare_ensemble_out(out_dir, resume=False, overwrite=False):
    """`train.prepare_out`'s rules for the ensemble's folder, checked before any slow work: an interrupted
    ensemble (a member folder but no ensemble file yet) asks for --resume; with --overwrite, the member and
    comparison folders of an earlier run go, so none of them is mistaken for this run's."""
    out_dir = os.fspath(out_dir)
    own = _own_folders(out_dir)
    interrupted = own and not os.path.isfile(os.path.join(out_dir, ENSEMBLE_FILE))
    if resume and not own:
        raise ResumeError(f"{out_dir}: nothing to resume (no member folders); run without --resume to start")
    if interrupted and not (resume or overwrite):
        raise train.OutputFolderError(f"{out_dir}: holds an interrupted ensemble run ({', '.join(own)}): add "
                                      "--resume to continue it, or --overwrite to start again")
    train.prepare_out(out_dir, resume, overwrite)
    if overwrite and not resume:
        for name in own:
            shutil.rmtree(os.path.join(out_dir, name))
    return out_dir


def _same_split_or_refuse(path, text, resume):
    """On --resume the split must be the interrupted run's: else finished members were trained on other
    pictures than the ones still to come."""
    if resume and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                raise EnsembleTrainingError(f"{path}: the interrupted run split other pictures (other --data, "
                                            "splits or --seed): resume with the same ones, or start again with "
                                            "--overwrite")
    return write_atomic(path, text)


# --- one model ----------------------------------------------------------------------------------------

def _int8_accuracy(document):
    return (((document.get("metrics") or {}).get("test") or {}).get("int8") or {}).get("accuracy")


def _from_document(document, folder, name, model, seed):
    """A `TrainedModel` from an export's document, its files found in `folder` (the document's paths are as
    the run that wrote them named them, perhaps relative to another working folder)."""
    files = document.get("files") or {}

    def here(key):
        return os.path.join(folder, os.path.basename(files[key])) if files.get(key) else None

    return TrainedModel(name, model, seed, folder, here("int8"), here("edgetpu"), _int8_accuracy(document), document)


def _finished_model(folder, name, model, seed):
    """A finished export kept from the interrupted run, checked to be the model this run would train."""
    path = os.path.join(folder, train_report.JSON_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, ValueError) as error:
        raise EnsembleTrainingError(f"{path}: unreadable ({error}): start again with --overwrite") from None
    recorded = (document.get("model"), (document.get("recipe") or {}).get("seed"))
    if recorded != (name, seed):
        raise EnsembleTrainingError(f"{folder}: holds {recorded[0]} with seed {recorded[1]}, not {name} with seed "
                                    f"{seed}: resume with the same options, or start again with --overwrite")
    found = _from_document(document, folder, name, model, seed)
    if not found.int8 or not os.path.isfile(found.int8):
        raise EnsembleTrainingError(f"{folder}: its int8 model is missing: start again with --overwrite")
    return found


def _fresh_keras_state():
    """Clear Keras' global state (the models built so far, layer-name counters) before a model trains: each
    model of the run then trains as it would alone in a new process (as a resumed member does), and the
    earlier models' graphs do not pile up in memory."""
    import keras

    keras.backend.clear_session()


def train_model(data, folder, model, name, seed, options, resume, compile, log):
    """Train one model on `data` (the split CSV) and export it into `folder` (checkpointing into
    `folder`/checkpoint, dropped once all is written), or keep its finished export when resuming."""
    checkpoint_dir = os.path.join(folder, train.CHECKPOINT_FOLDER)
    if resume and _finished(folder):
        _say(log, f"{name}: kept, already trained in {folder}")
        return _finished_model(folder, name, model, seed)
    _fresh_keras_state()
    resuming = resume and CheckpointFolder(checkpoint_dir).exists()
    trained = train.image_classifier(data, model=model, seed=seed, checkpoint_dir=checkpoint_dir, resume=resuming,
                                     log=log, **options)
    exported = trained.export(folder, compile=compile, log=log, name=name)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return _from_document(train_report.plain(exported.document), folder, name, model, seed)


# --- measuring ----------------------------------------------------------------------------------------

def ensemble_scores(ensemble_path, subset, num_classes):
    """`Scores` of an ensemble file on `subset`, each picture run through `runtime.ensemble` as `edgekit run`
    runs it (on the CPU, like the members' own int8 scores)."""
    from edgekit.training.trained_classifier import runtime_scores

    ensemble = open_ensemble(ensemble_path, device="cpu", notice=lambda message: None)
    return runtime_scores((ensemble.run_image(path) for path in subset.paths), subset, num_classes, ensemble_path,
                          "ensemble test pictures")


def cpu_latency_ms(path, runs=LATENCY_RUNS, warmup=LATENCY_WARMUP):
    """The median invoke time in ms of a model or ensemble file on the CPU (`edgekit bench`'s invoke figure:
    the network alone, without decoding and resizing a picture)."""
    return bench_model(path, device="cpu", iterations=runs, warmup=warmup).invoke.p50_ms


def parameter_bytes(path):
    """A model's parameter bytes of the ops the Edge TPU runs (`parameter_report`)."""
    return parameter_report([read_model(path)]).total_bytes


def comparison_rows(ensemble_row, compare_row, member_rows):
    """The rows in the order the report shows them: the ensemble, the model it is compared with, each member."""
    return [ensemble_row] + ([compare_row] if compare_row is not None else []) + list(member_rows)


def _row(name, kind, accuracy, latency, size):
    return ComparisonRow(name, kind, accuracy, latency, int(size), int(size) <= ON_CHIP_CACHE_BYTES)


# --- the whole run ------------------------------------------------------------------------------------

def _compare_options(options):
    """The members' options for the comparison model, but for weights from the user's own .keras file: the
    trainer would take that file's network instead of the zoo model, so the comparison starts from the
    zoo's default weights."""
    weights = options.get("weights")
    if isinstance(weights, (str, os.PathLike)) and os.path.exists(os.fspath(weights)):
        return {k: v for k, v in options.items() if k != "weights"}
    return options


def _split_options(options):
    """(options for `make_splits`, options for each model's training)."""
    for key in ("seed", "checkpoint_dir", "resume", "log"):
        if key in options:
            raise EnsembleTrainingError(f"train_ensemble: {key} is the ensemble's own argument, not a training option")
    split_keys = ("val", "val_split", "test", "test_split")
    split = {k: options[k] for k in split_keys if k in options}
    training = {k: v for k, v in options.items() if k not in split_keys}
    return split, training


def train_ensemble(data, out_dir, model=train.DEFAULT_MODEL, members=None, compare_with=AUTO, seed=0, compile=True,
                   resume=False, overwrite=False, log=None, latency_runs=LATENCY_RUNS, **options):
    """Train `members` classifiers (seeds seed, seed + 1, ...) on one split of `data`, write them as an
    ensemble file, score it on the test pictures through the runtime, and compare it with one larger model.

    model: a zoo classifier for every member, or a list of them (one per member: K model sizes). members:
    how many (default 2; with a list, its length). compare_with: "auto" (`pick_comparison`), "none", or a zoo
    classifier's name; it trains with the same options and split into `out_dir`/compare-<name>/.
    compile: co-compile the members (and compile the comparison model) when edgetpu_compiler is installed.
    resume / overwrite: as `edgekit train`'s, member by member. latency_runs: timed CPU invokes per model.
    options: `edgekit.train.image_classifier`'s (epochs, input_size, fine_tune, val, test_split, ...).
    Returns an `EnsembleTraining`.
    """
    begun = time.perf_counter()
    out_dir = os.fspath(out_dir)
    zoo_models = member_models(model, members)
    split_options, training_options = _split_options(options)
    compare, pick = comparison_model(compare_with, zoo_models, training_options)
    prepare_ensemble_out(out_dir, resume, overwrite)
    splits, splits_path = shared_split(data, out_dir, seed, split_options, resume)
    # Every picture's role is in the split file (or in val / test data of their own): none is left to split.
    model_options = dict(training_options, val=split_options.get("val"), test=split_options.get("test"),
                         val_split=0.0, test_split=0.0)
    timings = {"split": round(time.perf_counter() - begun, 3)}

    trained = []
    for i, (name, zoo_name) in enumerate(zip(member_names(zoo_models, seed), zoo_models)):
        started = time.perf_counter()
        _say(log, f"member {i + 1}/{len(zoo_models)}: {zoo_name}, seed {seed + i}")
        # Members are not compiled one by one: the ensemble co-compiles them below, to share the cache.
        trained.append(train_model(splits_path, os.path.join(out_dir, MEMBER_FOLDER.format(i)), zoo_name, name,
                                   seed + i, model_options, resume, False, log))
        timings[f"member-{i}"] = round(time.perf_counter() - started, 3)

    labels_path = write_atomic(os.path.join(out_dir, LABELS_FILE), "".join(f"{n}\n" for n in splits.class_names))
    ensemble_path = os.path.join(out_dir, ENSEMBLE_FILE)
    build = write_ensemble([m.int8 for m in trained], ensemble_path, labels=labels_path, compile_members=compile)
    started = time.perf_counter()
    scores = ensemble_scores(ensemble_path, splits.test, len(splits.class_names))
    timings["evaluate_ensemble"] = round(time.perf_counter() - started, 3)

    compared = None
    if compare is not None:
        started = time.perf_counter()
        _say(log, f"comparison model: {compare}"
                  + (f" (auto: compute closest to the ensemble's, by {COMPUTE_RULE})" if pick else ""))
        compared = train_model(splits_path, os.path.join(out_dir, COMPARE_FOLDER.format(compare)), compare, compare,
                               seed, _compare_options(model_options), resume, compile, log)
        timings["compare"] = round(time.perf_counter() - started, 3)
    elif pick is not None:
        _say(log, "no comparison model: no zoo classifier with the members' weights is larger than a member")

    started = time.perf_counter()
    _say(log, f"timing each model on the CPU ({latency_runs} invokes)")
    rows = measured_rows(build, scores, trained, compared, latency_runs)
    timings["latency"] = round(time.perf_counter() - started, 3)
    timings["total"] = round(time.perf_counter() - begun, 3)

    document = ensemble_document(data, out_dir, splits, scores, trained, compared, build, rows, pick, seed, timings)
    train_report.write(out_dir, document)
    return EnsembleTraining(ensemble_path, trained, compared, rows, train_report.plain(document))


def shared_split(data, out_dir, seed, split_options, resume):
    """(`Splits`, path of the split file every model reads): `data` split once, with the ensemble's seed."""
    splits = labelled_data.make_splits(data, seed=seed, **split_options)
    if splits.test is None:
        raise EnsembleTrainingError(f"{data}: no test pictures: the ensemble is scored and compared on them: give "
                                    "--test data or a --test-split above 0")
    given = {role for role in ("val", "test") if split_options.get(role) is not None}
    text = splits_csv_text(split_rows(splits, given))
    return splits, _same_split_or_refuse(os.path.join(out_dir, SPLITS_FILE), text, resume)


def measured_rows(build, scores, trained, compared, latency_runs=LATENCY_RUNS):
    """The `ComparisonRow`s: accuracies as scored, CPU latencies timed now, parameter bytes from the ensemble
    build (co-compiled members when compiled) and from the comparison model's file."""
    ensemble_row = _row(ensemble_title([m.model for m in trained]), "ensemble", scores.accuracy,
                        cpu_latency_ms(build.path, latency_runs), build.parameters.total_bytes)
    compare_row = None
    if compared is not None:
        # Parameter bytes of compiled models when both sides were compiled, else both predicted from int8.
        co_compiled = all(member.cpu_path for member in build.members)
        sized = compared.edgetpu if co_compiled and compared.edgetpu else compared.int8
        compare_row = _row(compared.name, "compare", compared.accuracy, cpu_latency_ms(compared.int8, latency_runs),
                           parameter_bytes(sized))
    member_rows = [_row(m.name, "member", m.accuracy, cpu_latency_ms(m.int8, latency_runs), sizes.parameter_bytes)
                   for m, sizes in zip(trained, build.parameters.members)]
    return comparison_rows(ensemble_row, compare_row, member_rows)


def ensemble_title(chosen):
    """"ensemble of 2 x efficientnet-lite0", or "ensemble of efficientnet-lite0 + efficientnet-lite1"."""
    return f"ensemble of {len(chosen)} x {chosen[0]}" if len(set(chosen)) == 1 else f"ensemble of {' + '.join(chosen)}"


def _model_entry(model):
    return {"name": model.name, "model": model.model, "seed": model.seed, "folder": model.folder,
            "int8": model.int8, "edgetpu": model.edgetpu, "accuracy": model.accuracy}


def ensemble_document(data, out_dir, splits, scores, trained, compared, build, rows, pick, seed, timings):
    """The run's document (its train_report.json, and what `edgekit train --ensemble K --json` prints)."""
    from edgekit.training.trained_classifier import misclassified, scores_document

    labels = list(splits.class_names)
    wrong = misclassified(splits.test, scores, labels, "ensemble")
    warnings = list(splits.warnings) + [f"{m.name}: {w}" for m in trained + ([compared] if compared else [])
                                        for w in (m.document.get("warnings") or ())]
    chosen = [m.model for m in trained]
    return {
        "model": ensemble_title(chosen),
        "task": CLASSIFICATION, "labels": labels,
        "files": {"ensemble": build.path, "members": [m.int8 for m in trained],
                  "member_folders": [m.folder for m in trained], "labels": os.path.join(out_dir, LABELS_FILE),
                  "splits": os.path.join(out_dir, SPLITS_FILE),
                  "compare": compared.int8 if compared else None,
                  "report": os.path.join(out_dir, train_report.HTML_NAME),
                  "report_json": os.path.join(out_dir, train_report.JSON_NAME)},
        "metrics": {"test": {"ensemble": scores_document(scores, labels),
                             "members": [{"name": m.name, "accuracy": m.accuracy} for m in trained],
                             "compare": {"name": compared.name, "accuracy": compared.accuracy} if compared
                             else None}},
        "ensemble": {"members": [m.name for m in trained], "seeds": [m.seed for m in trained],
                     "combine": build.combine, "compile": build.compile_note,
                     "parameters": {"members": [p.parameter_bytes for p in build.parameters.members],
                                    "total_bytes": build.parameters.total_bytes,
                                    "cache_bytes": build.parameters.cache_bytes,
                                    "fits_cache": build.parameters.fits_cache},
                     "trained": [_model_entry(m) for m in trained],
                     "compare": _model_entry(compared) if compared else None,
                     "compare_pick": None if pick is None else
                     {"rule": COMPUTE_RULE, "picked": pick.name, "ensemble_cost": pick.ensemble_cost,
                      "model_cost": pick.model_cost, "candidates": pick.candidates},
                     "comparison": [dict(row._asdict()) for row in rows]},
        "recipe": {"seed": seed, **{k: v for k, v in (trained[0].document.get("recipe") or {}).items()
                                    if k not in ("seed", "class_weights")}},
        "data": train.data_summary(splits, data),
        "misclassified": wrong, "misclassified_count": int(np.sum(scores.predicted != splits.test.labels)),
        "warnings": list(dict.fromkeys(warnings)), "timings": timings,
    }
