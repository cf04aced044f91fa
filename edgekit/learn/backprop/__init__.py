"""Last-layer training on embeddings (pycoral's `pycoral.learn.backprop`), in numpy."""

from edgekit.learn.backprop.softmax_regression import SoftmaxRegression

__all__ = ["SoftmaxRegression"]
