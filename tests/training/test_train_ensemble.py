"""`edgekit train --ensemble K` as a library (`edgekit.training.ensemble_training`): K members on one split,
an ensemble file that `edgekit run`, `bench` and `eval` take, its accuracy through the runtime, the
comparison with one larger model, and an interrupted ensemble resumed member by member.

One run is shared by most tests: scikit-learn's digits (8 per class, 96 px), two ImageNet Lite0 members
trained head-only at 96 px, interrupted by Ctrl-C during the second member and then resumed.
"""

import csv
import json
import os
import shutil
from collections import namedtuple

import numpy as np
import pytest
from cli_runner import edgekit, run_json
from picture_sets import digits_folder

from edgekit import train
from edgekit.errors import EdgekitError
from edgekit.models.registry import UnknownModelError
from edgekit.runtime.ensemble import combine_scores, read_ensemble
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner
from edgekit.training import ensemble_training as et
from edgekit.training.resume import ResumeError, TrainingInterrupted

SIZE = 96
# Two test pictures per class (8 * 0.2, rounded), one for validation, five for training.
OPTIONS = {"input_size": SIZE, "test_split": 0.2}
LATENCY_RUNS = 3
# The member whose training the fixture interrupts, and the epoch whose log line does it.
INTERRUPTED_MEMBER, INTERRUPTED_AT = 2, 3

Run = namedtuple("Run", "out result interrupted refusal kept_mtimes log")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return digits_folder(tmp_path_factory.mktemp("digits") / "data", per_class=8, size=SIZE)


