"""`edgekit train` end to end: a folder of real pictures in, a model that `edgekit run` and `edgekit camera`
take as is out; the output folder's rules; a seeded run twice; Ctrl-C / SIGTERM and `--resume`."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from browser import picture_widths
from cli_runner import edgekit
from picture_sets import digits_folder, faces_folder, photo_folder

# Small and quick: ImageNet Lite0 at 64 px on scikit-image's LFW subset (100 faces, 100 non-faces, 25 px).
SIZE = 64
FLAGS = ("--input-size", SIZE, "--no-compile")
EDGEKIT = [sys.executable, "-m", "edgekit"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return faces_folder(tmp_path_factory.mktemp("faces") / "data", size=64)


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory):
    """One head-only run through the CLI: (out folder, its --json document)."""
    out = tmp_path_factory.mktemp("trained") / "out"
    result = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", out, *FLAGS, "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_train_writes_every_promised_file(trained):
    out, document = trained
    assert set(document) >= {"model", "task", "labels", "files", "metrics"}
    assert document["model"] == "efficientnet-lite0" and document["task"] == "classification"
    assert document["labels"] == ["face", "not_face"]
    assert (out / "labels.txt").read_text().splitlines() == ["face", "not_face"]
    files = document["files"]
    assert files["keras"] == str(out / "efficientnet-lite0.keras")
    assert files["int8"] == str(out / "efficientnet-lite0_int8.tflite")
    assert files["edgetpu"] is None            # --no-compile, and no compiler here either way
    for key in ("keras", "int8", "labels", "report"):
        assert os.path.isfile(files[key]), key
    assert os.path.isfile(out / "train_report.json")
    # Nothing half-written or left over: no temporaries, and the checkpoint goes once all is written.
    assert not [name for name in os.listdir(out) if name.startswith(".") or name == "checkpoint"]
    # 10% of each class's 100 pictures for validation and for test.
    data = json.loads((out / "train_report.json").read_text())["data"]
    assert (data["train"], data["val"], data["test"]) == (160, 20, 20)


def test_float_and_int8_accuracy_on_held_out_photos(trained):
    _, document = trained
    test = document["metrics"]["test"]
    assert test["float"]["count"] == test["int8"]["count"] == 20
    assert test["float"]["accuracy"] >= 0.85 and test["int8"]["accuracy"] >= 0.85
    assert round(abs(test["float"]["accuracy"] - test["int8"]["accuracy"]) * 20) <= 1     # one of 20 pictures
    assert document["metrics"]["val"]["accuracy"] >= 0.85
    assert document["edgetpu"]["tpu"] == document["edgetpu"]["ops"]              # all of it maps


def test_the_report_shows_its_pictures_in_a_browser(trained, tmp_path):
    """train_report.html opens in Chromium with every picture shown: curves, confusion matrices, mistakes."""
    out, document = trained
    widths = picture_widths(document["files"]["report"], tmp_path, "the training report's browser test")
    assert len(widths) >= 2 and min(widths) > 0      # the curves and a confusion matrix at least


def test_run_reads_labels_from_the_trained_model(trained, photos):
    out, _ = trained
    pictures = [os.path.join(photos, name, sorted(os.listdir(os.path.join(photos, name)))[0])
                for name in ("face", "not_face")]
    result = edgekit("run", out / "efficientnet-lite0_int8.tflite", *pictures, "--json", "--top-k", 1)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["results"]
    assert [image["classes"][0]["label"] for image in found] == ["face", "not_face"]


def test_camera_takes_the_trained_model(trained, photos, tmp_path):
    out, _ = trained
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, name in enumerate(("not_face", "face")):
        first = sorted(os.listdir(os.path.join(photos, name)))[0]
        os.link(os.path.join(photos, name, first), frames / f"{k}{os.path.splitext(first)[1]}")
    result = edgekit("camera", out / "efficientnet-lite0_int8.tflite", "--source", frames, "--device", "cpu",
                     "--max-frames", 2, "--json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["classes"][0]["label"] for line in lines] == ["not_face", "face"]


def test_the_keras_model_converts_with_edgekit_convert(trained, photos, tmp_path):
    out, _ = trained
    result = edgekit("convert", out / "efficientnet-lite0.keras", "--calib", photos, "--num-samples", 20,
                     "--out", tmp_path, "--no-compile", "--labels", out / "labels.txt", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["check"]["tpu"] > 0


def test_a_non_empty_out_folder_is_refused(trained, photos):
    out, _ = trained
    result = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", out, *FLAGS)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"edgekit: error: {out}: the output folder is not empty: choose an empty or "
                                     "new --out, or add --overwrite to replace what edgekit writes there")


def test_out_that_is_a_file_is_refused(photos, tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    result = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", target, *FLAGS)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"edgekit: error: {target}: exists and is not a folder; choose another --out"
    assert target.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_out_is_refused(photos, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", locked / "out", *FLAGS)
    assert result.exit_code == 2 and "cannot write the output folder" in result.stderr


def test_resume_with_nothing_to_resume(photos, tmp_path):
    result = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", tmp_path / "new", *FLAGS, "--resume")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"edgekit: error: {tmp_path / 'new' / 'checkpoint'}: nothing to resume (no "
                                     "state.json); run without --resume to start")


def test_val_and_val_split_together_are_refused(photos, tmp_path):
    result = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", tmp_path / "o", "--val", photos,
                     "--val-split", 0.2)
    assert result.exit_code == 2 and "give --val or --val-split, not both" in result.stderr


def test_a_detector_on_class_folders_is_told_what_data_it_needs(photos, tmp_path):
    result = edgekit("train", "efficientdet-lite0", "--data", photos, "--out", tmp_path / "o", *FLAGS)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"edgekit: error: {photos}: no detection annotations found: give a COCO folder or .json file, a Pascal VOC "
        "folder (Annotations/*.xml and JPEGImages/), a YOLO folder (images/, labels/*.txt and classes.txt) or a "
        "Model Maker .csv file")



def test_training_starts_from_a_users_own_keras_classifier(trained, tmp_path):
    """--weights PATH: the user's classifier's features, a new head for other classes."""
    out, _ = trained
    two = digits_folder(tmp_path / "two", classes=2, per_class=40, size=64)
    result = edgekit("train", "efficientnet-lite0", "--data", two, "--out", tmp_path / "again",
                     "--weights", out / "efficientnet-lite0.keras", "--no-compile", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["labels"] == ["0", "1"]
    assert document["recipe"]["input_size"] == [SIZE, SIZE]     # the user's model's own input size
    assert document["metrics"]["test"]["int8"]["accuracy"] >= 0.75      # 6 of the 8 test pictures


def _keras_weights(path):
    """Every array of a saved .keras file's weights, by name (read with h5py, no model built)."""
    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f:
        data = f.read()
    scratch = f"{path}.weights.h5"
    with open(scratch, "wb") as f:
        f.write(data)
    arrays = {}
    with h5py.File(scratch, "r") as h5:
        h5.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                      else None)
    os.unlink(scratch)
    return arrays


