"""The last layers on-device learning writes: pycoral's imprinting head and a softmax classifier head.

The imprinting contract is libcoral's (coral/learn/imprinting_engine.cc, ValidateImprintingModel): an
L2_NORMALIZATION whose output is [1, 1, 1, D], optionally one QUANTIZE, then the model's last four ops
CONV_2D (1x1, one output channel per class) -> MUL (a scalar scale) -> RESHAPE [1, N] -> SOFTMAX, the
softmax being the only output. The convolution's weights are the classes' normalized mean embeddings
(weight imprinting, arXiv:1712.07136), so its output is each class's cosine similarity in [-1, 1]; the scale
sharpens those into logits. Everything here edits a converted (or compiled) model through `GraphEditor`; a
compiled model's Edge TPU op passes through untouched, so its embedding keeps running on the Edge TPU.
"""

from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.tflite.graph_edit import GraphEditor
from edgekit.tflite.metadata import retasked, store_metadata, stored_metadata

# The cosine similarities are multiplied by this before the softmax. With unit vectors, logits span
# [-scale, scale]: a test picture whose cosine to its class beats the runner-up's by 0.2 then scores
# e^(0.2 * scale) times higher, which is what makes a few shots give confident answers. (Imprinting's
# paper learns this scale; pycoral's model ships a fixed one in its MUL.)
DEFAULT_IMPRINTING_SCALE = 30.0
IMPRINTING_TAIL = ("CONV_2D", "MUL", "RESHAPE", "SOFTMAX")
# TFLite fixes an L2_NORMALIZATION output's quantization (lite/kernels/l2norm.cc): 1/128 around the
# middle of the type's range; the cosines of the convolution get the same grid.
UNIT_SCALE = 1.0 / 128
# A softmax's probabilities, as TFLite requires them (lite/kernels/activations.cc): 1/256 from the bottom.
PROBABILITY_SCALE = 1.0 / 256
_MIDDLE = {np.dtype(np.uint8): 128, np.dtype(np.int8): 0}
_BOTTOM = {np.dtype(np.uint8): 0, np.dtype(np.int8): -128}
# Op versions for uint8 and int8 tensors (TFLite's lite/tools/versioning/op_version.cc): int8 kernels
# came later and carry the higher version; per-channel int8 CONV_2D is version 3.
_VERSIONS = {
    np.dtype(np.uint8): {"RESHAPE": 1, "L2_NORMALIZATION": 1, "CONV_2D": 1, "MUL": 1, "SOFTMAX": 1,
                         "FULLY_CONNECTED": 1},
    np.dtype(np.int8): {"RESHAPE": 1, "L2_NORMALIZATION": 2, "CONV_2D": 3, "MUL": 2, "SOFTMAX": 2,
                        "FULLY_CONNECTED": 4},
}
_HOW_TO_MAKE = ("make one with `edgekit convert efficientnet-lite0 --imprinting` (or add the head to an "
                "embedding extractor with edgekit.tflite.heads.add_imprinting_head)")

ImprintingHead = namedtuple("ImprintingHead", "l2norm conv mul reshape softmax embedding l2norm_input kernel bias "
                                              "scale embedding_dim num_classes dtype")
"""Where pycoral's imprinting head sits in a model (operator and tensor indices of subgraph 0). l2norm,
conv, mul, reshape, softmax: operator indices; embedding: the L2_NORMALIZATION output [1, 1, 1, D] (what the
extractor returns); l2norm_input: the tensor feeding it (where an Edge TPU compile should stop, so that the
head stays on the CPU); kernel, bias: the convolution's constants (bias None when absent); scale: the MUL's
float value; dtype: the head's quantized type (uint8 or int8)."""

Embedding = namedtuple("Embedding", "tensor width dtype")
"""A model's single quantized output, seen as an embedding: tensor index, width D, numpy dtype."""


class NotImprintingModel(EdgekitError):
    """The model lacks (part of) pycoral's imprinting head."""


