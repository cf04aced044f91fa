"""SoftmaxRegression: pycoral's own scenarios (separable and overlapping Gaussian classes), the gradients,
the progress reports, a layer trained on real MobileNet embeddings serialized onto Coral's extractor (uint8,
and its Edge TPU twin) and onto an int8 extractor, run in LiteRT and compared with the float model, the
one-line errors, and no TensorFlow."""

import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from testdata import coral_file

from edgekit.errors import EdgekitError
from edgekit.learn.backprop.softmax_regression import LogitRange, SoftmaxRegression, TrainingProgress, \
    loss_and_gradients, softmax
from edgekit.runtime.images import load_image, resize
from edgekit.tflite.builder import ModelBuilder
from edgekit.tflite.model import read_model

ROOT = Path(__file__).resolve().parents[2]
EXTRACTOR = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
EXTRACTOR_TWIN = "mobilenet_v1_1.0_224_quant_embedding_extractor_edgetpu.tflite"
# Real pictures as five classes: cat, dog, hot dog, person, bird.
PICTURES = {"cat.bmp": 0, "imprinting/cat_train_0.bmp": 0, "imprinting/cat_test_0.bmp": 0,
            "imprinting/dog_train_0.bmp": 1, "imprinting/dog_test_0.bmp": 1,
            "imprinting/hotdog_train_0.bmp": 2, "imprinting/hotdog_train_1.bmp": 2,
            "imprinting/hotdog_test_0.bmp": 2, "grace_hopper.bmp": 3, "parrot.jpg": 4}
# pycoral's test data: three classes around these means, identity covariance.
MEANS = np.array([[1, 1], [-1, -1], [1, -1]], np.float64)

Dequantized = namedtuple("Dequantized", "values step")


def pycoral_gaussians(means, seed, num_train=200, num_val=30):
    """pycoral's data set: 230 points split evenly over the classes (the last takes the remainder), drawn
    class by class from N(mean, I) and shuffled, the first 200 for training. numpy's legacy RandomState
    draws the very numbers pycoral's test drew after np.random.seed(seed): the overlapping set's threshold
    (0.8) is above what the best classifier of its distribution reaches on average, so it holds for
    pycoral's sample, not for any sample."""
    random = np.random.RandomState(seed)
    total, classes = num_train + num_val, len(means)
    sizes = [total // classes] * (classes - 1)
    sizes.append(total - sum(sizes))
    data = np.concatenate([random.multivariate_normal(mean, np.eye(means.shape[1]), size)
                           for mean, size in zip(means, sizes)])
    labels = np.repeat(np.arange(classes), sizes)
    order = random.permutation(total)
    data, labels = data[order], labels[order]
    return {"data_train": data[:num_train], "labels_train": labels[:num_train],
            "data_val": data[num_train:], "labels_val": labels[num_train:]}


def dataset(features, labels):
    """pycoral's dict with the same rows for training and validation."""
    return {"data_train": features, "labels_train": labels, "data_val": features, "labels_val": labels}


def dequantized(values, quantization):
    scale, zero = quantization
    return (np.asarray(values, np.float64) - zero) * scale


def run_model(interpreter, pixels):
    """The single output of one invoke, dequantized to float64 and flattened."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], np.asarray(pixels, inp["dtype"]).reshape(inp["shape"]))
    interpreter.invoke()
    return dequantized(interpreter.get_tensor(out["index"]), out["quantization"]).reshape(-1)


def interpreter_of(model):
    interpreter = Interpreter(model_path=str(model)) if isinstance(model, Path) else \
        Interpreter(model_content=model)
    interpreter.allocate_tensors()
    return interpreter


@pytest.fixture(scope="module")
def pictures():
    """The pictures as the extractor's raw uint8 input (its quantization is pycoral's raw-pixel one)."""
    return [np.asarray(resize(load_image(coral_file(name)), (224, 224))) for name in PICTURES]


@pytest.fixture(scope="module")
def embeddings(pictures):
    extractor = interpreter_of(coral_file(EXTRACTOR))
    return np.stack([run_model(extractor, pixels) for pixels in pictures])


@pytest.fixture(scope="module")
def labels():
    return np.array(list(PICTURES.values()))


@pytest.fixture(scope="module")
def trained(embeddings, labels):
    """A layer trained briefly (small steps), so that its probabilities stay well inside (0, 1), where the
    quantized model's agreement with the float one says something."""
    model = SoftmaxRegression(embeddings.shape[1], len(set(PICTURES.values())), seed=7)
    model.train_with_sgd(dataset(embeddings, labels), 10, 0.002, batch_size=20, print_every=0)
    return model


