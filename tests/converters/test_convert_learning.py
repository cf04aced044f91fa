"""`edgekit convert --embedding / --imprinting`: EfficientNet-Lite0 (ImageNet weights, 224 px) cut at its pooled
features, and that extractor with pycoral's imprinting head, checked on real pictures against the Keras model;
a trained-style .keras classifier's own classes as the imprinting base; one-line errors for what does not fit.

The Lite0 models come from tests/learn_models.py, converted once per session and shared with other tests."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_runner import edgekit, run_json
from learn_models import (EMBEDDING_DIM, IMAGENET_CLASSES, INPUT_SIZE, MODEL, calibration_folder, conversion,
                          embedding_model_path, imprinting_model_path)

from edgekit.tflite import heads
from edgekit.tflite.graph_edit import GraphEditor
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

keras = pytest.importorskip("keras")

__all__ = ["embedding_model_path", "imprinting_model_path"]     # session fixtures, used below by name

# Pictures no conversion was calibrated on: pycoral's imprinting pictures.
HELD_OUT = ("imprinting/cat_test_0.bmp", "imprinting/cat_train_0.bmp", "imprinting/dog_test_0.bmp",
            "imprinting/dog_train_0.bmp", "imprinting/hotdog_test_0.bmp", "imprinting/hotdog_train_0.bmp",
            "imprinting/hotdog_train_1.bmp")
# ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = range(281, 286)
STANDIN = Path(__file__).parents[1] / "compiler" / "standin"


def pixels(path):
    """A picture as `edgekit run` feeds a classifier: RGB, TFLite's bilinear resize to 224, uint8 [1, H, W, 3]."""
    from edgekit.runtime import images
    from edgekit.runtime.tasks import CLASSIFICATION, DEFAULT_RESIZE

    picture = images.load_image(str(path), "RGB")
    return np.asarray(images.resize(picture, (INPUT_SIZE, INPUT_SIZE), DEFAULT_RESIZE[CLASSIFICATION]))[None]


