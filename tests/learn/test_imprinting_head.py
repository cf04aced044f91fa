"""pycoral's imprinting head written onto Coral's own uint8 embedding extractor (no TensorFlow): the head's
exact graph, its agreement with the cosine classifier computed in numpy, the engine's pycoral behaviour
(incremental training, keep_classes, libcoral's training metadata) and every refusal, word for word."""

import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
from testdata import coral_file

from edgekit.errors import EdgekitError
from edgekit.learn.imprinting.engine import ImprintingEngine, format_trained_classes, parse_trained_classes
from edgekit.tflite import heads
from edgekit.tflite.graph_edit import GraphEditor

EXTRACTOR = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
TRAIN = {"cat": ["cat_train_0"], "dog": ["dog_train_0"], "hotdog": ["hotdog_train_0", "hotdog_train_1"]}
TEST = {"cat": "cat_test_0", "dog": "dog_test_0", "hotdog": "hotdog_test_0"}
BASE = ("grace_hopper.bmp", "parrot.jpg")
# The highest probability a uint8 softmax can write: 255/256.
TOP_UINT8 = 255 / 256


def run(model_bytes, picture):
    """The dequantized output of `model_bytes` on a picture resized (Pillow bilinear) to its input."""
    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    size = tuple(int(v) for v in detail["shape"][1:3][::-1])
    pixels = np.asarray(Image.open(picture).convert("RGB").resize(size, Image.BILINEAR))
    interpreter.set_tensor(detail["index"], pixels[None])
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    scale, zero = out["quantization"]
    return (interpreter.get_tensor(out["index"]).astype(np.float64).ravel() - zero) * scale


def base_embedding(extractor, name):
    return run(extractor, coral_file(name))


def imprinting(name):
    return coral_file(f"imprinting/{name}.bmp")


@pytest.fixture(scope="module")
def extractor():
    return coral_file(EXTRACTOR).read_bytes()


@pytest.fixture(scope="module")
def embeddings(extractor):
    """Coral extractor's raw (unnormalized) embedding of every imprinting picture."""
    names = [n for files in TRAIN.values() for n in files] + list(TEST.values())
    return {name: run(extractor, imprinting(name)) for name in names}


@pytest.fixture(scope="module")
def base_model(tmp_path_factory, extractor, embeddings):
    """Coral's extractor with an imprinting head of two base classes: Grace Hopper and the parrot."""
    weights = np.stack([base_embedding(extractor, name) for name in BASE])
    path = tmp_path_factory.mktemp("head") / "base.tflite"
    path.write_bytes(heads.add_imprinting_head(extractor, weights))
    return path


def test_the_head_has_pycorals_contract(base_model):
    editor = GraphEditor.from_bytes(base_model.read_bytes())
    assert editor.op_names()[-6:] == ["AVERAGE_POOL_2D", "L2_NORMALIZATION", "CONV_2D", "MUL", "RESHAPE",
                                      "SOFTMAX"]
    head = heads.read_imprinting_head(editor)
    assert (head.embedding_dim, head.num_classes, head.dtype) == (1024, 2, np.uint8)
    assert head.scale == pytest.approx(heads.DEFAULT_IMPRINTING_SCALE, rel=1e-6)
    assert editor.shape(head.embedding) == [1, 1, 1, 1024]
    assert editor.shape(editor.graph.outputs[0]) == [1, 2]
    # The tensor an Edge TPU compile stops at is the extractor's own output, before the head.
    assert editor.graph.tensors[head.l2norm_input].name == b"MobilenetV1/Logits/AvgPool_1a/AvgPool"


def test_the_head_computes_the_scaled_cosine_softmax(embeddings):
    weights = heads.unit_rows(np.stack([embeddings["dog_train_0"], embeddings["cat_train_0"]]))
    model = heads.add_imprinting_head(coral_file(EXTRACTOR).read_bytes(), weights)
    for name in TEST.values():
        unit = embeddings[name] / np.linalg.norm(embeddings[name])
        logits = heads.DEFAULT_IMPRINTING_SCALE * weights @ unit
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        got = run(model, imprinting(name))
        assert np.abs(got - expected).max() < 0.03, (name, got, expected)


def test_extractor_returns_the_normalized_embedding(base_model, embeddings):
    engine = ImprintingEngine(base_model)
    extractor_model = engine.serialize_extractor_model()
    assert GraphEditor.from_bytes(extractor_model).op_names()[-2:] == ["AVERAGE_POOL_2D", "L2_NORMALIZATION"]
    got = run(extractor_model, imprinting("cat_test_0"))
    assert got.shape == (1024,) and np.linalg.norm(got) == pytest.approx(1.0, abs=0.02)
    raw = embeddings["cat_test_0"]
    assert float(got @ raw / np.linalg.norm(raw)) > 0.999


def imprint(engine, first_id=0):
    extractor = engine.serialize_extractor_model()
    for offset, (label, files) in enumerate(TRAIN.items()):
        for name in files:
            engine.train(run(extractor, imprinting(name)), first_id + offset, label=label)