def _default_sigint():
    # A shell's background job starts with SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler: give the child the default disposition, as a terminal's foreground job has it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _train(args, **popen):
    return subprocess.Popen(EDGEKIT + ["train", "efficientnet-lite0", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint, **popen)


def _wait_for_checkpoint(process, state, epochs_done, patience_s=240):
    """Wait until the run's checkpoint records `epochs_done` epochs (then it is mid-way through the next)."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if state.exists():
            try:
                if json.loads(state.read_text())["epochs_done"] >= epochs_done:
                    return
            except ValueError:
                pass            # never half-written: write_atomic; but be patient with a racing reader
        time.sleep(0.2)
    process.kill()
    pytest.fail("no checkpoint appeared in time")


def _stop_in_fine_tune(process, out, stop):
    """Wait until `process` has saved its first fine-tune epoch, send `stop`, and return its stderr."""
    state = out / "checkpoint" / "state.json"
    # The head's epochs come first, many and quick; stop once the first fine-tune epoch is saved.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if state.exists() and json.loads(state.read_text())["phase"] == "fine-tune":
            break
        time.sleep(0.2)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last == (f"edgekit: error: training interrupted; the last finished epoch's checkpoint is in "
                    f"{out / 'checkpoint'}: run the same command with --resume to continue")
    saved = json.loads(state.read_text())
    assert saved["phase"] == "fine-tune" and os.path.isdir(out / "checkpoint" / f"epoch-{saved['epochs_done']:04d}")
    assert not [n for n in os.listdir(out / "checkpoint") if ".tmp-" in n]
    assert not (out / "efficientnet-lite0.keras").exists()
    return saved


RESUMABLE = ["--input-size", SIZE, "--no-compile", "--fine-tune", "--epochs", 3, "--batch-size", 16]


def test_ctrl_c_leaves_the_last_epochs_checkpoint(photos, tmp_path):
    out = tmp_path / "stopped"
    _stop_in_fine_tune(_train(["--data", photos, "--out", out] + RESUMABLE), out, signal.SIGINT)


@pytest.mark.slow
def test_sigterm_then_resume_gives_the_same_model(photos, tmp_path):
    """Stopped mid fine-tune by SIGTERM, resumed with --resume: the same model as a run never stopped."""
    args = ["--data", photos] + RESUMABLE
    whole = _train(args + ["--out", tmp_path / "whole", "--json"])
    out = tmp_path / "stopped"
    saved = _stop_in_fine_tune(_train(args + ["--out", out]), out, signal.SIGTERM)
    resumed = subprocess.run(EDGEKIT + ["train", "efficientnet-lite0", *map(str, args), "--out", str(out),
                                        "--resume", "--json"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {saved['epochs_done']} (fine-tune)" in resumed.stderr
    whole_out, whole_err = whole.communicate(timeout=600)
    assert whole.returncode == 0, whole_err
    expected, found = json.loads(whole_out), json.loads(resumed.stdout)
    assert [row["loss"] for row in found["history"]] == [row["loss"] for row in expected["history"]]
    a, b = _keras_weights(tmp_path / "whole" / "efficientnet-lite0.keras"), _keras_weights(
        out / "efficientnet-lite0.keras")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[name], b[name]) for name in a)


def test_resume_refuses_other_data(photos, tmp_path):
    """A checkpoint of one dataset is not resumed with another."""
    out = tmp_path / "out"
    args = ["--input-size", SIZE, "--no-compile", "--fine-tune", "--epochs", 2, "--batch-size", 16]
    run = _train(["--data", photos, "--out", out] + args)
    _wait_for_checkpoint(run, out / "checkpoint" / "state.json", 1)
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=120)
    other = photo_folder(tmp_path / "other", per_class=20, size=64)
    result = edgekit("train", "efficientnet-lite0", "--data", other, "--out", out, *args, "--resume")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"edgekit: error: {out / 'checkpoint'}: the checkpoint was made with other "
                                     "pictures, labels or settings; resume with the same --data, splits and "
                                     "options, or start again with --overwrite")
    interrupted = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", out, *args)
    assert interrupted.exit_code == 2
    assert interrupted.stderr.strip() == (f"edgekit: error: {out}: holds an interrupted training run: add "
                                          "--resume to continue it, or --overwrite to start again")


def test_same_seed_same_model(photos):
    """Seeded runs on the CPU give the same model twice (and another seed another model)."""
    from edgekit import train

    def weights(seed):
        result = train.image_classifier(photos, input_size=SIZE, seed=seed, epochs=5)
        return [w.copy() for w in result.model.get_weights()], [row["loss"] for row in result.history]

    first, second, other = weights(0), weights(0), weights(1)
    assert first[1] == second[1]
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert first[1] != other[1]


def test_evaluate_scores_a_folder_like_model_makers(photos, tmp_path):
    """result.evaluate(data): accuracy, per-class figures and the confusion matrix, float or through a .tflite."""
    from edgekit import train

    result = train.image_classifier(digits_folder(tmp_path / "train", classes=4, per_class=40), input_size=SIZE,
                                    test_split=0.0)
    assert result.scores.get("test") is None
    held_out = digits_folder(tmp_path / "held_out", classes=4, per_class=10, seed=1)
    scores = result.evaluate(held_out)
    assert scores.count == 40 and scores.accuracy >= 0.7
    assert scores.confusion.sum() == 40 and np.trace(scores.confusion) == round(scores.accuracy * 40)
    assert [row["support"] for row in scores.per_class] == [10, 10, 10, 10]
    assert result.labels == ["0", "1", "2", "3"]


# `edgekit train` in a fresh process, then whether TensorFlow was imported, on stdout.
NO_TENSORFLOW_SCRIPT = """
import sys
from edgekit.cli import main
sys.argv = ["edgekit", "train", "efficientnet-lite0"] + sys.argv[1:]
try:
    main()
finally:
    print("tensorflow" in sys.modules)
"""


def _one_class(root):
    folder = faces_folder(root / "one")
    __import__("shutil").rmtree(os.path.join(folder, "not_face"))
    return folder


@pytest.mark.parametrize("make, expected", [
    (lambda root: root / "missing", "{data}: no such training data folder or CSV file: give a folder with one "
                                    "sub-folder of pictures per class, or a CSV file of path,label lines"),
    (lambda root: (root / "empty").mkdir() or root / "empty",
     "{data}: no class folders: put each class's pictures in a sub-folder named after the class ({data}/cat/1.jpg, "
     "{data}/dog/2.jpg)"),
    (_one_class, "{data}: only one class ('face'): a classifier needs at least two classes: add pictures of another "
                 "class (a sub-folder, or CSV lines with another label)"),
], ids=["missing", "empty", "one-class"])
def test_bad_data_is_one_line_before_tensorflow_loads(tmp_path, make, expected):
    """Bad data fails at once (TensorFlow never imported, no traceback): one line naming the data and the fix."""
    data = make(tmp_path)
    done = subprocess.run([sys.executable, "-c", NO_TENSORFLOW_SCRIPT, "--data", str(data), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "edgekit: error: " + expected.format(data=data)
    assert done.stdout.strip() == "False"


def test_a_picture_broken_during_training_is_one_line(tmp_path):
    """A picture that stops being readable after the scan: a one-line error from inside tf.data."""
    from edgekit.training import image_classifier as trainer, labelled_data, network

    data = faces_folder(tmp_path / "faces", size=64)
    splits = labelled_data.make_splits(data)
    victim = splits.train.paths[0]
    with open(victim, "wb") as f:
        f.write(b"not a picture any more")
    features, _ = network.backbone_for("efficientnet-lite0", None, (SIZE, SIZE))
    with pytest.raises(network.TrainingError) as caught:
        trainer.predict_pictures(features, splits.train, (SIZE, SIZE))
    message = str(caught.value)
    assert message.startswith("a picture could not be read during training (") and victim in message
    assert message.endswith("fix or remove it, then run the same command with --resume")


@pytest.mark.parametrize("args, expected", [
    (["efficientnet-lite3", "--weights", "imagenet"], "efficientnet-lite3: no ImageNet weights in the zoo "
     "(efficientnet-lite0..2 and efficientdet-lite0..2 have them): use --weights none to train from random "
     "weights, or a smaller model"),
    (["efficientdet-lite3", "--weights", "imagenet"], "efficientdet-lite3: no ImageNet weights in the zoo "
     "(efficientnet-lite0..2 and efficientdet-lite0..2 have them): use --weights none to train from random "
     "weights, or a smaller model"),
    (["efficientnet-lite0", "--weights", "gone.keras"], "gone.keras: no such weights file: give imagenet, none, or "
     "your own .keras classifier trained before"),
    (["efficientdet-lite0", "--weights", "gone.keras"], "gone.keras: no such weights file: give imagenet, none, or "
     "your own .keras detector trained before"),
], ids=["no-imagenet-weights", "no-imagenet-detector-weights", "missing-weights-file", "missing-detector-weights"])
def test_weights_that_cannot_be_had_are_one_line(tmp_path, args, expected):
    data = faces_folder(tmp_path / "faces", size=32)
    script = NO_TENSORFLOW_SCRIPT.replace('"train", "efficientnet-lite0"]', '"train"]')
    done = subprocess.run([sys.executable, "-c", script, *args, "--data", data, "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "edgekit: error: " + expected
    assert done.stdout.strip() == "False"


def test_an_ensemble_needs_two_members(photos, tmp_path):
    result = edgekit("train", "efficientnet-lite0", "--data", photos, "--out", tmp_path / "o", "--ensemble", 1)
    assert result.exit_code == 2
    assert "Invalid value for '--ensemble': 1 is not in the range x>=2." in result.stderr