def invoke(path, batch):
    """The model's single output for uint8 pixels, dequantized, and its quantization scale."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    scale, zero_point = out["quantization"]
    return scale * (interpreter.get_tensor(out["index"])[0].astype(np.float64) - zero_point), scale


@pytest.fixture(scope="module")
def zoo_classifier():
    from edgekit import models

    return models.create(MODEL, weights="imagenet")


def test_embedding_is_the_pooled_features_of_the_keras_model(embedding_model_path, zoo_classifier, coral,
                                                             record_property):
    """On pictures it was not calibrated on, the int8 extractor returns the Keras classifier's pooled features
    (the input of its Dense layer) to within what int8 arithmetic through the whole backbone leaves: values off
    by less than one output step on average, the vectors pointing the same way."""
    features = keras.Model(zoo_classifier.inputs, zoo_classifier.get_layer("flatten").output)
    errors, cosines = [], []
    for name in HELD_OUT:
        batch = pixels(coral(name))
        expected = features.predict(batch.astype(np.float32), verbose=0)[0].astype(np.float64)
        found, step = invoke(embedding_model_path, batch)
        assert found.shape == expected.shape == (EMBEDDING_DIM,)
        errors.append(np.abs(found - expected) / step)
        cosines.append(float(found @ expected / (np.linalg.norm(found) * np.linalg.norm(expected))))
    errors = np.stack(errors)
    record_property("embedding_error_steps", f"mean {errors.mean():.2f}, worst {errors.max():.1f}")
    record_property("embedding_cosine", f"lowest {min(cosines):.4f}")
    assert errors.mean() < 1.0, errors.mean()
    assert min(cosines) > 0.99, cosines


def test_embedding_model_is_an_extractor_fully_on_the_edge_tpu(embedding_model_path, tmp_path_factory):
    result = conversion(tmp_path_factory, "embedding")
    model = read_model(embedding_model_path)
    (output,) = model.output_tensors()
    assert list(output.shape) == [1, EMBEDDING_DIM] and output.type == "UINT8"
    assert model.input_tensors()[0].quantization.per_tensor == (1 / 128, 127)
    assert "L2_NORMALIZATION" not in [op.name for op in model.main.operators]
    metadata = read_edgekit_metadata(model)
    assert metadata["task"] == "embedding" and "labels" not in metadata
    assert (metadata["input_size"], metadata["mean"], metadata["std"], metadata["resize"]) == (
        [INPUT_SIZE, INPUT_SIZE], 127.0, 128.0, "tflite-bilinear")
    assert embedding_model_path.name == f"{MODEL}_embedding_int8.tflite"
    assert result.check["cpu"] == 0 and result.check["learning_head"] is None
    found = result.embedding_agreement
    assert found["pictures"] == len(list(calibration_folder(tmp_path_factory).iterdir()))
    assert found["min_cosine"] > 0.99 and result.agreement is None
    report = json.loads(open(result.report_json).read())
    assert report["embedding_agreement"] == found and report["outputs"][0]["shape"] == [1, EMBEDDING_DIM]
    assert "Embedding against the float model" in open(result.report_html).read()


def test_run_on_an_embedding_model_says_what_it_is_for(embedding_model_path, coral):
    result = edgekit("run", embedding_model_path, coral("cat.bmp"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"edgekit: error: {embedding_model_path}: an embedding extractor (edgekit convert --embedding): its output "
        "is features, not classes; give it classes with `edgekit learn backprop MODEL --data FOLDER --out "
        "NEW.tflite`, or run the classifier it was cut from\n")


def test_imprinting_model_has_pycorals_contract(imprinting_model_path, zoo_classifier, tmp_path_factory):
    """The last ops are pycoral's (L2_NORMALIZATION -> CONV_2D -> MUL -> RESHAPE -> SOFTMAX), the L2-normalized
    embedding is [1, 1, 1, 1280], the output [1, 1000], and the 1000 classes are the classifier's Dense rows,
    normalized (the bias dropped)."""
    model = read_model(imprinting_model_path)
    names = [op.name for op in model.main.operators]
    assert names[-5:] == ["L2_NORMALIZATION", "CONV_2D", "MUL", "RESHAPE", "SOFTMAX"]
    assert names.count("L2_NORMALIZATION") == 1
    (output,) = model.output_tensors()
    assert list(output.shape) == [1, IMAGENET_CLASSES] and output.type == "UINT8"
    editor = GraphEditor.from_bytes(imprinting_model_path.read_bytes())
    head = heads.read_imprinting_head(editor)
    assert (head.embedding_dim, head.num_classes) == (EMBEDDING_DIM, IMAGENET_CLASSES)
    assert editor.shape(head.embedding) == [1, 1, 1, EMBEDDING_DIM]
    rows = heads.class_weights(editor, head)
    kernel = keras.ops.convert_to_numpy(zoo_classifier.get_layer("predictions").kernel).T.astype(np.float64)
    expected = kernel / np.linalg.norm(kernel, axis=1, keepdims=True)
    cosine = np.sum(heads.unit_rows(rows) * expected, axis=1)
    assert cosine.min() > 0.99, cosine.min()
    metadata = read_edgekit_metadata(model)
    assert metadata["task"] == "classification" and len(metadata["labels"]) == IMAGENET_CLASSES
    assert "Egyptian cat" in metadata["labels"][285]
    assert imprinting_model_path.name == f"{MODEL}_imprinting_int8.tflite"
    result = conversion(tmp_path_factory, "imprinting")
    assert result.check["cpu_ops"] == {"L2_NORMALIZATION": 1, "CONV_2D": 1, "MUL": 1, "RESHAPE": 1, "SOFTMAX": 1}
    assert result.check["learning_head"]["ops"] == list(range(len(names) - 5, len(names)))
    # The head's CPU ops are there by design: no warning about them.
    assert not [w for w in result.warnings if "CPU" in w], result.warnings
    assert result.embedding_agreement["min_cosine"] > 0.99


def test_imprinting_model_still_classifies_the_cat(imprinting_model_path, zoo_classifier, coral, record_property):
    """Coral's cat.bmp through `edgekit run` (ai-edge-litert, labels from the metadata): a domestic cat, among
    the Keras classifier's own top five."""
    document = run_json(imprinting_model_path, [coral("cat.bmp")], device="cpu", top_k=5)
    (result,) = document["results"]
    top = result["classes"][0]
    float_scores = zoo_classifier.predict(pixels(coral("cat.bmp")).astype(np.float32), verbose=0)[0]
    float_top5 = list(np.argsort(float_scores)[::-1][:5])
    record_property("cat", f"imprinting {top['id']} {top['label']} {top['score']:.3f}; "
                           f"float {float_top5[0]} {float_scores[float_top5[0]]:.3f}")
    assert top["id"] in CAT_CLASSES and "cat" in top["label"].lower(), result
    assert top["id"] in float_top5 and float_top5[0] in CAT_CLASSES
    assert top["score"] > 0.2