def test_pycorals_imprinting_scenario_on_corals_extractor(base_model):
    """pycoral's imprinting_engine_test: cat 0, dog 1, hot dog 2 from the train pictures; each test picture
    is then top-1 with a score above 0.99 (here the uint8 softmax's ceiling)."""
    engine = ImprintingEngine(base_model, keep_classes=False)
    assert (engine.num_classes, engine.embedding_dim) == (0, 1024)
    imprint(engine)
    model = engine.serialize_model()
    for class_id, label in enumerate(TEST):
        scores = run(model, imprinting(TEST[label]))
        assert scores.argmax() == class_id and scores[class_id] >= TOP_UINT8 - 1e-9, (label, scores)


def test_keep_classes_appends_after_the_base_classes(base_model):
    engine = ImprintingEngine(base_model, keep_classes=True)
    assert engine.num_classes == 2
    imprint(engine, first_id=2)
    model = engine.serialize_model()
    assert ImprintingEngine(model, keep_classes=True).labels == ["0", "1", "cat", "dog", "hotdog"]
    for offset, label in enumerate(TEST):
        scores = run(model, imprinting(TEST[label]))
        assert scores.argmax() == 2 + offset, (label, scores)


def test_incremental_training_on_a_saved_model_keeps_earlier_classes(base_model, tmp_path):
    first = ImprintingEngine(base_model)
    extractor = first.serialize_extractor_model()
    first.train(run(extractor, imprinting("cat_train_0")), 0, label="cat")
    first.train(run(extractor, imprinting("dog_train_0")), 1, label="dog")
    saved = tmp_path / "two.tflite"
    saved.write_bytes(first.serialize_model())
    assert parse_trained_classes(GraphEditor.from_bytes(saved.read_bytes()).model.description).keys() == {0, 1}

    later = ImprintingEngine(saved, keep_classes=True)
    assert later.num_classes == 2 and later.labels == ["cat", "dog"]
    for name in TRAIN["hotdog"]:
        later.train(run(extractor, imprinting(name)), 2, label="hotdog")
    # An imprinted class of a saved model takes more shots: its stored sum is averaged with them.
    later.train(run(extractor, imprinting("cat_train_0")), 0)
    model = later.serialize_model()
    for class_id, label in enumerate(TEST):
        assert run(model, imprinting(TEST[label])).argmax() == class_id, label


def test_serializing_again_does_not_grow_the_model(base_model, embeddings):
    engine = ImprintingEngine(base_model)
    engine.train(embeddings["cat_train_0"], 0)
    sizes = []
    for _ in range(3):
        engine.train(embeddings["cat_train_0"], 0)
        sizes.append(len(engine.serialize_model()))
    assert sizes[0] == sizes[1] == sizes[2]


def test_libcorals_description_format_round_trips():
    text = format_trained_classes({2: 1.5, 0: 3.25})
    assert text == "0 3.250000\n2 1.500000\n"
    assert parse_trained_classes(text) == {0: 3.25, 2: 1.5}
    assert parse_trained_classes("MLIR Converted.") == {}


def test_pycoral_messages_and_bad_input(base_model, extractor, embeddings):
    with pytest.raises(EdgekitError, match="^Model is not trained.$"):
        ImprintingEngine(base_model).serialize_model()
    plain = coral_file(EXTRACTOR)
    with pytest.raises(EdgekitError) as caught:
        ImprintingEngine(plain)
    assert str(caught.value) == (
        f"{plain}: not an imprinting model: it has no L2_NORMALIZATION op; make one with `edgekit convert "
        "efficientnet-lite0 --imprinting` (or add the head to an embedding extractor with "
        "edgekit.tflite.heads.add_imprinting_head)")
    engine = ImprintingEngine(base_model, keep_classes=True)
    with pytest.raises(EdgekitError) as caught:
        engine.train(np.ones(1000), 2)
    assert str(caught.value) == (f"the embedding has 1000 values, but {base_model} takes 1024: give the output "
                                 "of serialize_extractor_model()'s model")
    with pytest.raises(EdgekitError) as caught:
        engine.train(embeddings["cat_train_0"], 5)
    assert str(caught.value) == "class id 5 is out of range: the engine holds 2 classes, so a new class takes id 2"
    with pytest.raises(EdgekitError) as caught:
        engine.train(embeddings["cat_train_0"], 1)
    assert str(caught.value) == ("class 1 (1) is one of the base model's classes and cannot be trained by "
                                 "imprinting; new classes start at id 2")
    with pytest.raises(EdgekitError, match="all zeros"):
        engine.train(np.zeros(1024), 2)
    with pytest.raises(EdgekitError) as caught:
        heads.add_imprinting_head(extractor, np.ones((3, 1000)))
    assert str(caught.value) == "model: class weights [3, 1000] do not fit its 1024-wide embedding; give [classes, 1024]"


def test_learning_never_imports_tensorflow(base_model):
    code = ("import sys\nfrom edgekit.learn import ImprintingEngine, SoftmaxRegression\n"
            "import edgekit.learn.pictures, edgekit.cli.cmd_learn\n"
            f"e = ImprintingEngine({str(base_model)!r}); e.serialize_extractor_model()\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')], 'TF imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