def read_imprinting_head(editor, name="model"):
    """The `ImprintingHead` of `editor`'s model, or NotImprintingModel naming what is missing."""
    ops = editor.op_names()

    def refuse(what):
        return NotImprintingModel(f"{name}: not an imprinting model: {what}; {_HOW_TO_MAKE}")

    l2norms = [i for i, op in enumerate(ops) if op == "L2_NORMALIZATION"]
    if not l2norms:
        raise refuse("it has no L2_NORMALIZATION op")
    if len(l2norms) > 1:
        raise refuse(f"it has {len(l2norms)} L2_NORMALIZATION ops, not one")
    if tuple(ops[-4:]) != IMPRINTING_TAIL:
        raise refuse(f"its last ops are {' -> '.join(ops[-4:])}, not {' -> '.join(IMPRINTING_TAIL)}")
    l2norm, conv = l2norms[0], len(ops) - 4
    between = ops[l2norm + 1:conv]
    if between not in ([], ["QUANTIZE"]):
        raise refuse(f"{' -> '.join(between)} stand between L2_NORMALIZATION and the last CONV_2D")
    graph = editor.graph
    embedding = int(graph.operators[l2norm].outputs[0])
    shape = editor.shape(embedding)
    if len(shape) != 4 or shape[:3] != [1, 1, 1]:
        raise refuse(f"the L2_NORMALIZATION output is {shape}, not [1, 1, 1, D]")
    conv_op, mul_op = graph.operators[conv], graph.operators[conv + 1]
    kernel = int(conv_op.inputs[1])
    bias = int(conv_op.inputs[2]) if len(conv_op.inputs) > 2 and conv_op.inputs[2] >= 0 else None
    kernel_shape = editor.shape(kernel)
    if len(kernel_shape) != 4 or kernel_shape[1:] != [1, 1, shape[3]]:
        raise refuse(f"the CONV_2D kernel is {kernel_shape}, not [N, 1, 1, {shape[3]}]")
    constants = [i for i in mul_op.inputs if editor.array(i) is not None]
    if len(constants) != 1 or editor.array(constants[0]).size != 1:
        raise refuse("its MUL does not multiply by one constant scale")
    softmax_out = graph.operators[-1].outputs[0]
    if list(graph.outputs) != [softmax_out]:
        raise refuse("the SOFTMAX output is not the model's only output")
    dtype = editor.dtype(kernel)
    if dtype not in _MIDDLE:
        raise refuse(f"its CONV_2D weights are {dtype}, not uint8 or int8")
    scale_q, zero_q = editor.quantization(constants[0])
    raw = editor.array(constants[0]).astype(np.float64).ravel()[0]
    scale = float((raw - zero_q[0]) * scale_q[0]) if scale_q.size else float(raw)
    feeding = int(graph.operators[l2norm].inputs[0])
    return ImprintingHead(l2norm, conv, conv + 1, conv + 2, conv + 3, embedding, feeding, kernel, bias, scale,
                          shape[3], kernel_shape[0], dtype)


def class_weights(editor, head):
    """The head's class weights as float rows (N, D), dequantized (per channel or per tensor)."""
    values = editor.array(head.kernel).astype(np.float64).reshape(head.num_classes, head.embedding_dim)
    scale, zero = editor.quantization(head.kernel)
    if scale.size > 1:
        return (values - zero[:, None]) * scale[:, None]
    return (values - zero[0]) * scale[0]


def unit_rows(weights):
    """Each row scaled to length 1 (a zero row stays zero)."""
    weights = np.asarray(weights, np.float64)
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    return weights / np.where(norms > 0, norms, 1.0)


