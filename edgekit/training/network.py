"""The network `edgekit train` fits: a zoo backbone (or a user's own classifier's) cut at its pooled features,
a new head of dropout, dense and softmax, the loss and optimizer of a phase, and the random state of its
dropout layers. Imported only from inside training functions: it imports Keras.
"""

import os

import keras
import numpy as np

from edgekit.errors import EdgekitError


class TrainingError(EdgekitError):
    exit_code = 2


def _without_fixed_batch(model):
    """The same network taking any batch size (a model saved for export may fix its batch at 1)."""
    shape = model.inputs[0].shape
    if shape[0] is None:
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, *layer["config"]["batch_shape"][1:]]
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _feature_tensor(model, path):
    """The pooled features a user's classifier feeds its last dense layer with (dropout skipped)."""
    if any(layer.name == "flatten" for layer in model.layers):
        return model.get_layer("flatten").output
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise TrainingError(f"{path}: the model has no Dense layer to replace with a new head; give an image "
                            "classifier, or a zoo model name")
    tensor = dense[-1].input
    while tensor._keras_history.operation.__class__.__name__ == "Dropout":
        tensor = tensor._keras_history.operation.input
    if len(tensor.shape) != 2:
        raise TrainingError(f"{path}: the last Dense layer takes {list(tensor.shape)} tensors, not pooled "
                            "features [batch, channels]; give an image classifier")
    return tensor


def backbone_for(model, weights, input_size):
    """(feature extractor taking raw pixels [None, H, W, 3] -> [None, F], model name, mean, std)."""
    from edgekit import models

    if weights is not None and os.path.exists(os.fspath(weights)) and str(weights).lower().endswith(".keras"):
        loaded = _without_fixed_batch(models.load(weights))
        features = keras.Model(loaded.inputs[0], _feature_tensor(loaded, weights), name=loaded.name)
        return features, model
    features = models.create(model, weights=weights, input_size=input_size, include_top=False, batch_size=None)
    return features, model


def attach_head(features, num_classes, phase_recipe, name, seed):
    """The whole classifier: the feature extractor, then dropout, dense (L2 on its kernel) and softmax, as
    one flat functional model (no nested model), so its layers convert and save like the zoo's. The head's
    initial weights come from `seed` itself: Keras' global seed generator outlives `set_random_seed`, so
    an unseeded initializer would differ between two runs in one process."""
    x = features.outputs[0]
    x = keras.layers.Dropout(phase_recipe.dropout, name="top_dropout", seed=seed)(x)
    initializer = keras.initializers.VarianceScaling(1.0 / 3.0, "fan_out", "uniform", seed=seed)
    x = keras.layers.Dense(num_classes, name="predictions", kernel_initializer=initializer,
                           kernel_regularizer=keras.regularizers.L2(phase_recipe.head_l2))(x)
    x = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(features.inputs[0], x, name=name.replace("-", "_"))


def head_of(model, feature_size):
    """A model from pooled features to class scores sharing the head layers of `model`."""
    inputs = keras.Input((feature_size,), name="features")
    x = inputs
    for name in ("top_dropout", "predictions", "probabilities"):
        x = model.get_layer(name)(x)
    return keras.Model(inputs, x, name="head")


def phase_loss(phase_recipe):
    return keras.losses.CategoricalCrossentropy(label_smoothing=phase_recipe.label_smoothing)


def phase_optimizer(phase_recipe, steps_per_epoch):
    rate = phase_recipe.learning_rate
    if phase_recipe.cosine:
        warmup = phase_recipe.warmup_epochs * steps_per_epoch
        total = max(1, phase_recipe.epochs * steps_per_epoch - warmup)
        rate = keras.optimizers.schedules.CosineDecay(0.0 if warmup else rate, total, warmup_target=rate if warmup
                                                      else None, warmup_steps=warmup)
    return keras.optimizers.SGD(learning_rate=rate, momentum=phase_recipe.momentum,
                                weight_decay=getattr(phase_recipe, "weight_decay", None))


def current_rate(optimizer):
    rate = optimizer.learning_rate
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)


def reseed_dropout(model, seed, epoch):
    """Give every dropout layer's random state a value derived from (seed, epoch, layer): an epoch's masks are
    then the same whether or not the run was resumed before it."""
    for index, layer in enumerate(model.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            value = (seed * 1_000_003 + epoch * 10_007 + index) % (2 ** 31 - 1)
            generator.state.assign(np.array([value, 0], dtype=str(generator.state.dtype)))


def set_drop_connect(features, rate):
    """Set the backbone's drop-connect rates (a number for all, or a list as returned); returns the old ones."""
    drops = [layer for layer in features.layers if isinstance(layer, keras.layers.Dropout)]
    before = [layer.rate for layer in drops]
    if rate is not None:
        for layer, value in zip(drops, rate if isinstance(rate, list) else [rate] * len(drops)):
            layer.rate = value
    return before
