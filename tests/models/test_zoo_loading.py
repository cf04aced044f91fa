"""`edgekit.models.load(path)`: .keras, legacy .h5 and SavedModel folders load; the usual mistakes give one
clear EdgekitError each (missing file, unregistered custom layer, weights-only file, not a model)."""

import numpy as np
import pytest

from edgekit import models
from edgekit.errors import EdgekitError

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


class Doubling(keras.layers.Layer):
    """A custom layer deliberately left unregistered."""

    def call(self, x):
        return x * 2.0


def small_model(custom=False):
    keras.utils.set_random_seed(0)
    images = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu6")(images)
    if custom:
        x = Doubling()(x)
    x = keras.layers.AveragePooling2D(8)(x)
    return keras.Model(images, keras.layers.Dense(3)(keras.layers.Flatten()(x)))


@pytest.fixture(scope="module")
def sample():
    return np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_files_load(tmp_path, sample, suffix):
    model = small_model()
    path = tmp_path / f"small{suffix}"
    model.save(path)
    loaded = models.load(path)
    np.testing.assert_allclose(loaded.predict(sample, verbose=0), model.predict(sample, verbose=0), atol=1e-6)


def test_saved_model_folders_load(tmp_path, sample):
    model = small_model()
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
    archive.write_out(str(tmp_path / "sm"), verbose=False)
    loaded = models.load(tmp_path / "sm")
    assert loaded.input_shape == (1, 16, 16, 3)
    np.testing.assert_allclose(loaded.predict(sample, verbose=0), model.predict(sample, verbose=0), atol=1e-5)


def test_missing_file(tmp_path):
    with pytest.raises(EdgekitError, match="no such file"):
        models.load(tmp_path / "absent.keras")


def test_custom_layer_not_registered(tmp_path):
    path = tmp_path / "custom.keras"
    small_model(custom=True).save(path)
    with pytest.raises(EdgekitError, match="Doubling.*register_keras_serializable"):
        models.load(path)
    # Given the class, the same file loads.
    assert models.load(path, custom_objects={"Doubling": Doubling}).output_shape == (1, 3)


def test_not_a_model(tmp_path):
    weights_only = tmp_path / "small.weights.h5"
    small_model().save_weights(weights_only)
    with pytest.raises(EdgekitError, match="weights only"):
        models.load(weights_only)
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(EdgekitError, match="corrupt .keras file"):
        models.load(text)
    (tmp_path / "folder").mkdir()
    with pytest.raises(EdgekitError, match="not a SavedModel"):
        models.load(tmp_path / "folder")
    with pytest.raises(EdgekitError, match="not a Keras model file"):
        models.load(text.with_suffix(".txt").write_text("x") and text.with_suffix(".txt"))
