"""pycoral's own on-device learning scenarios, against edgekit's API, on EfficientNet-Lite0 models made by
`edgekit convert --imprinting` / `--embedding` (ImageNet weights, 224 pixels, full int8):

- imprinting_engine_test: imprint cat = 0, dog = 1, hot dog = 2 from the train pictures; each test picture
  is then top-1 with a score above 0.99; with keep_classes the new ids follow the base model's classes, and
  cat scores above 0.99 and hot dog above 0.92; training goes on from a saved model, earlier classes kept.
- softmax_regression_test: a layer trained on the extractor's embeddings and serialized onto it runs in any
  TFLite interpreter (pycoral: 5 classes onto its 1024-d extractor; here the Lite0 one, 1280-d).
Everything after the conversion runs without TensorFlow (the conversion itself is the build side's).
"""

import numpy as np
import pytest
from learn_models import EMBEDDING_DIM, IMAGENET_CLASSES, embedding_model_path, imprinting_model_path
from testdata import coral_file

from edgekit.learn.backprop.softmax_regression import SoftmaxRegression
from edgekit.learn.imprinting.engine import ImprintingEngine
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner
from edgekit.runtime.tasks import CLASSIFICATION

__all__ = ["embedding_model_path", "imprinting_model_path"]

pytestmark = pytest.mark.usefixtures("no_edgetpu_library")

TRAIN = {"cat": ["cat_train_0"], "dog": ["dog_train_0"], "hotdog": ["hotdog_train_0", "hotdog_train_1"]}
TEST = {"cat": "cat_test_0", "dog": "dog_test_0", "hotdog": "hotdog_test_0"}


def outputs(model_path, names):
    """The dequantized output of the model at `model_path` for each imprinting picture, as `edgekit run`
    prepares it (the model's own resize and normalisation)."""
    runner = Runner(open_model(str(model_path), device="cpu"), task=CLASSIFICATION)
    return [np.asarray(r.scores, np.float64) for r in
            runner.run_images([coral_file(f"imprinting/{name}.bmp") for name in names])]


def imprint(engine, scratch, first_id):
    extractor = scratch / "extractor.tflite"
    extractor.write_bytes(engine.serialize_extractor_model())
    for offset, (label, names) in enumerate(TRAIN.items()):
        for embedding in outputs(extractor, names):
            engine.train(embedding, first_id + offset, label=label)


def test_imprinting_new_classes(imprinting_model_path, tmp_path):
    engine = ImprintingEngine(imprinting_model_path, keep_classes=False)
    assert (engine.embedding_dim, engine.num_classes) == (EMBEDDING_DIM, 0)
    imprint(engine, tmp_path, first_id=0)
    model = tmp_path / "pets.tflite"
    model.write_bytes(engine.serialize_model())
    for class_id, scores in enumerate(outputs(model, TEST.values())):
        assert scores.shape == (3,) and scores.argmax() == class_id and scores[class_id] > 0.99, scores


def test_imprinting_keeps_the_base_classes(imprinting_model_path, tmp_path):
    engine = ImprintingEngine(imprinting_model_path, keep_classes=True)
    assert engine.num_classes == IMAGENET_CLASSES and not any(engine.trainable)
    imprint(engine, tmp_path, first_id=IMAGENET_CLASSES)
    model = tmp_path / "pets.tflite"
    model.write_bytes(engine.serialize_model())
    cat, dog, hotdog = outputs(model, TEST.values())
    assert cat.shape == (IMAGENET_CLASSES + 3,)
    assert cat.argmax() == IMAGENET_CLASSES and cat[IMAGENET_CLASSES] > 0.99, np.sort(cat)[-3:]
    assert dog.argmax() == IMAGENET_CLASSES + 1, np.sort(dog)[-3:]
    assert hotdog.argmax() == IMAGENET_CLASSES + 2 and hotdog[IMAGENET_CLASSES + 2] > 0.92, np.sort(hotdog)[-3:]
    assert ImprintingEngine(model, keep_classes=True).labels[-3:] == ["cat", "dog", "hotdog"]


def test_training_goes_on_from_a_saved_model(imprinting_model_path, tmp_path):
    first = ImprintingEngine(imprinting_model_path)
    imprint_only = dict(TRAIN)
    extractor = tmp_path / "extractor.tflite"
    extractor.write_bytes(first.serialize_extractor_model())
    for class_id, label in enumerate(("cat", "dog")):
        for embedding in outputs(extractor, imprint_only[label]):
            first.train(embedding, class_id, label=label)
    saved = tmp_path / "cat_dog.tflite"
    saved.write_bytes(first.serialize_model())

    later = ImprintingEngine(saved, keep_classes=True)
    assert later.num_classes == 2 and later.trainable == [True, True] and later.labels == ["cat", "dog"]
    for embedding in outputs(extractor, TRAIN["hotdog"]):
        later.train(embedding, 2, label="hotdog")
    model = tmp_path / "pets.tflite"
    model.write_bytes(later.serialize_model())
    for class_id, scores in enumerate(outputs(model, TEST.values())):
        assert scores.argmax() == class_id and scores[class_id] > 0.99, scores


def test_softmax_regression_serialized_onto_the_lite0_extractor(embedding_model_path, tmp_path):
    pictures = {"cat": ["cat_train_0", "cat_test_0"], "dog": ["dog_train_0", "dog_test_0"],
                "hotdog": ["hotdog_train_0", "hotdog_train_1", "hotdog_test_0"]}
    features, labels = [], []
    for class_id, names in enumerate(pictures.values()):
        rows = outputs(embedding_model_path, names)
        features += rows
        labels += [class_id] * len(rows)
    # Two more classes, as pycoral's test serializes five: the embeddings of Coral's other pictures.
    for class_id, name in ((3, "grace_hopper.bmp"), (4, "parrot.jpg")):
        runner = Runner(open_model(str(embedding_model_path), device="cpu"), task=CLASSIFICATION)
        features.append(np.asarray(runner.run_image(coral_file(name)).scores, np.float64))
        labels.append(class_id)
    features, labels = np.stack(features), np.array(labels)
    assert features.shape == (len(labels), EMBEDDING_DIM)
    model = SoftmaxRegression(EMBEDDING_DIM, 5, seed=0)
    data = {"data_train": features, "labels_train": labels, "data_val": features, "labels_val": labels}
    model.train_with_sgd(data, num_iter=300, learning_rate=0.05, batch_size=8, print_every=0)
    assert model.get_accuracy(features, labels) == 1.0
    out = tmp_path / "five.tflite"
    out.write_bytes(model.serialize_model(str(embedding_model_path)))
    scores = outputs(out, [n for names in pictures.values() for n in names])
    assert [s.argmax() for s in scores] == list(labels[:len(scores)])