def _mtimes(folder):
    return {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def run(digits, tmp_path_factory):
    """Train, Ctrl-C in the second member's third epoch, try again without --resume, then resume."""
    out = str(tmp_path_factory.mktemp("ensemble") / "out")
    seen = []

    def interrupting(line):
        seen.append(line)
        started = any(s.startswith(f"member {INTERRUPTED_MEMBER}/") for s in seen)
        if started and f"epoch {INTERRUPTED_AT}/" in line:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        et.train_ensemble(digits, out, compare_with="none", compile=False, log=interrupting,
                          latency_runs=LATENCY_RUNS, **OPTIONS)
    interrupted = {"listing": sorted(os.listdir(out)), "member-1": sorted(os.listdir(os.path.join(out, "member-1")))}
    with pytest.raises(train.OutputFolderError) as refused:
        et.train_ensemble(digits, out, compare_with="none", compile=False, latency_runs=LATENCY_RUNS, **OPTIONS)
    kept = _mtimes(os.path.join(out, "member-0"))
    resumed_log = []
    result = et.train_ensemble(digits, out, compare_with="none", compile=False, resume=True, log=resumed_log.append,
                               latency_runs=LATENCY_RUNS, **OPTIONS)
    return Run(out, result, interrupted, str(refused.value), kept, resumed_log)


def _test_pictures(out):
    """(paths, labels) of the test split as the ensemble's split file lists them."""
    with open(os.path.join(out, et.SPLITS_FILE), newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["split"] == "test"]
    return [row["path"] for row in rows], [row["label"] for row in rows]


def _member_scores(member_path, pictures):
    runner = Runner(open_model(member_path, device="cpu", notice=lambda message: None))
    return np.stack([np.asarray(runner.run_image(p).scores, dtype=np.float64) for p in pictures])


# --- the interrupted run and its resumption ----------------------------------------------------------------

def test_an_interrupted_ensemble_keeps_its_finished_member(run):
    # Member 0 was written whole; member 1 has only its checkpoint; there is no ensemble file yet.
    assert run.interrupted["listing"] == ["member-0", "member-1", "splits.csv"]
    assert run.interrupted["member-1"] == ["checkpoint"]
    assert run.refusal == (f"{run.out}: holds an interrupted ensemble run (member-0, member-1): add --resume to "
                           "continue it, or --overwrite to start again")


def test_resume_keeps_the_finished_member_and_continues_the_other(run):
    assert _mtimes(os.path.join(run.out, "member-0")) == run.kept_mtimes
    assert any(line.startswith("efficientnet-lite0-seed0: kept") for line in run.log)
    assert any(line.startswith(f"resuming after epoch {INTERRUPTED_AT - 1}") for line in run.log)
    history = run.result.members[1].document["history"]
    assert len(history) > INTERRUPTED_AT and [row["epoch"] for row in history] == list(range(1, len(history) + 1))
    # Nothing of the interrupted run is left over.
    assert not os.path.exists(os.path.join(run.out, "member-1", "checkpoint"))


# --- the ensemble file ----------------------------------------------------------------------------------

def test_the_ensemble_file_names_both_members_and_the_labels(run):
    out, result = run.out, run.result
    assert result.ensemble == os.path.join(out, "ensemble.json")
    spec = read_ensemble(result.ensemble)
    assert [m.path for m in spec.members] == [
        os.path.join(out, "member-0", "efficientnet-lite0-seed0_int8.tflite"),
        os.path.join(out, "member-1", "efficientnet-lite0-seed1_int8.tflite")]
    assert [m.weight for m in spec.members] == [0.5, 0.5] and spec.combine == "mean"
    assert spec.labels == os.path.join(out, "labels.txt")
    with open(spec.labels, encoding="utf-8") as f:
        assert f.read().splitlines() == [str(d) for d in range(10)]
    with open(result.ensemble, encoding="utf-8") as f:
        assert json.load(f)["compile"] == "not co-compiled (--no-compile)"


def test_members_trained_with_different_seeds_differ(run):
    members = run.result.members
    assert [(m.name, m.seed) for m in members] == [("efficientnet-lite0-seed0", 0), ("efficientnet-lite0-seed1", 1)]
    assert [m.document["recipe"]["seed"] for m in members] == [0, 1]
    pictures, _ = _test_pictures(run.out)
    first, second = (_member_scores(m.int8, pictures) for m in members)
    assert first.shape == second.shape == (20, 10)
    assert np.abs(first - second).max() > 0.05


def test_every_member_trained_and_was_tested_on_the_same_split(run):
    pictures, _ = _test_pictures(run.out)
    assert len(pictures) == 20
    for member in run.result.members:
        data = member.document["data"]
        assert (data["train"], data["val"], data["test"]) == (50, 10, 20)
        assert data["source"] == os.path.join(run.out, "splits.csv")
    assert run.result.document["data"]["test"] == 20


def test_run_takes_the_ensemble(run):
    pictures, _ = _test_pictures(run.out)
    combined = combine_scores([_member_scores(m.int8, pictures[:1])[0] for m in run.result.members], [0.5, 0.5])
    document = run_json(run.result.ensemble, pictures[:1], top_k=1)
    [found] = document["results"]
    assert found["classes"][0]["label"] == str(int(np.argmax(combined)))
    assert found["classes"][0]["score"] == pytest.approx(float(np.max(combined)), abs=1e-4)


def test_bench_takes_the_ensemble(run):
    result = edgekit("bench", run.result.ensemble, "--device", "cpu", "-n", 2, "--warmup", 0, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["ran"]) == 2 and document["combine"] == "mean" and document["invoke"]["n"] == 2


# --- scores and the comparison -------------------------------------------------------------------------

def test_ensemble_accuracy_is_the_runtime_s(run, tmp_path):
    pictures, labels = _test_pictures(run.out)
    mean = np.mean([_member_scores(m.int8, pictures) for m in run.result.members], axis=0)
    predicted = [str(int(k)) for k in np.argmax(mean, axis=1)]
    expected = float(np.mean([p == t for p, t in zip(predicted, labels)]))
    test = run.result.document["metrics"]["test"]
    assert test["ensemble"]["accuracy"] == pytest.approx(expected)
    assert test["ensemble"]["count"] == 20
    assert [m["accuracy"] for m in test["members"]] == [
        m.document["metrics"]["test"]["int8"]["accuracy"] for m in run.result.members]
    # `edgekit eval` of the ensemble file on the same test pictures finds the same top-1.
    for path, label in zip(pictures, labels):
        os.makedirs(tmp_path / label, exist_ok=True)
        os.link(path, tmp_path / label / os.path.basename(path))
    result = edgekit("eval", run.result.ensemble, "--data", tmp_path, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["top1"] == pytest.approx(expected, abs=1e-6)


def test_comparison_rows_without_a_comparison_model(run):
    rows = run.result.comparison
    assert [(r.name, r.kind) for r in rows] == [("ensemble of 2 x efficientnet-lite0", "ensemble"),
                                               ("efficientnet-lite0-seed0", "member"),
                                               ("efficientnet-lite0-seed1", "member")]
    ensemble, *members = rows
    assert ensemble.parameter_bytes == sum(m.parameter_bytes for m in members)
    assert members[0].parameter_bytes == members[1].parameter_bytes > 0
    assert all(r.latency_ms > 0 for r in rows)
    assert ensemble.accuracy == run.result.document["metrics"]["test"]["ensemble"]["accuracy"]
    assert run.result.compare is None and run.result.document["metrics"]["test"]["compare"] is None
    with open(os.path.join(run.out, "train_report.html"), encoding="utf-8") as f:
        page = f.read()
    assert "<h2>Ensemble comparison</h2>" in page
    assert all(r.name in page for r in rows)
    with open(os.path.join(run.out, "train_report.json"), encoding="utf-8") as f:
        assert json.load(f) == run.result.document


# --- choosing the comparison model (no training) -------------------------------------------------------

@pytest.mark.parametrize("chosen, input_size, pretrained, picked", [
    (["efficientnet-lite0"] * 2, None, True, "efficientnet-lite2"),   # own sizes: 224 against 260 pixels
    (["efficientnet-lite0"] * 2, 96, True, "efficientnet-lite2"),
    (["efficientnet-lite0"] * 2, 96, False, "efficientnet-lite3"),    # without ImageNet weights, Lite3 counts
    (["efficientnet-lite0"] * 3, None, False, "efficientnet-lite3"),
    (["efficientnet-lite2"] * 2, None, True, None),                   # nothing larger has ImageNet weights
    (["efficientnet-lite0", "efficientnet-lite1"], None, True, "efficientnet-lite2"),
])
def test_auto_picks_the_zoo_model_closest_in_compute(chosen, input_size, pretrained, picked):
    pick = et.pick_comparison(chosen, input_size, pretrained)
    assert pick.name == picked
    assert pick.ensemble_cost == sum(et.compute_cost(name, input_size) for name in chosen)
    assert all(cost > max(et.compute_cost(name, input_size) for name in chosen) for cost in pick.candidates.values())


def test_compute_cost_is_published_parameters_times_pixels():
    assert et.compute_cost("efficientnet-lite0") == 4_694_000 * 224 * 224
    assert et.compute_cost("efficientnet-lite2", 96) == 6_150_000 * 96 * 96
    assert et.compute_cost("efficientnet-lite1", (120, 160)) == 5_470_000 * 120 * 160


def test_the_split_file_round_trips_through_the_trainer(digits, tmp_path):
    from edgekit.training import labelled_data

    splits = labelled_data.make_splits(digits, test_split=0.2, seed=3)
    path = tmp_path / "splits.csv"
    path.write_text(et.splits_csv_text(et.split_rows(splits, set())), encoding="utf-8")
    again = labelled_data.make_splits(str(path), val_split=0.0, test_split=0.0, seed=99)
    assert again.class_names == splits.class_names
    for role in ("train", "val", "test"):
        assert sorted(zip(getattr(again, role).paths, getattr(again, role).labels.tolist())) == sorted(
            zip(getattr(splits, role).paths, getattr(splits, role).labels.tolist()))


# --- bad requests fail at once ------------------------------------------------------------------------

@pytest.mark.parametrize("arguments, error, message", [
    ({"members": 1}, EdgekitError, "--ensemble 1: an ensemble needs at least 2 members"),
    ({"members": True}, EdgekitError, "--ensemble takes a whole number of members, not True"),
    ({"model": ["efficientnet-lite0", "efficientnet-lite1"], "members": 3}, EdgekitError,
     "--ensemble 3 with 2 models (efficientnet-lite0, efficientnet-lite1): give one model per member, or one model "
     "for all"),
    ({"model": "efficientdet-lite0"}, EdgekitError, "efficientdet-lite0 is a detection model; ensembles combine "
     "classifiers (efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, efficientnet-lite3, "
     "efficientnet-lite4)"),
    ({"compare_with": "efficientdet-lite0"}, EdgekitError, "--compare-with efficientdet-lite0: a detection model; "
     "compare with a classifier (efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, efficientnet-lite3, "
     "efficientnet-lite4), auto or none"),
    ({"compare_with": "efficientnet-lite9"}, UnknownModelError, "unknown model 'efficientnet-lite9'"),
])
def test_bad_requests_are_refused_before_any_work(digits, tmp_path, arguments, error, message):
    out = tmp_path / "out"
    with pytest.raises(error) as raised:
        et.train_ensemble(digits, out, **arguments)
    assert str(raised.value).startswith(message)
    assert getattr(raised.value, "exit_code", 1) == 2
    assert not out.exists()


def test_no_test_pictures_is_refused(digits, tmp_path):
    with pytest.raises(et.EnsembleTrainingError) as raised:
        et.train_ensemble(digits, tmp_path / "out", test_split=0.0)
    assert str(raised.value) == (f"{digits}: no test pictures: the ensemble is scored and compared on them: give "
                                 "--test data or a --test-split above 0")


def test_resume_with_nothing_to_resume_is_refused(digits, tmp_path):
    with pytest.raises(ResumeError) as raised:
        et.train_ensemble(digits, tmp_path / "out", resume=True, **OPTIONS)
    assert str(raised.value) == (f"{tmp_path / 'out'}: nothing to resume (no member folders); run without --resume "
                                 "to start")
    assert raised.value.exit_code == 2


def test_overwrite_removes_the_earlier_run_s_members(tmp_path):
    out = tmp_path / "out"
    for folder in ("member-0", "member-7", "compare-efficientnet-lite2", "mine"):
        (out / folder).mkdir(parents=True)
        (out / folder / "train_report.json").write_text("{}")
    (out / "ensemble.json").write_text("{}")
    et.prepare_ensemble_out(out, overwrite=True)
    # The folders an ensemble run names are replaced by this run's; anything else stays.
    assert sorted(os.listdir(out)) == ["ensemble.json", "mine"]


def test_a_finished_ensemble_folder_is_not_overwritten_unasked(run, digits):
    with pytest.raises(train.OutputFolderError) as raised:
        et.train_ensemble(digits, run.out, compare_with="none", **OPTIONS)
    assert str(raised.value) == (f"{run.out}: the output folder is not empty: choose an empty or new --out, or add "
                                 "--overwrite to replace what edgekit writes there")


# --- against one larger model -------------------------------------------------------------------------

@pytest.mark.slow
def test_the_ensemble_against_one_larger_zoo_model(run, digits, tmp_path, record_property):
    """compare_with="auto" on the finished run (resumed, so only the comparison model trains): Lite2."""
    out = tmp_path / "out"
    shutil.copytree(run.out, out)
    result = et.train_ensemble(digits, out, compare_with="auto", compile=False, resume=True,
                               latency_runs=LATENCY_RUNS, **OPTIONS)
    assert result.compare.name == "efficientnet-lite2"
    assert os.path.isfile(out / "compare-efficientnet-lite2" / "efficientnet-lite2_int8.tflite")
    ensemble, compare, *members = result.comparison
    assert (compare.name, compare.kind) == ("efficientnet-lite2", "compare")
    assert 0.0 <= compare.accuracy <= 1.0 and compare.latency_ms > 0
    assert compare.accuracy == result.document["metrics"]["test"]["compare"]["accuracy"]
    # Lite2 holds more parameters than one Lite0, fewer than two.
    assert members[0].parameter_bytes < compare.parameter_bytes < ensemble.parameter_bytes
    # The members were kept from the run: the same accuracies.
    assert [m.accuracy for m in members] == [m.accuracy for m in run.result.comparison[1:]]
    pick = result.document["ensemble"]["compare_pick"]
    assert pick["picked"] == "efficientnet-lite2" and pick["rule"] == et.COMPUTE_RULE
    for row in result.comparison:
        record_property(f"ensemble {row.name}", f"accuracy {row.accuracy:.3f}, {row.latency_ms:.2f} ms, "
                                                f"{row.parameter_bytes} bytes")
