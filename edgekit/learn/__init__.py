"""On-device learning without TensorFlow, with pycoral's API: weight imprinting
(`imprinting.engine.ImprintingEngine`) and last-layer softmax regression
(`backprop.softmax_regression.SoftmaxRegression`), both editing the .tflite file through `edgekit.tflite`;
`pictures` learns from folders of pictures (`edgekit learn`), `teach` from a camera in a browser page."""

from edgekit.learn.backprop.softmax_regression import SoftmaxRegression
from edgekit.learn.imprinting.engine import ImprintingEngine

__all__ = ["ImprintingEngine", "SoftmaxRegression"]