def fully_connected_head(model_bytes):
    """The FULLY_CONNECTED layer a serialized model ends with: weights (D, N) and biases dequantized, their
    quantization steps, and the logits' step."""
    graph = read_model(model_bytes).main
    (layer,) = [op for op in graph.operators if op.name == "FULLY_CONNECTED"]
    kernel, bias, logits = (graph.tensors[i] for i in (*layer.inputs[1:3], layer.outputs[0]))
    kernel_q, bias_q = kernel.quantization.per_tensor, bias.quantization.per_tensor
    return (Dequantized(dequantized(kernel.numpy(), kernel_q).T, kernel_q[0]),
            Dequantized(dequantized(bias.numpy(), bias_q), bias_q[0]), logits.quantization.per_tensor[0])


def assert_agrees_with_float(model, model_bytes, inputs, features):
    """The serialized model, run in LiteRT on each input, gives the float layer's softmax of its feature row
    within what quantization allows, and the same class.

    The stored parameters are the float ones rounded to their grids (within half a step). The logits then
    differ from the float logits by what that rounding makes of this row (computed exactly, as the row is
    the extractor's own dequantized output) plus at most one logit step (the output's rounding and the
    kernel's fixed-point rescaling, half a step each). A softmax moves no probability by more than half the
    largest logit change (each row of its Jacobian, diag(p) - p p^T, sums in absolute value to
    2 p_k (1 - p_k) <= 1/2), and the output grid of 1/256 adds two steps for TFLite's fixed-point exp."""
    weights, biases, logit_step = fully_connected_head(model_bytes)
    assert np.max(np.abs(weights.values - model.weights)) <= weights.step / 2 * (1 + 1e-6)
    assert np.max(np.abs(biases.values - model.biases)) <= biases.step / 2 * (1 + 1e-6)
    interpreter = interpreter_of(model_bytes)
    for pixels, row in zip(inputs, features):
        expected = softmax(row @ model.weights.astype(np.float64) + model.biases)
        stored_logits = row @ weights.values + biases.values
        logit_error = np.max(np.abs(stored_logits - (row @ model.weights.astype(np.float64) + model.biases)))
        tolerance = (logit_error + logit_step) / 2 + 2 / 256
        probabilities = run_model(interpreter, pixels)
        assert probabilities.shape == expected.shape
        assert np.max(np.abs(probabilities - expected)) <= tolerance, (probabilities, expected, tolerance)
        assert np.argmax(probabilities) == np.argmax(expected)


# --- pycoral's scenarios ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separable_gaussians_are_learnt(seed):
    data = pycoral_gaussians(MEANS * 3, 12345)
    model = SoftmaxRegression(2, 3, seed=seed)
    model.train_with_sgd(data, 20, 0.01, batch_size=100, print_every=0)
    assert model.get_accuracy(data["data_train"], data["labels_train"]) > 0.99


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlapping_gaussians_are_learnt_as_well_as_pycoral(seed):
    data = pycoral_gaussians(MEANS, 54321)
    model = SoftmaxRegression(2, 3, seed=seed)
    model.train_with_sgd(data, 50, 0.1, batch_size=100, print_every=0)
    assert model.get_accuracy(data["data_train"], data["labels_train"]) > 0.8