def set_class_weights(editor, head, weights):
    """Write `weights` (N, D) as the head's classes: the rows normalized and quantized, the class count N
    carried through the convolution, the MUL, the RESHAPE and the SOFTMAX. Returns the new ImprintingHead."""
    weights = unit_rows(weights)
    count = weights.shape[0]
    dtype, middle = head.dtype, _MIDDLE[head.dtype]
    if dtype == np.int8:
        # Per channel, symmetric, as TFLite's int8 convolutions expect; each class uses its full grid.
        steps = np.maximum(np.abs(weights).max(axis=1), 1e-8) / 127
        quantized = np.clip(np.round(weights / steps[:, None]), -127, 127).astype(np.int8)
        editor.set_quantization(head.kernel, steps, 0, quantized_dimension=0)
    else:
        # One grid for the tensor (uint8 convolutions take no per-channel scales), centred on zero.
        steps = np.full(count, max(float(np.abs(weights).max()), 1e-8) / 127)
        quantized = np.clip(np.round(weights / steps[0]) + middle, 0, 255).astype(np.uint8)
        editor.set_quantization(head.kernel, steps[0], middle)
    editor.set_array(head.kernel, quantized.reshape(count, 1, 1, head.embedding_dim))
    if head.bias is not None:
        # Zero biases, at the scale TFLite checks: input scale x weight scale (per channel for int8).
        bias_scales = UNIT_SCALE * steps
        editor.set_array(head.bias, np.zeros(count, np.int32))
        if dtype == np.int8:
            editor.set_quantization(head.bias, bias_scales, 0)
        else:
            editor.set_quantization(head.bias, bias_scales[0], 0)
    graph = editor.graph
    cosine = graph.operators[head.conv].outputs[0]
    logits = graph.operators[head.mul].outputs[0]
    flat = graph.operators[head.reshape].outputs[0]
    probabilities = graph.operators[head.softmax].outputs[0]
    editor.set_shape(cosine, [1, 1, 1, count])
    editor.set_quantization(cosine, UNIT_SCALE, middle)
    editor.set_shape(logits, [1, 1, 1, count])
    editor.set_quantization(logits, head.scale * UNIT_SCALE, middle)
    editor.set_shape(flat, [1, count])
    editor.set_quantization(flat, head.scale * UNIT_SCALE, middle)
    editor.set_shape(probabilities, [1, count])
    editor.set_quantization(probabilities, PROBABILITY_SCALE, _BOTTOM[dtype])
    reshape_op = graph.operators[head.reshape]
    if len(reshape_op.inputs) > 1 and reshape_op.inputs[1] >= 0:
        editor.set_array(reshape_op.inputs[1], np.array([1, count], np.int32))
    options = reshape_op.builtinOptions
    if options is not None and getattr(options, "newShape", None) is not None and len(options.newShape):
        options.newShape = [1, count]
    return head._replace(num_classes=count)


def read_embedding(editor, name="model"):
    """The model's single output as an `Embedding` ([1, D] or [1, 1, 1, D], uint8 or int8)."""
    outputs = list(editor.graph.outputs)
    if len(outputs) != 1:
        raise EdgekitError(f"{name}: an embedding extractor has one output, this model has {len(outputs)}; "
                           "make one with `edgekit convert efficientnet-lite0 --embedding`")
    tensor = outputs[0]
    shape, dtype = editor.shape(tensor), editor.dtype(tensor)
    if shape not in ([1, shape[-1]], [1, 1, 1, shape[-1]]):
        raise EdgekitError(f"{name}: its output {shape} is not an embedding ([1, D] or [1, 1, 1, D]); "
                           "make one with `edgekit convert efficientnet-lite0 --embedding`")
    if dtype not in _MIDDLE or not editor.quantization(tensor)[0].size:
        raise EdgekitError(f"{name}: its output is {dtype} without quantization; on-device learning appends "
                           "quantized layers to a uint8 or int8 extractor (`edgekit convert ... --embedding`)")
    return Embedding(tensor, shape[-1], dtype)


