"""Get a Keras model from what the user named (a zoo name, a .keras/.h5 file, a SavedModel folder) and
export it as a SavedModel whose one endpoint takes a fixed [1, H, W, C] batch.

Why a SavedModel in between: TF 2.21's `from_concrete_functions` with a Keras 3 model converts without
error into a model with unresolved variables and NaN outputs; a Keras `ExportArchive` endpoint with a
static input signature plus `from_saved_model` converts correctly and fixes the batch at 1 (a dynamic batch
leaves SHAPE / STRIDED_SLICE / PACK on int32 tensors, which the Edge TPU cannot map).
"""

import os
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError

# model: the Keras model; name: file-name stem for outputs; source: provenance text; zoo: the zoo entry or None.
Loaded = namedtuple("Loaded", "model name source zoo")
# A classifier cut for on-device learning. model: from the same input to the pooled features [batch, D] its
# last Dense layer reads; class_weights: that layer's kernel as one row per class (N, D), float32.
PooledFeatures = namedtuple("PooledFeatures", "model class_weights")
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


class ModelSourceError(EdgekitError):
    exit_code = 2


def zoo_names():
    from edgekit import models

    return list(models.list_models())


def _looks_like_zoo_name(spec):
    """A bare name (no folder part, no file suffix) that is not a file here: ask the zoo."""
    return (isinstance(spec, str) and not os.path.exists(spec) and os.sep not in spec and "/" not in spec
            and not spec.lower().endswith(KERAS_SUFFIXES + (".tflite", ".pb")))


def fold_input_normalization(model):
    """(model without its leading Rescaling layer, mean, std) when the model starts by normalising raw pixels
    with one scalar scale and offset; else None.

    Why: the normalisation then moves into the input's quantization (for Lite models (pixel - 127) / 128
    becomes scale 1/128, zero point 127), so raw uint8 pixels feed the Edge TPU with no rescaling op."""
    import keras

    layers = getattr(model, "layers", [])
    if len(layers) < 2 or not isinstance(layers[1], keras.layers.Rescaling):
        return None
    rescaling = layers[1]
    scale, offset = (np.asarray(v, np.float64) for v in (rescaling.scale, rescaling.offset))
    if scale.size != 1 or offset.size != 1 or float(scale) == 0.0:
        return None
    try:
        inner = keras.Model(rescaling.output, model.outputs, name=model.name)
    except (ValueError, TypeError):     # the raw input feeds other layers too: keep the model whole
        return None
    for attribute in ("edgekit_task", "edgekit_num_classes", "edgekit_anchors"):
        if hasattr(model, attribute):
            setattr(inner, attribute, getattr(model, attribute))
    scale, offset = float(scale), float(offset)
    return inner, -offset / scale, 1.0 / scale


def load_keras(spec, weights=None, num_classes=None):
    """A `Loaded` for a zoo name, a Keras file or a SavedModel folder; clear errors for everything else."""
    from edgekit import models

    if _looks_like_zoo_name(spec):
        kwargs = {"weights": weights} if weights else {}
        if num_classes:
            kwargs["num_classes"] = num_classes
        try:
            model = models.create(spec, **kwargs)
        except EdgekitError:
            raise               # the zoo's own message (unknown name with close matches, missing weights)
        except ImportError as e:
            raise ModelSourceError(f"{spec}: the model zoo cannot build it here ({e})") from None
        except (ValueError, OSError) as e:
            raise ModelSourceError(f"{spec}: cannot build the zoo model ({e})") from None
        return Loaded(model, spec.replace("/", "_"), f"zoo:{spec}" + (f" weights={weights}" if weights else ""),
                      spec)
    path = os.fspath(spec)
    if not os.path.exists(path):
        known = ", ".join(zoo_names()) or "none installed"
        raise ModelSourceError(f"{path}: no such model file or folder, and not a zoo model name (zoo: {known})")
    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    if not os.path.isdir(path) and not path.lower().endswith(KERAS_SUFFIXES):
        raise ModelSourceError(f"{path}: not a Keras model: give a .keras or .h5 file, a SavedModel folder, or a "
                               "zoo name")
    # The zoo's loader turns Keras' and TensorFlow's own failures (corrupt archives, unknown custom layers,
    # folders that are not SavedModels) into one-line errors.
    return Loaded(models.load(path), name, os.path.abspath(path), None)


def input_shape(model):
    """(H, W, C) of the model's single image input."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ModelSourceError(f"the model has {len(shape)} inputs; edgekit converts single-image models")
        shape = shape[0]
    if shape is None or len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ModelSourceError(f"the model's input shape {shape} is not a fixed [batch, H, W, C] image; build it "
                               "with a fixed input size, e.g. keras.Input((224, 224, 3))")
    return tuple(int(d) for d in shape[1:])


def pooled_features(model, source):
    """`model`, a classifier, cut at the pooled features its last Dense layer reads (Dropout skipped, as it
    does nothing at inference), with that layer's kernel as class rows; one-line errors for other models.

    The cut keeps the model's input and its leading normalisation, so it converts like the whole classifier
    and takes the same raw pixels."""
    import keras

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ModelSourceError(f"{source}: no Dense layer gives this model its classes, so there are no pooled "
                               "features to cut at: --embedding and --imprinting take an image classifier (a zoo "
                               "EfficientNet-Lite or a .keras file from `edgekit train`)")
    head = dense[-1]
    features = head.input
    while isinstance(features._keras_history.operation, keras.layers.Dropout):
        features = features._keras_history.operation.input
    if len(features.shape) != 2:
        raise ModelSourceError(f"{source}: its last Dense layer reads {list(features.shape)} tensors, not pooled "
                               "features [batch, channels]: give an image classifier whose head pools first")
    cut = keras.Model(model.inputs, features, name=f"{model.name}_features")
    if hasattr(model, "edgekit_raw_pixels"):
        cut.edgekit_raw_pixels = model.edgekit_raw_pixels
    kernel = np.asarray(keras.ops.convert_to_numpy(head.kernel), np.float32)
    return PooledFeatures(cut, np.ascontiguousarray(kernel.T))


def export_fixed_batch(model, folder, shape, wrap=None):
    """Write a SavedModel at `folder` whose `serving_default` takes float32 [1, *shape].

    `wrap(outputs) -> outputs` adds graph after the model (detection post-processing)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        outputs = model(images, training=False)
        return wrap(outputs) if wrap else outputs

    archive.add_endpoint(name="serving_default", fn=serve,
                         input_signature=[tf.TensorSpec([1, *shape], tf.float32, name="images")])
    archive.write_out(folder, verbose=False)
    return folder