def test_imprinting_agrees_with_the_classifier_on_real_pictures(imprinting_model_path, zoo_classifier, coral,
                                                               record_property):
    """The cosine head keeps the classifier's ranking where it is sure: on every picture the imprinting model's
    top-1 is among the Keras classifier's top 5, and where the classifier is confident (> 0.9) it agrees."""
    names = ("cat.bmp", "parrot.jpg", "grace_hopper.bmp") + HELD_OUT
    agree = 0
    for name in names:
        batch = pixels(coral(name))
        scores, _ = invoke(imprinting_model_path, batch)
        reference = zoo_classifier.predict(batch.astype(np.float32), verbose=0)[0]
        top5 = list(np.argsort(reference)[::-1][:5])
        found = int(np.argmax(scores))
        agree += found == top5[0]
        assert found in top5, (name, found, top5)
        if reference[top5[0]] > 0.9:
            assert found == top5[0], (name, found, top5)
    record_property("imprinting_top1_agreement", f"{agree} of {len(names)}")


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    """What `edgekit train --out` leaves for a small classifier: <name>.keras (its head named as the trainer
    names it: top_dropout, predictions, probabilities) and labels.txt beside it."""
    folder = tmp_path_factory.mktemp("trained")
    keras.utils.set_random_seed(5)
    images = keras.Input((64, 64, 3), batch_size=1)
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128, name="normalize")(images)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(24, 1, activation="relu6")(x)
    x = keras.layers.AveragePooling2D(pool_size=(32, 32), name="avg_pool")(x)
    x = keras.layers.Reshape((24,), name="flatten")(x)
    x = keras.layers.Dropout(0.2, name="top_dropout")(x)
    x = keras.layers.Dense(3, name="predictions")(x)
    model = keras.Model(images, keras.layers.Activation("softmax", name="probabilities")(x), name="flowers")
    model.save(folder / "flowers.keras")
    (folder / "labels.txt").write_text("daisy\nrose\ntulip\n")
    return folder


