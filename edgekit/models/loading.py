"""`edgekit.models.load(path)`: your own Keras model from a `.keras` file, a legacy `.h5` file or a SavedModel
folder, with one-line errors for the usual mistakes (missing file, custom layers Keras cannot find, a
weights-only file, a folder that is not a SavedModel)."""

import os
import re
import zipfile

from edgekit.errors import EdgekitError


class ModelLoadError(EdgekitError):
    exit_code = 2


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _unknown_object(error):
    match = re.search(r"(?:Could not locate (?:class|function)|Unknown (?:layer|object)[^:']*:?) ?'?([\w.>-]+)'?",
                      str(error))
    return match.group(1) if match else None


def _custom_objects_advice(path, name):
    return ModelLoadError(f"{path}: the model uses '{name}', which Keras does not know: import the code that "
                          "defines it (decorated with @keras.saving.register_keras_serializable()) before "
                          "loading, or pass custom_objects={...}")


def _weights_only_h5(path):
    import h5py

    if path.lower().endswith(".weights.h5"):
        return True
    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as h5:
        return "model_config" not in h5.attrs


def _load_keras_file(path, custom_objects):
    import keras

    if path.lower().endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise ModelLoadError(f"{path}: corrupt .keras file (not a zip archive); save the model again with "
                                 "model.save('name.keras')")
        if "config.json" not in zipfile.ZipFile(path).namelist():
            raise ModelLoadError(f"{path}: the archive has no config.json, so it holds no model")
    elif _weights_only_h5(path):
        raise ModelLoadError(f"{path}: holds weights only, not a model: build the model first (e.g. "
                             "edgekit.models.create(name, weights=path)) or save the whole model as .keras")
    from edgekit.models.efficientdet_lite.detector import restore_attributes

    try:
        return restore_attributes(keras.models.load_model(path, custom_objects=custom_objects, compile=False))
    except (TypeError, ValueError) as e:
        unknown = _unknown_object(e)
        if unknown:
            raise _custom_objects_advice(path, unknown) from None
        raise ModelLoadError(f"{path}: cannot load the Keras model ({_first_line(e)})") from None
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise ModelLoadError(f"{path}: cannot load the Keras model ({_first_line(e)})") from None


def _load_saved_model(path):
    import keras
    import tensorflow as tf

    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ModelLoadError(f"{path}: a folder without saved_model.pb is not a SavedModel")
    try:
        signature = tf.saved_model.load(path).signatures["serving_default"]
    except KeyError:
        raise ModelLoadError(f"{path}: the SavedModel has no serving_default signature to call") from None
    except (ValueError, OSError) as e:
        raise ModelLoadError(f"{path}: cannot load the SavedModel ({_first_line(e)})") from None
    specs = list(signature.structured_input_signature[1].values())
    if len(specs) != 1 or specs[0].shape.rank != 4:
        raise ModelLoadError(f"{path}: serving_default must take one [batch, height, width, channels] image")
    shape = specs[0].shape.as_list()
    if None in shape[1:]:
        raise ModelLoadError(f"{path}: serving_default takes images of any size {shape}; edgekit needs a fixed "
                             "height and width")
    # A Keras model around the endpoint, so a SavedModel behaves like any other loaded model.
    images = keras.Input(tuple(shape[1:]), batch_size=shape[0], name="images")
    outputs = keras.layers.TFSMLayer(path, call_endpoint="serving_default")(images)
    if isinstance(outputs, dict) and len(outputs) == 1:
        outputs = next(iter(outputs.values()))
    return keras.Model(images, outputs, name=os.path.basename(os.path.normpath(path)))


def load(path, custom_objects=None):
    """A keras.Model from a `.keras` file, a legacy `.h5` file or a SavedModel folder."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        return _load_saved_model(path)
    if not path.lower().endswith((".keras", ".h5", ".hdf5")):
        raise ModelLoadError(f"{path}: not a Keras model file: give a .keras or .h5 file or a SavedModel folder")
    return _load_keras_file(path, custom_objects)