def _as_shape(editor, source, shape, name):
    """`source` reshaped to `shape` by a new RESHAPE (or itself when it already has that shape)."""
    if editor.shape(source) == list(shape):
        return source
    scale, zero = editor.quantization(source)
    dtype = editor.dtype(source)
    out = editor.tensor(name, shape, dtype, scale, zero)
    target = editor.tensor(name + "/shape", [len(shape)], np.int32, data=np.array(shape, np.int32))
    editor.operator("RESHAPE", [source, target], [out], version=_VERSIONS[dtype]["RESHAPE"], newShape=list(shape))
    return out


def _now_a_classifier(editor):
    """An extractor's edgekit metadata made a classifier's: task classification, the extractor's labels (if
    any) dropped, the input's size and normalisation kept. Nothing is added to a model without metadata."""
    metadata = stored_metadata(editor.model)
    if metadata:
        store_metadata(editor.model, retasked(metadata, "classification"))


def add_imprinting_head(model_bytes, weights, scale=DEFAULT_IMPRINTING_SCALE, name="model"):
    """An embedding extractor's bytes with pycoral's imprinting head appended: [RESHAPE] -> L2_NORMALIZATION ->
    CONV_2D -> MUL (`scale`) -> RESHAPE -> SOFTMAX, whose classes are the rows of `weights` (N, D) (normalized
    here). The output is the softmax [1, N], quantized like the extractor (uint8 or int8)."""
    editor = GraphEditor.from_bytes(model_bytes)
    embedding = read_embedding(editor, name)
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 2 or weights.shape[0] < 1 or weights.shape[1] != embedding.width:
        raise EdgekitError(f"{name}: class weights {list(weights.shape)} do not fit its {embedding.width}-wide "
                           f"embedding; give [classes, {embedding.width}]")
    if not scale > 0:
        raise EdgekitError(f"the imprinting scale must be positive, not {scale}")
    dtype, width = embedding.dtype, embedding.width
    versions, middle = _VERSIONS[dtype], _MIDDLE[dtype]
    feature = _as_shape(editor, embedding.tensor, [1, 1, 1, width], "imprinting/embedding")
    unit = editor.tensor("imprinting/l2_normalized", [1, 1, 1, width], dtype, UNIT_SCALE, middle)
    editor.operator("L2_NORMALIZATION", [feature], [unit], version=versions["L2_NORMALIZATION"])
    # Placeholders for one class; set_class_weights gives every class-sized tensor its real size and grid.
    kernel = editor.tensor("imprinting/class_weights", [1, 1, 1, width], dtype, UNIT_SCALE, middle,
                           data=np.full((1, 1, 1, width), middle, dtype))
    bias = editor.tensor("imprinting/class_bias", [1], np.int32, UNIT_SCALE * UNIT_SCALE, 0,
                         data=np.zeros(1, np.int32))
    cosine = editor.tensor("imprinting/cosine", [1, 1, 1, 1], dtype, UNIT_SCALE, middle)
    editor.operator("CONV_2D", [unit, kernel, bias], [cosine], version=versions["CONV_2D"], padding=1,
                    strideW=1, strideH=1, dilationWFactor=1, dilationHFactor=1)  # padding 1 = VALID
    top = np.iinfo(dtype).max
    factor = editor.tensor("imprinting/scale", [1], dtype, scale / top, 0, data=np.array([top], dtype))
    logits = editor.tensor("imprinting/logits", [1, 1, 1, 1], dtype, scale * UNIT_SCALE, middle)
    editor.operator("MUL", [cosine, factor], [logits], version=versions["MUL"])
    flat_shape = editor.tensor("imprinting/logits/shape", [2], np.int32, data=np.array([1, 1], np.int32))
    flat = editor.tensor("imprinting/logits_flat", [1, 1], dtype, scale * UNIT_SCALE, middle)
    editor.operator("RESHAPE", [logits, flat_shape], [flat], version=versions["RESHAPE"], newShape=[1, 1])
    probabilities = editor.tensor("imprinting/probabilities", [1, 1], dtype, PROBABILITY_SCALE, _BOTTOM[dtype])
    editor.operator("SOFTMAX", [flat], [probabilities], version=versions["SOFTMAX"], beta=1.0)
    editor.set_outputs([probabilities])
    set_class_weights(editor, read_imprinting_head(editor, name), weights)
    _now_a_classifier(editor)
    return editor.to_bytes()