def test_imprinting_from_a_trained_keras_file(trained_folder, tmp_path_factory, tmp_path, monkeypatch):
    """A .keras classifier from `edgekit train`: its three classes, with the labels written beside it, become
    the imprinting head's base classes, and the compile step keeps the head on the CPU (the compiler here is
    the stand-in of tests/compiler, which records its argv); --embedding of the same file has no labels."""
    photos = str(calibration_folder(tmp_path_factory))
    argv = tmp_path / "argv.json"
    monkeypatch.setenv("PATH", f"{STANDIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("EDGETPU_COMPILER", raising=False)
    monkeypatch.setenv("EDGETPU_STANDIN_ARGV", str(argv))
    result = edgekit("convert", trained_folder / "flowers.keras", "--calib", photos, "--out", tmp_path,
                     "--imprinting", "--strict")
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "flowers_imprinting_int8.tflite"
    assert f"int8 model     {path}" in result.stdout
    assert f"compiled       {tmp_path / 'flowers_imprinting_int8_edgetpu.tflite'}" in result.stdout
    compiler_argv = json.loads(argv.read_text())
    assert compiler_argv[compiler_argv.index("--intermediate_tensors") + 1] == "imprinting/embedding"
    assert ("               the imprinting head's 5 ops stay on the CPU on purpose (edgekit compile ends the Edge "
            "TPU part at 'imprinting/embedding')") in result.stdout
    assert "vs float       embedding cosine similarity 0.9" in result.stdout and "top-1" not in result.stdout
    assert read_edgekit_metadata(read_model(path))["labels"] == ["daisy", "rose", "tulip"]
    editor = GraphEditor.from_bytes(path.read_bytes())
    head = heads.read_imprinting_head(editor)
    assert (head.embedding_dim, head.num_classes) == (24, 3)
    kernel = keras.models.load_model(trained_folder / "flowers.keras").get_layer("predictions").kernel
    expected = heads.unit_rows(keras.ops.convert_to_numpy(kernel).T)
    assert np.sum(heads.unit_rows(heads.class_weights(editor, head)) * expected, axis=1).min() > 0.99
    result = edgekit("convert", trained_folder / "flowers.keras", "--calib", photos, "--out", tmp_path,
                     "--embedding", "--no-compile", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["int8_path"] == str(tmp_path / "flowers_embedding_int8.tflite")
    assert document["embedding_agreement"]["min_cosine"] > 0.99 and document["agreement"] is None
    assert document["metadata"]["task"] == "embedding" and document["check"]["learning_head"] is None
    extractor = read_model(tmp_path / "flowers_embedding_int8.tflite")
    assert list(extractor.output_tensors()[0].shape) == [1, 24]
    assert "labels" not in read_edgekit_metadata(extractor)


def one_line_error(result, *words):
    assert result.exit_code != 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_embedding_and_imprinting_exclude_each_other(tmp_path):
    result = edgekit("convert", MODEL, "--calib", tmp_path, "--out", tmp_path, "--embedding", "--imprinting")
    assert result.exit_code == 2 and "--embedding and --imprinting exclude each other" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_detector_is_refused_in_one_line(tmp_path_factory, tmp_path):
    result = edgekit("convert", "efficientdet-lite0", "--calib", calibration_folder(tmp_path_factory), "--out",
                     tmp_path, "--imprinting")
    one_line_error(result, "zoo:efficientdet-lite0: a detection model; --imprinting takes an image classifier",
                   "convert this one without --imprinting")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, words", [
    (("--embedding", "--labels", "LABELS"), ("an embedding extractor has no classes",)),
    (("--imprinting", "--task", "detection"), ("--imprinting takes a classifier, not --task detection",))])
def test_options_that_do_not_fit_a_learning_output(trained_folder, tmp_path, flags, words):
    flags = [str(trained_folder / "labels.txt") if f == "LABELS" else f for f in flags]
    result = edgekit("convert", trained_folder / "flowers.keras", "--calib", tmp_path, "--out", tmp_path, *flags)
    one_line_error(result, *words)


def test_a_model_without_a_dense_head_is_refused(tmp_path):
    images = keras.Input((32, 32, 3), batch_size=1)
    keras.Model(images, keras.layers.Conv2D(4, 3)(images)).save(tmp_path / "features.keras")
    result = edgekit("convert", tmp_path / "features.keras", "--calib", tmp_path, "--out", tmp_path / "out",
                     "--embedding")
    one_line_error(result, f"{tmp_path / 'features.keras'}: no Dense layer", "take an image classifier")


def test_labels_that_do_not_match_the_classes_are_refused(trained_folder, tmp_path):
    wrong = tmp_path / "labels.txt"
    wrong.write_text("daisy\nrose\n")
    result = edgekit("convert", trained_folder / "flowers.keras", "--calib", tmp_path, "--out", tmp_path / "out",
                     "--imprinting", "--labels", wrong)
    one_line_error(result, f"{wrong}: 2 labels for a classifier of 3 classes")
