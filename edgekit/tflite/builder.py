"""Write small, real quantized .tflite models with the flatbuffers package (no TensorFlow, no downloads).

`make demo` runs on a fresh machine with no test data and no model hub, so edgekit makes the model it
demonstrates: `colour_classifier` is a genuine uint8 image classifier, built only from ops the Edge TPU
compiler maps, at op versions compiler 16 parses, that LiteRT runs and edgekit reads like any other model.
Tests build their models with `ModelBuilder` too.

Tensors and operators are added through `graph_edit.GraphEditor`, which also edits existing models.
"""

import numpy as np

from edgekit.tflite.graph_edit import GraphEditor
from edgekit.tflite.schema import BUILTIN_OPS

COLOUR_LABELS = ("red", "green", "blue", "yellow", "white", "black")

# The classifier sees only the picture's mean colour x = (r, g, b), each in [-1, 1) as (pixel - 128) / 128,
# and scores each label by w . x + b (rows follow COLOUR_LABELS). The weights were fit by multinomial
# logistic regression on the mean colours of synthetic pictures (one label's shade covering 55-100% of
# the picture, the rest one or two other shades), then rounded. A hand-placed "nearest corner of the RGB
# cube" rule does as well on pure colours, but not on pictures such as a red fruit on a white plate,
# whose mean is pink: the fit learnt that red is told from yellow by green against blue, not by red.
_COLOUR_WEIGHTS = np.array([
    [7.9, -7.4, -3.7],    # red
    [-7.6, 7.9, -3.4],    # green
    [-4.8, -5.1, 8.9],    # blue
    [5.5, 5.6, -5.4],     # yellow
    [4.0, 4.2, 7.6],      # white
    [-5.0, -5.2, -4.0],   # black
], dtype=np.float64)
_COLOUR_BIASES = np.array([-0.8, -0.7, 1.1, -0.1, 1.5, -1.0], dtype=np.float64)
# Sharpens the fitted scores so that a clear majority colour scores well above one half; the order of the
# scores, and so every answer, stays the fit's.
_COLOUR_SHARPNESS = 1.3

# Each op's version -> the first TensorFlow Lite release that runs it (from TensorFlow's
# lite/tools/versioning/runtime_version.cc); the model's "min_runtime_version" entry is the latest of them,
# as the TFLite converter writes it.
_MIN_RUNTIME = {
    ("AVERAGE_POOL_2D", 1): "1.5.0", ("AVERAGE_POOL_2D", 2): "1.14.0",
    ("RESHAPE", 1): "1.5.0",
    ("FULLY_CONNECTED", 1): "1.5.0", ("FULLY_CONNECTED", 2): "1.10.0", ("FULLY_CONNECTED", 3): "1.14.0",
    ("FULLY_CONNECTED", 4): "1.14.0",
    ("SOFTMAX", 1): "1.5.0", ("SOFTMAX", 2): "1.14.0",
}

def _version_key(version):
    return tuple(int(part) for part in version.split("."))


class ModelBuilder(GraphEditor):
    """One subgraph's tensors and operators, packed into .tflite bytes by `finish` (see GraphEditor's
    `tensor` and `operator`)."""

    def __init__(self, description="written by edgekit"):
        super().__init__()
        self.model.description = description
        self.metadata = {}

    @property
    def codes(self):
        """(builtin name, version) of each operator code, index = opcode index."""
        return [(BUILTIN_OPS[max(c.builtinCode, c.deprecatedBuiltinCode)], c.version)
                for c in self.model.operatorCodes]

    def min_runtime_version(self):
        """The oldest TFLite runtime for the ops used so far, or None when one is not in the table."""
        versions = [_MIN_RUNTIME.get(code) for code in self.codes]
        if not versions or None in versions:
            return None
        return max(versions, key=_version_key)

    def finish(self, inputs, outputs, name="main"):
        """The model as .tflite bytes (file identifier TFL3)."""
        fb = self._fb
        self.graph.name = name
        self.graph.inputs, self.graph.outputs = list(inputs), list(outputs)
        entries = []
        metadata = dict(self.metadata)
        runtime = self.min_runtime_version()
        if runtime is not None:
            # The converter stores the version string zero-padded to 16 bytes; Coral's models carry it.
            metadata.setdefault("min_runtime_version", runtime.encode("ascii").ljust(16, b"\0"))
        for key, value in metadata.items():
            buffer = fb.BufferT()
            buffer.data = np.frombuffer(bytes(value), dtype=np.uint8)
            self.model.buffers.append(buffer)
            entry = fb.MetadataT()
            entry.name, entry.buffer = key, len(self.model.buffers) - 1
            entries.append(entry)
        self.model.metadata = entries or None
        return self.to_bytes()


