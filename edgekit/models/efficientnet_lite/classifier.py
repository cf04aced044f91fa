"""EfficientNet-Lite image classifier: backbone, full-map average pool, dropout, dense head."""

import keras
from keras import layers

from edgekit.models.efficientnet_lite.backbone import efficientnet_lite_features
from edgekit.runtime.tasks import CLASSIFICATION

# The layers that depend on num_classes: left at their initial values when pretrained weights come from a
# checkpoint with another class count.
HEAD_LAYERS = ("predictions",)


def build_classifier(width, depth, input_size, num_classes=1000, dropout=0.2, weights=None, batch_size=1,
                     classifier_activation="softmax", include_top=True, name="efficientnet-lite"):
    """Build the classifier for raw RGB pixels [0, 255] of shape [batch_size, height, width, 3].

    batch_size defaults to 1 so the model exports with static shapes (a dynamic batch leaves SHAPE /
    STRIDED_SLICE / PACK ops the Edge TPU cannot map); pass None for training on larger batches.
    classifier_activation: "softmax" (the default, like Keras applications) or None for logits.
    include_top=False ends at the pooled 1280 features."""
    height, width_px = input_size
    images = keras.Input((height, width_px, 3), batch_size=batch_size, name="images")
    x, _ = efficientnet_lite_features(images, width, depth)
    # A pooling window over the whole map converts to AVERAGE_POOL_2D; global pooling would become MEAN,
    # which older Edge TPU compilers map poorly.
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="avg_pool")(x)
    x = layers.Reshape((x.shape[-1],), name="flatten")(x)
    if include_top:
        if dropout:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(num_classes, name="predictions",
                         kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_out", "uniform"))(x)
        if classifier_activation is not None:
            x = layers.Activation(classifier_activation, name="probabilities")(x)
    model = keras.Model(images, x, name=name.replace("-", "_"))
    model.edgekit_task = CLASSIFICATION
    model.edgekit_num_classes = num_classes if include_top else None
    # Normalisation is inside: the model takes raw pixels (mean 0, std 1 from the outside).
    model.edgekit_raw_pixels = True
    if weights is not None:
        from edgekit.models import weights as weight_loading

        weight_loading.load_weights(model, weights, model_name=name, head_layers=HEAD_LAYERS)
    return model
