"""One pure-Python reader of .tflite files, shared by the runtime, check, inspect and compile."""

from edgekit.tflite.model import EDGETPU_CUSTOM_OP, Model, Operator, Subgraph, Tensor, read_model

__all__ = ["EDGETPU_CUSTOM_OP", "Model", "Operator", "Subgraph", "Tensor", "read_model"]