def add_softmax_head(model_bytes, weights, biases, logit_range, name="model"):
    """An embedding extractor's bytes with a trained softmax classifier appended: [RESHAPE [1, D]] ->
    FULLY_CONNECTED (`weights` (D, N), `biases` (N,)) -> SOFTMAX [1, N]. `logit_range` (low, high) bounds the
    logits the classifier produced on its training data: the FULLY_CONNECTED output's grid covers it."""
    editor = GraphEditor.from_bytes(model_bytes)
    embedding = read_embedding(editor, name)
    weights, biases = np.asarray(weights, np.float64), np.asarray(biases, np.float64).ravel()
    if weights.ndim != 2 or weights.shape[0] != embedding.width or biases.shape != (weights.shape[1],):
        raise EdgekitError(f"{name}: weights {list(weights.shape)} and biases {list(biases.shape)} do not fit its "
                           f"{embedding.width}-wide embedding; give [{embedding.width}, classes] and [classes]")
    dtype, width, count = embedding.dtype, embedding.width, weights.shape[1]
    versions = _VERSIONS[dtype]
    feature = _as_shape(editor, embedding.tensor, [1, width], "classifier/embedding")
    in_scale = float(editor.quantization(feature)[0][0])
    # TFLite's FULLY_CONNECTED takes one weight grid per tensor: symmetric int8, or uint8 around 128. The
    # int32 biases live on input scale x weight step, so the step is also large enough for them to fit.
    step = max(float(np.abs(weights).max()) / 127, float(np.abs(biases).max(initial=0.0)) / (in_scale * (2**31 - 1)),
               1e-8)
    middle = _MIDDLE[dtype]
    kernel_values = np.clip(np.round(weights.T / step) + middle, np.iinfo(dtype).min, np.iinfo(dtype).max)
    kernel = editor.tensor("classifier/weights", [count, width], dtype, step, middle,
                           data=kernel_values.astype(dtype))
    bias_scale = in_scale * step
    bias = editor.tensor("classifier/bias", [count], np.int32, bias_scale, 0,
                         data=np.round(biases / bias_scale).astype(np.int32))
    low, high = min(float(logit_range[0]), 0.0), max(float(logit_range[1]), 0.0)
    if high - low < 1e-6:
        high = low + 1e-6
    levels = 255.0
    out_scale = (high - low) / levels
    bottom = np.iinfo(dtype).min
    out_zero = int(np.clip(round(bottom - low / out_scale), np.iinfo(dtype).min, np.iinfo(dtype).max))
    logits = editor.tensor("classifier/logits", [1, count], dtype, out_scale, out_zero)
    editor.operator("FULLY_CONNECTED", [feature, kernel, bias], [logits], version=versions["FULLY_CONNECTED"],
                    fusedActivationFunction=0, weightsFormat=0, keepNumDims=False)
    probabilities = editor.tensor("classifier/probabilities", [1, count], dtype, PROBABILITY_SCALE, _BOTTOM[dtype])
    editor.operator("SOFTMAX", [logits], [probabilities], version=versions["SOFTMAX"], beta=1.0)
    editor.set_outputs([probabilities])
    _now_a_classifier(editor)
    return editor.to_bytes()


def extractor_of(editor, head):
    """Cut `editor`'s model after the L2_NORMALIZATION of `head`: its output is then the normalized
    embedding [1, 1, 1, D], which `ImprintingEngine.train` takes."""
    editor.set_outputs([head.embedding])
    editor.keep_only_needed()
    return editor