def colour_classifier(size=96):
    """A uint8 [1, size, size, 3] classifier telling which of COLOUR_LABELS dominates a picture.

    AVERAGE_POOL_2D over the whole picture -> RESHAPE [1, 3] -> FULLY_CONNECTED -> SOFTMAX [1, 6]. The
    input takes raw pixels and is quantized like Coral's classifiers (scale 1/128, zero point 128, i.e.
    (pixel - 128) / 128); the output is uint8 probabilities at scale 1/256.

    The weights are uint8 like every other tensor, as in Coral's uint8 classifiers. int8 weights would
    need int8 activations to be consistent, hence QUANTIZE ops after the raw-pixel input and before the
    output (runtime 13+, and the compiler usually leaves an input QUANTIZE on the CPU). LiteRT does run
    uint8 activations against int8 weights, but no converter writes that mix and nothing documents what
    the Edge TPU compiler makes of it. All-uint8 keeps every op at version 1, which every compiler and
    runtime parses.
    """
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    labels = len(COLOUR_LABELS)
    weights = _COLOUR_WEIGHTS * _COLOUR_SHARPNESS
    biases = _COLOUR_BIASES * _COLOUR_SHARPNESS

    m = ModelBuilder("edgekit colour classifier (mean colour -> dominant colour)")
    pixel_scale, pixel_zero = 1.0 / 128, 128
    image = m.tensor("image", [1, size, size, 3], np.uint8, pixel_scale, pixel_zero)
    # Averaging keeps the input's quantization (LiteRT requires it for quantized AVERAGE_POOL_2D).
    pooled = m.tensor("mean_colour", [1, 1, 1, 3], np.uint8, pixel_scale, pixel_zero)
    flat = m.tensor("mean_colour_flat", [1, 3], np.uint8, pixel_scale, pixel_zero)
    shape = m.tensor("flat_shape", [2], np.int32, data=np.array([1, 3], np.int32))

    # uint8 weights, asymmetric over the weights' own range so that 255 steps cover exactly it.
    low, high = min(weights.min(), 0.0), max(weights.max(), 0.0)
    weight_scale = (high - low) / 255
    weight_zero = int(round(-low / weight_scale))
    q_weights = np.clip(np.round(weights / weight_scale) + weight_zero, 0, 255).astype(np.uint8)
    kernel = m.tensor("colour_weights", [labels, 3], np.uint8, weight_scale, weight_zero, data=q_weights)
    # Biases are int32 at input scale x weight scale, as every quantized TFLite kernel expects.
    bias_scale = pixel_scale * weight_scale
    bias = m.tensor("colour_bias", [labels], np.int32, bias_scale, 0,
                    data=np.round(biases / bias_scale).astype(np.int32))

    # Scores span at most |w| . 1 + |b| over inputs in [-1, 1); the uint8 range is centred on zero and
    # sized to hold them so no class saturates.
    reach = float(np.max(np.abs(weights).sum(axis=1) + np.abs(biases)))
    score_scale = 2 * reach / 255
    scores = m.tensor("scores", [1, labels], np.uint8, score_scale, 128)
    probabilities = m.tensor("probabilities", [1, labels], np.uint8, 1.0 / 256, 0)

    m.operator("AVERAGE_POOL_2D", [image], [pooled], padding=1, strideW=1, strideH=1,  # padding 1 = VALID
               filterWidth=size, filterHeight=size)
    m.operator("RESHAPE", [pooled, shape], [flat], newShape=[1, 3])
    m.operator("FULLY_CONNECTED", [flat, kernel, bias], [scores])
    m.operator("SOFTMAX", [scores], [probabilities], beta=1.0)
    return m.finish([image], [probabilities])