# --- the layer itself -------------------------------------------------------------------------------------

def test_gradients_match_finite_differences():
    random = np.random.default_rng(3)
    features = random.standard_normal((7, 4))
    labels = np.array([0, 1, 2, 2, 1, 0, 1])
    weights, biases, reg = random.standard_normal((4, 3)), random.standard_normal(3), 0.3
    step = loss_and_gradients(features, labels, weights, biases, reg)
    epsilon = 1e-6
    for array, gradient in ((weights, step.weights), (biases, step.biases)):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + epsilon
            above = loss_and_gradients(features, labels, weights, biases, reg).loss
            array[index] = saved - epsilon
            below = loss_and_gradients(features, labels, weights, biases, reg).loss
            array[index] = saved
            numeric[index] = (above - below) / (2 * epsilon)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)


def test_loss_is_cross_entropy_plus_half_reg_times_squared_weights():
    features = np.array([[1.0, 0.0], [0.0, 2.0]])
    weights, biases = np.array([[1.0, -1.0], [0.5, 0.0]]), np.array([0.0, 0.25])
    labels = np.array([1, 0])
    logits = features @ weights + biases
    cross_entropy = -np.mean(np.log(softmax(logits)[[0, 1], labels]))
    loss = loss_and_gradients(features, labels, weights, biases, 0.2).loss
    assert loss == pytest.approx(cross_entropy + 0.1 * np.sum(weights ** 2), rel=1e-12)


def test_initial_weights_are_small_normal_draws_and_the_seed_repeats_training():
    model = SoftmaxRegression(400, 5, weight_scale=0.02, seed=11)
    assert model.weights.dtype == np.float32 and model.weights.shape == (400, 5)
    assert np.all(model.biases == 0) and model.biases.shape == (5,)
    assert model.weights.std() == pytest.approx(0.02, rel=0.05) and abs(model.weights.mean()) < 0.002
    assert model.params["mat_w"] is model.weights and model.params["vec_b"] is model.biases
    data = pycoral_gaussians(MEANS, 54321)
    first, second = SoftmaxRegression(2, 3, seed=4), SoftmaxRegression(2, 3, seed=4)
    history = first.train_with_sgd(data, 5, 0.1, print_every=0)
    second.train_with_sgd(data, 5, 0.1, print_every=0)
    assert np.array_equal(first.weights, second.weights) and np.array_equal(first.biases, second.biases)
    assert history.losses.shape == (5,) and np.all(np.isfinite(history.losses))


def test_logit_range_is_that_of_the_training_rows_after_training():
    data = pycoral_gaussians(MEANS * 3, 12345)
    model = SoftmaxRegression(2, 3, seed=0)
    assert model.logit_range is None
    history = model.train_with_sgd(data, 20, 0.01, print_every=0)
    logits = data["data_train"].astype(np.float32) @ model.weights + model.biases
    assert model.logit_range == history.logit_range == LogitRange(float(logits.min()), float(logits.max()))
    assert np.array_equal(model.run_inference(data["data_train"]), np.argmax(logits, axis=1))


def test_progress_is_printed_every_print_every_iterations_like_pycoral(capsys):
    data = pycoral_gaussians(MEANS * 3, 12345)
    model = SoftmaxRegression(2, 3, seed=0)
    model.train_with_sgd(data, 20, 0.01, batch_size=100, print_every=5)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["iteration 0", "iteration 5", "iteration 10",
                                                      "iteration 15"]
    assert all(", train accuracy " in line and "%, validation accuracy " in line for line in lines)
    model.train_with_sgd(data, 3, 0.01, print_every=0)
    assert capsys.readouterr().out == ""


