"""edgekit: Keras EfficientNet-Lite / EfficientDet-Lite to the Coral Edge TPU, and a runtime to run them."""

__version__ = "0.1.0"