def test_progress_goes_to_the_callback_when_given(capsys):
    data = pycoral_gaussians(MEANS * 3, 12345)
    model = SoftmaxRegression(2, 3, seed=0)
    reports = []
    history = model.train_with_sgd(data, 7, 0.01, print_every=3, on_progress=reports.append)
    assert capsys.readouterr().out == ""
    assert [report.iteration for report in reports] == [0, 3, 6]
    assert all(isinstance(report, TrainingProgress) for report in reports)
    assert [report.loss for report in reports] == [history.losses[i] for i in (0, 3, 6)]


def test_reports_after_the_update_match_the_weights_they_describe():
    data = pycoral_gaussians(MEANS * 3, 12345)
    model = SoftmaxRegression(2, 3, seed=0)
    reports = []
    model.train_with_sgd(data, 1, 0.01, print_every=1, on_progress=reports.append)
    (report,) = reports
    assert report.train_accuracy == model.get_accuracy(data["data_train"], data["labels_train"])
    assert report.val_accuracy == model.get_accuracy(data["data_val"], data["labels_val"])


def test_no_validation_rows_reports_none():
    data = pycoral_gaussians(MEANS * 3, 12345)
    data["data_val"], data["labels_val"] = np.zeros((0, 2)), np.zeros(0, int)
    reports = []
    SoftmaxRegression(2, 3, seed=0).train_with_sgd(data, 1, 0.01, print_every=1, on_progress=reports.append)
    assert reports[0].val_accuracy is None


# --- serialized onto real extractors ----------------------------------------------------------------------

def test_layer_on_coral_extractor_runs_in_litert_and_agrees_with_the_float_model(trained, pictures, embeddings,
                                                                                  labels, record_property):
    assert trained.get_accuracy(embeddings, labels) == 1.0
    probabilities = softmax(embeddings @ trained.weights.astype(np.float64) + trained.biases)
    # Short training leaves real uncertainty: the comparison is made away from the saturated 0 and 1.
    assert probabilities.max() < 0.95
    model_bytes = trained.serialize_model(coral_file(EXTRACTOR))
    model = read_model(model_bytes)
    (output,) = model.output_tensors()
    assert output.shape == (1, 5) and output.type == "UINT8"
    assert [op.name for op in model.operators()][-2:] == ["FULLY_CONNECTED", "SOFTMAX"]
    assert_agrees_with_float(trained, model_bytes, pictures, embeddings)
    record_property("serialized_bytes", len(model_bytes))


def test_layer_on_the_edgetpu_twin_keeps_the_compiled_extractor_and_the_same_layer(trained):
    cpu_bytes = trained.serialize_model(coral_file(EXTRACTOR))
    compiled_bytes = trained.serialize_model(str(coral_file(EXTRACTOR_TWIN)))
    compiled = read_model(compiled_bytes)
    names = [op.name for op in compiled.operators()]
    assert names[0] == "edgetpu-custom-op" and names[-2:] == ["FULLY_CONNECTED", "SOFTMAX"]
    assert compiled.output_tensors()[0].shape == (1, 5)
    for cpu_part, compiled_part in zip(fully_connected_head(cpu_bytes), fully_connected_head(compiled_bytes)):
        if isinstance(cpu_part, Dequantized):
            assert np.array_equal(cpu_part.values, compiled_part.values) and cpu_part.step == compiled_part.step
        else:
            assert cpu_part == compiled_part


def int8_extractor(width, scale, zero_point):
    """An int8 extractor: [1, 2, 2, width] -> AVERAGE_POOL_2D -> [1, 1, 1, width], one quantization."""
    builder = ModelBuilder("int8 embedding extractor for tests")
    image = builder.tensor("image", [1, 2, 2, width], np.int8, scale, zero_point)
    pooled = builder.tensor("embedding", [1, 1, 1, width], np.int8, scale, zero_point)
    builder.operator("AVERAGE_POOL_2D", [image], [pooled], version=2, padding=1, strideW=2, strideH=2,
                     filterWidth=2, filterHeight=2)  # padding 1 = VALID
    return builder.finish([image], [pooled])


def test_layer_on_an_int8_extractor_runs_in_litert_and_agrees(tmp_path):
    width, classes, scale, zero_point = 16, 3, 0.05, -3
    path = tmp_path / "int8_extractor.tflite"
    path.write_bytes(int8_extractor(width, scale, zero_point))
    random = np.random.default_rng(5)
    centres = random.uniform(-60, 60, (classes, width))
    labels = np.repeat(np.arange(classes), 20)
    inputs = np.clip(np.round(centres[labels][:, None, None, :] + random.normal(0, 25, (len(labels), 2, 2, width))),
                     -128, 127).astype(np.int8)
    extractor = interpreter_of(path)
    features = np.stack([run_model(extractor, pixels) for pixels in inputs])
    model = SoftmaxRegression(width, classes, seed=1)
    model.train_with_sgd(dataset(features, labels), 30, 0.05, batch_size=20, print_every=0)
    assert model.get_accuracy(features, labels) > 0.9
    model_bytes = model.serialize_model(path)
    (output,) = read_model(model_bytes).output_tensors()
    assert output.type == "INT8" and output.shape == (1, classes)
    assert_agrees_with_float(model, model_bytes, inputs, features)


# --- one line for each bad input --------------------------------------------------------------------------

def two_d(rows=6):
    data = pycoral_gaussians(MEANS * 3, 12345)
    return {key: value[:rows] for key, value in data.items()}


def trained_2d():
    model = SoftmaxRegression(2, 3, seed=0)
    model.train_with_sgd(pycoral_gaussians(MEANS * 3, 12345), 2, 0.01, print_every=0)
    return model


def error_of(call):
    with pytest.raises(EdgekitError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_one_class_needs_another():
    data = two_d()
    data["labels_train"] = np.full(len(data["labels_train"]), 2)
    assert error_of(lambda: SoftmaxRegression(2, 3).train_with_sgd(data, 1, 0.1)) == (
        "labels_train holds only class 2, and softmax regression needs at least two classes: add embeddings "
        "of another class")
    assert error_of(lambda: SoftmaxRegression(2, 1)) == (
        "num_classes is 1, and softmax regression needs at least two classes: make the model with "
        "num_classes >= 2")


def test_features_of_the_wrong_width():
    data = two_d()
    data["data_train"] = np.zeros((len(data["labels_train"]), 3))
    assert error_of(lambda: SoftmaxRegression(2, 3).train_with_sgd(data, 1, 0.1)) == (
        "data_train has 3 features per row, but this SoftmaxRegression was made with feature_dim=2: give "
        "embeddings of the extractor the model is for, or make it with the embeddings' width")
    assert error_of(lambda: SoftmaxRegression(2, 3).get_accuracy(np.zeros((4, 5)), np.zeros(4, int))) == (
        "mat_x has 5 features per row, but this SoftmaxRegression was made with feature_dim=2: give "
        "embeddings of the extractor the model is for, or make it with the embeddings' width")
    assert error_of(lambda: SoftmaxRegression(2, 3).get_accuracy(np.zeros(4), np.zeros(4, int))) == (
        "mat_x has shape (4,), not (rows, 2): give one embedding per row")


@pytest.mark.parametrize("key, bad", [("labels_train", 3), ("labels_val", -1)])
def test_labels_outside_the_classes(key, bad):
    data = two_d()
    data[key] = data[key].copy()
    data[key][1] = bad
    assert error_of(lambda: SoftmaxRegression(2, 3).train_with_sgd(data, 1, 0.1)) == (
        f"{key} holds class id {bad}, outside [0, 3): give class ids 0..2, or make the model with more classes")


def test_labels_and_rows_must_pair_up_and_data_must_have_pycorals_keys():
    data = two_d()
    data["labels_train"] = data["labels_train"][:-1]
    assert error_of(lambda: SoftmaxRegression(2, 3).train_with_sgd(data, 1, 0.1)) == (
        "labels_train has shape (5,), but there are 6 rows of features: give one class id per row")
    data = two_d()
    del data["labels_val"]
    assert error_of(lambda: SoftmaxRegression(2, 3).train_with_sgd(data, 1, 0.1)) == (
        "data lacks labels_val: give a dict with data_train, labels_train, data_val, labels_val (pycoral's keys)")


def test_training_settings_are_checked():
    data = two_d()
    model = SoftmaxRegression(2, 3)
    assert error_of(lambda: model.train_with_sgd(data, 0, 0.1)) == (
        "num_iter must be a whole number of at least 1, not 0")
    assert error_of(lambda: model.train_with_sgd(data, 1, -0.1)) == (
        "learning_rate must be a finite number > 0, not -0.1")
    assert error_of(lambda: model.train_with_sgd(data, 1, 0.1, batch_size=0)) == (
        "batch_size must be a whole number of at least 1, not 0")
    nan_data = dict(data, data_train=np.full((6, 2), np.nan))
    assert error_of(lambda: model.train_with_sgd(nan_data, 1, 0.1)) == (
        "data_train holds NaN or infinite values: give finite embeddings")


def test_training_that_diverges_says_so():
    data = two_d()
    data["data_train"] = data["data_train"] * 1e30
    assert error_of(lambda: SoftmaxRegression(2, 3, seed=0).train_with_sgd(data, 5, 1e10, print_every=0)) == (
        "training diverged at iteration 0 (the loss or the weights overflowed): use a smaller learning_rate "
        "than 1e+10")


def test_serialize_before_training():
    assert error_of(lambda: SoftmaxRegression(1024, 3).serialize_model(coral_file(EXTRACTOR))) == (
        "Model is not trained: call train_with_sgd before serialize_model")


def test_extractor_of_another_width():
    path = coral_file(EXTRACTOR)
    assert error_of(lambda: trained_2d().serialize_model(path)) == (
        f"{path}: its embedding has 1024 values, but this SoftmaxRegression was trained on 2: give the "
        "extractor whose embeddings it was trained on")


def test_files_that_are_no_extractor(tmp_path):
    missing = tmp_path / "absent.tflite"
    assert error_of(lambda: trained_2d().serialize_model(missing)) == (
        f"{missing}: no such file")
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    assert error_of(lambda: trained_2d().serialize_model(text)).startswith(f"{text}: not a TFLite model")
    segmenter = coral_file("deeplabv3_mnv2_dm05_pascal_quant.tflite")
    message = error_of(lambda: trained_2d().serialize_model(segmenter))
    assert message.startswith(f"{segmenter}: ") and "not an embedding" in message


# --- TensorFlow-free ----------------------------------------------------------------------------------------

def test_pycoral_code_ports_by_its_import_and_never_loads_tensorflow():
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from edgekit.learn.backprop.softmax_regression import SoftmaxRegression\n"
        "from edgekit.learn.backprop import SoftmaxRegression as exported\n"
        "assert exported is SoftmaxRegression\n"
        "model = SoftmaxRegression(1024, 2, seed=0)\n"
        "rows = np.abs(np.random.default_rng(0).standard_normal((8, 1024)))\n"
        "labels = np.arange(8) % 2\n"
        "data = {'data_train': rows, 'labels_train': labels, 'data_val': rows, 'labels_val': labels}\n"
        "model.train_with_sgd(data, 3, 0.01, batch_size=4, print_every=0)\n"
        "assert model.serialize_model(sys.argv[1])[4:8] == b'TFL3'\n"
        "heavy = {'tensorflow', 'keras', 'tf_keras'} & set(sys.modules)\n"
        "assert not heavy, sorted(heavy)\n")
    result = subprocess.run([sys.executable, "-c", script, str(coral_file(EXTRACTOR))], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
