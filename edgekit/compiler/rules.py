"""The one table of what the Edge TPU compiler (version 16) maps, and the op versions it can parse.

Every fact the predictor uses lives here, so that a correction is one line. Sources: Coral's supported-ops
table (https://coral.ai/docs/edgetpu/models-intro/#supported-operations), compiler logs quoted in
google-coral/edgetpu's issue threads, the compiled models of Coral's public test data (google-coral/test_data),
and TensorFlow's op-version registry (see COMPILER16_MAX_VERSION). Items marked "unverified" are rules to
test.

A limit is a small function `(graph, op, runtime) -> Problem | None`; the Problem carries the compiler's own
status wording plus our explanation of why.
"""

from collections import namedtuple

import numpy as np

from edgekit.tflite import schema

# The compiler's per-op status strings, exactly as it prints them in the .log and with -s.
MAPPED = "Mapped to Edge TPU"
MORE_THAN_ONE_SUBGRAPH = "More than one subgraph is not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
DATA_TYPE = "Operation is working on an unsupported data type"
NOT_SUPPORTED = "Operation not supported"
VERSION = "Operation version not supported"
STRIDES = "Only Strided-Slice with unitary strides supported"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
STATUSES = (MAPPED, MORE_THAN_ONE_SUBGRAPH, UNSPECIFIED, DATA_TYPE, NOT_SUPPORTED, VERSION, STRIDES, RANK)
# With -s the compiler may fold fully mapped ops into this one line.
ALL_OTHERS_MAPPED = "All other operators were mapped successfully"

# Messages after which the compiler writes no model.
FATAL_PARSE = "Model could not be parsed"
FATAL_INTERNAL = "Internal compiler error. Aborting!"
FATAL_ACTIVATIONS = "Compilation failed due to large activation tensors in model."
FATAL_DYNAMIC = "Attempting to use a delegate that only supports static-sized tensors"
FATAL_MESSAGES = (FATAL_PARSE, FATAL_INTERNAL, FATAL_ACTIVATIONS, FATAL_DYNAMIC)

DEFAULT_RUNTIME = 14          # compiler 16's default for -m
ALL_RUNTIMES = 10             # "all" in Coral's table: every runtime the compiler can target
NEWEST_RUNTIME = 16           # compiler 16 targets runtimes up to its own version
# The parameter cache compiler 16 reports as usable in its logs, of the roughly 8 MB of SRAM that Coral's
# compiler page describes (https://coral.ai/docs/edgetpu/compiler/#parameter-data-caching).
ON_CHIP_CACHE_BYTES = int(6.9 * 1024 * 1024)
SOFTMAX_MAX_ELEMENTS = 16000

# The most values one row of an activation (its two innermost dimensions, x times depth) may hold and still
# map. Not published as a number: derived (unverified beyond these cases) from the one place where the limit
# shows, an SSD-style detector's class scores [1, anchors, classes], which the head's RESHAPEs and
# CONCATENATION build in one row and its LOGISTIC squashes:
# - Coral's "Retrain EfficientDet-Lite for the Edge TPU" tutorial (google-coral/tutorials,
#   retrain_efficientdet_model_maker_tf2.ipynb): with more than 20 classes "a certain layer cannot compile for
#   the Edge TPU". That tutorial trains EfficientDet-Lite0 at 320 pixels, whose levels P3..P7 (40, 20, 10, 5
#   and 3 cells a side, 9 anchors each) give 19,206 anchors: 20 classes (the value below) map, 21 do not.
# - Coral's compiled SSD MobileNet v1/v2 COCO detectors (google-coral/test_data, pipeline/*_segment_*_of_*
#   models) keep their [1, 1917, 91] class scores (the LOGISTIC "convert_scores") on the Edge TPU.
# - Coral's maintainers on google-coral/edgetpu#356: an activation that does not fit the Edge TPU's memory
#   ("reshape ops could be too large to fit on memory") is left off; in #512 YOLOv5s leaves RESHAPEs off at
#   384 and 512 pixels, not at 224 and 256.
# So the limit depends on the input size (the anchors) as much as on the classes: EfficientDet-Lite1..4,
# with more anchors, keep fewer classes on the Edge TPU than Lite0's 20.
EFFICIENTDET_LITE0_ANCHORS = 19206
ROW_MAX_VALUES = EFFICIENTDET_LITE0_ANCHORS * 20

Problem = namedtuple("Problem", "status detail")
OpRule = namedtuple("OpRule", "runtime limits")

EIGHT_BIT = ("UINT8", "INT8")


# --- small helpers over the reader's Subgraph/Operator -------------------------------------------------

def tensor(graph, index):
    return graph.tensors[index] if index is not None and 0 <= index < len(graph.tensors) else None


def arg(graph, op, position):
    """The op's input tensor at `position`, or None when the op has no such input (damaged models)."""
    return tensor(graph, op.inputs[position]) if position < len(op.inputs) else None


def result(graph, op, position=0):
    return tensor(graph, op.outputs[position]) if position < len(op.outputs) else None


def activations(graph, op):
    """Non-constant tensors the op reads or writes (what the Edge TPU moves through its memory)."""
    ids = [i for i in op.inputs + op.outputs if i >= 0]
    return [graph.tensors[i] for i in ids if not graph.tensors[i].is_constant]


def constant(graph, op, position):
    """The op's input at `position` as a flat int array, or None when absent or not constant."""
    t = arg(graph, op, position)
    if t is None or not t.is_constant or t.dtype is None:
        return None
    try:
        return t.numpy().reshape(-1)
    except ValueError:      # data size does not match the shape: treat as unknown
        return None


def _rank_of_first_input(graph, op):
    t = arg(graph, op, 0)
    return len(t.shape) if t is not None else 0


def _axes(graph, op, position):
    """Reduction/split axes normalised to non-negative numbers (None when not constant)."""
    values = constant(graph, op, position)
    rank = _rank_of_first_input(graph, op)
    return None if values is None else sorted({int(a) % rank if rank else int(a) for a in values})


# --- limits (each returns a Problem or None) ----------------------------------------------------------

def no_fused_activation(graph, op, runtime):
    if op.options.get("fused_activation_function", 0):
        act = schema.ACTIVATIONS[op.options["fused_activation_function"] % len(schema.ACTIVATIONS)]
        return Problem(UNSPECIFIED, f"fused activation {act} is not supported on this op")


def same_dilation(graph, op, runtime):
    w, h = op.options.get("dilation_w_factor", 1), op.options.get("dilation_h_factor", 1)
    if w != h:
        return Problem(UNSPECIFIED, f"dilation differs in x ({w}) and y ({h})")


def dilation_needs_13(graph, op, runtime):
    if max(op.options.get("dilation_w_factor", 1), op.options.get("dilation_h_factor", 1)) > 1 and runtime < 13:
        return Problem(NOT_SUPPORTED, "dilated depthwise convolution needs runtime 13 or newer (-m 13)")


def concat_constants(graph, op, runtime):
    for position, i in enumerate(op.inputs):
        t = tensor(graph, i)
        if t is None or not t.is_constant:
            continue
        if len(op.inputs) != 2 or position != 1 or np.any(t.numpy() != t.quantization.per_tensor[1]):
            return Problem(UNSPECIFIED, "a constant input is allowed only as the second of two and all zeros")


def fully_connected(graph, op, runtime):
    if op.options.get("weights_format", 0) != 0:
        return Problem(UNSPECIFIED, "only the default weights format is supported")
    out = result(graph, op)
    if out is not None and int(np.prod(out.shape[:-1], dtype=np.int64)) > 1:
        return Problem(UNSPECIFIED, f"output {list(out.shape)} is not 1-D")


def not_over_batch(position):
    def limit(graph, op, runtime):
        axes = _axes(graph, op, position)
        if axes is None:
            return Problem(UNSPECIFIED, "the axis is not a constant")
        if 0 in axes and _rank_of_first_input(graph, op) > 1:
            return Problem(UNSPECIFIED, "works over the batch dimension")
    return limit


def mean_depth(graph, op, runtime):
    axes, t = _axes(graph, op, 1), arg(graph, op, 0)
    if axes and t is not None and len(t.shape) - 1 in axes and t.shape[-1] % 4:
        return Problem(UNSPECIFIED, f"a reduction over depth needs depth a multiple of 4 (is {t.shape[-1]})")


def pack_axis(graph, op, runtime):
    if op.options.get("axis", 0) == 0:
        return Problem(UNSPECIFIED, "packs in the batch dimension")


def pad_batch(graph, op, runtime):
    pads = constant(graph, op, 1)
    if pads is None:
        return Problem(UNSPECIFIED, "the paddings are not a constant")
    if pads.size >= 2 and (pads[0] or pads[1]):
        return Problem(UNSPECIFIED, "pads the batch dimension")


def prelu_alpha(graph, op, runtime):
    alpha = arg(graph, op, 1)
    if alpha is None or not alpha.is_constant or any(d > 1 for d in alpha.shape[:-1]):
        return Problem(UNSPECIFIED, "alpha must be a constant varying only along depth (Keras shared_axes=[1, 2])")


def softmax_size(graph, op, runtime):
    t = arg(graph, op, 0)
    if t is None or not t.shape:
        return None
    if any(d > 1 for d in t.shape[:-1]):
        return Problem(UNSPECIFIED, f"input {list(t.shape)} is not 1-D")
    if t.shape[-1] > SOFTMAX_MAX_ELEMENTS:
        return Problem(UNSPECIFIED, f"{t.shape[-1]} elements, more than {SOFTMAX_MAX_ELEMENTS}")


def unit_strides(graph, op, runtime):
    strides = constant(graph, op, 3)
    if strides is None or np.any(strides != 1):
        return Problem(STRIDES, f"strides {strides.tolist() if strides is not None else 'not constant'}")
    if op.options.get("ellipsis_mask", 0) or op.options.get("new_axis_mask", 0):
        return Problem(UNSPECIFIED, "ellipsis or new-axis masks are not supported")


def resize_exact(graph, op, runtime):
    """Coral: resizing "may not be mapped ... to avoid loss in precision", depending on sizes.

    Inferred from Coral's deeplabv3 twin, whose three RESIZE_BILINEAR (1x1->33x33, 33x33->33x33,
    33x33->513x513) all stay on the CPU: each has align_corners=True, whose sampling step (in-1)/(out-1)
    is not the whole-number upscaling the Edge TPU does; and an output that is not a whole multiple of the
    input (513 from 33) is the same kind of inexact grid. Unverified beyond those twins.
    """
    if op.options.get("align_corners"):
        return Problem(UNSPECIFIED, "align_corners=True sampling would lose precision on the Edge TPU")
    src, dst = arg(graph, op, 0), result(graph, op)
    if src is None or dst is None or len(src.shape) != 4 or len(dst.shape) != 4:
        return None
    for a, b in zip(src.shape[1:3], dst.shape[1:3]):
        if a <= 0 or b % a:
            return Problem(UNSPECIFIED, f"{src.shape[1]}x{src.shape[2]} -> {dst.shape[1]}x{dst.shape[2]} "
                                        "is not a whole-number upscale")


def row_values(shape):
    """How many values one row of a tensor holds on the Edge TPU: its two innermost dimensions multiplied."""
    return int(np.prod(shape[-2:], dtype=np.int64)) if len(shape) else 1


def oversized_row(graph, op, runtime=None):
    """Any op: an activation with more than ROW_MAX_VALUES values in one row (see ROW_MAX_VALUES)."""
    for t in activations(graph, op):
        values = row_values(t.shape)
        if values > ROW_MAX_VALUES:
            return Problem(UNSPECIFIED, f"tensor '{t.name}' {list(t.shape)} holds {values:,} values in one row, "
                                        f"more than the {ROW_MAX_VALUES:,} the Edge TPU maps")


def most_classes(anchors):
    """The most classes whose class scores [1, anchors, classes] still map (0: not even one)."""
    return ROW_MAX_VALUES // anchors


def quantize_input(graph, op, runtime):
    t = arg(graph, op, 0)
    if t is not None and t.type not in EIGHT_BIT:
        return Problem(UNSPECIFIED, f"quantizes {t.type.lower()} input; stays on the CPU")


# --- the table ---------------------------------------------------------------------------------------

SUPPORTED = {
    "ADD": OpRule(ALL_RUNTIMES, ()), "SUB": OpRule(ALL_RUNTIMES, ()), "MUL": OpRule(ALL_RUNTIMES, ()),
    "MAXIMUM": OpRule(ALL_RUNTIMES, ()), "MINIMUM": OpRule(ALL_RUNTIMES, ()),
    "AVERAGE_POOL_2D": OpRule(ALL_RUNTIMES, (no_fused_activation,)),
    "MAX_POOL_2D": OpRule(ALL_RUNTIMES, (no_fused_activation,)),
    "CONCATENATION": OpRule(ALL_RUNTIMES, (no_fused_activation, concat_constants)),
    "CONV_2D": OpRule(ALL_RUNTIMES, (same_dilation,)),
    "DEPTHWISE_CONV_2D": OpRule(ALL_RUNTIMES, (same_dilation, dilation_needs_13)),
    "EXPAND_DIMS": OpRule(13, ()),
    "FULLY_CONNECTED": OpRule(ALL_RUNTIMES, (fully_connected,)),
    "L2_NORMALIZATION": OpRule(ALL_RUNTIMES, ()), "LOGISTIC": OpRule(ALL_RUNTIMES, ()),
    "TANH": OpRule(ALL_RUNTIMES, ()), "RELU": OpRule(ALL_RUNTIMES, ()), "RELU6": OpRule(ALL_RUNTIMES, ()),
    "RELU_N1_TO_1": OpRule(ALL_RUNTIMES, ()),
    # Coral lists 14+, yet Coral's own keras_lstm twin maps it inside a runtime-12 package.
    "UNIDIRECTIONAL_SEQUENCE_LSTM": OpRule(14, ()),
    "MEAN": OpRule(ALL_RUNTIMES, (not_over_batch(1), mean_depth)),
    # Coral: 13+; older runtimes also take it outside the batch dimension, which the limit enforces anyway.
    "PACK": OpRule(ALL_RUNTIMES, (pack_axis,)),
    "PAD": OpRule(ALL_RUNTIMES, (pad_batch,)),
    "PRELU": OpRule(13, (prelu_alpha,)),
    "QUANTIZE": OpRule(13, (quantize_input,)),
    "REDUCE_MAX": OpRule(14, (not_over_batch(1),)), "REDUCE_MIN": OpRule(14, (not_over_batch(1),)),
    "RESHAPE": OpRule(ALL_RUNTIMES, ()),
    "RESIZE_BILINEAR": OpRule(ALL_RUNTIMES, (resize_exact,)),
    "RESIZE_NEAREST_NEIGHBOR": OpRule(ALL_RUNTIMES, (resize_exact,)),
    "RSQRT": OpRule(14, ()), "SQUARED_DIFFERENCE": OpRule(14, ()),        # runtime unverified
    "SLICE": OpRule(ALL_RUNTIMES, ()), "SPACE_TO_DEPTH": OpRule(ALL_RUNTIMES, ()),
    "SPLIT": OpRule(ALL_RUNTIMES, (not_over_batch(0),)),                   # batch limit unverified
    "SQUEEZE": OpRule(ALL_RUNTIMES, ()),
    "SOFTMAX": OpRule(ALL_RUNTIMES, (softmax_size,)),
    "STRIDED_SLICE": OpRule(ALL_RUNTIMES, (unit_strides,)),
    "SUM": OpRule(13, (not_over_batch(1),)),                               # runtime unverified
    "TRANSPOSE": OpRule(14, ()),
    "TRANSPOSE_CONV": OpRule(13, ()),
}

# Ops users often meet, and what to use instead (everything absent from SUPPORTED stays on the CPU).
ALTERNATIVES = {
    "LEAKY_RELU": "use PRELU with a per-channel alpha (Keras PReLU(shared_axes=[1, 2])) or RELU6",
    "HARD_SWISH": "use RELU6 (as the -Lite models do)",
    "DEQUANTIZE": "keep uint8/int8 outputs (inference_output_type=tf.uint8)",
    "TFLite_Detection_PostProcess": "expected: post-processing runs on the CPU after the Edge TPU part",
}

# Non-8-bit tensors an op may still use on the Edge TPU: the LSTM keeps its cell state in int16
# (Coral's keras_lstm twin maps such an op), and int32 constants are biases, shapes and axes.
WIDE_STATE_OPS = {"UNIDIRECTIONAL_SEQUENCE_LSTM": ("INT16",)}

# Compiler 16 embeds a mid-2021 TFLite, which registers each builtin op up to the newest version known to
# TensorFlow 2.5. Derived from TensorFlow's op-version registry: tensorflow/lite/tools/versioning/op_version.cc
# (which version an op needs) and runtime_version.cc beside it (the op-version -> first TF release table):
# the highest version whose release is <= 2.5.0. Newer versions make the compiler stop with
# "Didn't find op for builtin opcode ..." and "Model could not be parsed".
COMPILER16_MAX_VERSION = {
    "ADD": 3, "AVERAGE_POOL_2D": 3, "BATCH_MATMUL": 4, "BATCH_TO_SPACE_ND": 3, "BROADCAST_TO": 3,
    "CAST": 1, "CONCATENATION": 3, "CONV_2D": 5, "DEPTHWISE_CONV_2D": 6, "DEPTH_TO_SPACE": 2,
    "DEQUANTIZE": 4, "DIV": 2, "EMBEDDING_LOOKUP": 3, "FAKE_QUANT": 2, "FILL": 3, "FLOOR_DIV": 2,
    "FULLY_CONNECTED": 9, "GATHER": 5, "GATHER_ND": 3, "GREATER": 2, "GREATER_EQUAL": 2,
    "L2_NORMALIZATION": 2, "LEAKY_RELU": 2, "LESS": 2, "LESS_EQUAL": 2, "LOGISTIC": 3, "LOG_SOFTMAX": 2,
    "LSTM": 4, "MAXIMUM": 4, "MAX_POOL_2D": 3, "MEAN": 3, "MINIMUM": 4, "MIRROR_PAD": 2, "MUL": 4,
    "NOT_EQUAL": 3, "EQUAL": 3, "PACK": 3, "PAD": 3, "PADV2": 3, "QUANTIZE": 2, "REDUCE_MAX": 3,
    "REDUCE_MIN": 3, "REDUCE_PROD": 1, "RELU": 3, "RELU6": 3, "RESIZE_BILINEAR": 4,
    "RESIZE_NEAREST_NEIGHBOR": 4, "REVERSE_V2": 3, "RNN": 3, "RSQRT": 2, "SELECT": 2, "SLICE": 5,
    "SOFTMAX": 3, "SPACE_TO_BATCH_ND": 3, "SPACE_TO_DEPTH": 2, "SPARSE_TO_DENSE": 3, "SPLIT": 4,
    "SPLIT_V": 2, "SQUARED_DIFFERENCE": 2, "SQUEEZE": 2, "STRIDED_SLICE": 5, "SUB": 5, "SUM": 2,
    "SVDF": 4, "TANH": 3, "TILE": 2, "TOPK_V2": 2, "TRANSPOSE": 5, "TRANSPOSE_CONV": 3,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "UNIDIRECTIONAL_SEQUENCE_RNN": 3, "BIDIRECTIONAL_SEQUENCE_LSTM": 3,
    "BIDIRECTIONAL_SEQUENCE_RNN": 3, "UNPACK": 4, "ABS": 3, "ARG_MAX": 2, "ARG_MIN": 2,
    "WHERE": 1, "HARD_SWISH": 1, "EXP": 1,
}
# The last builtin TensorFlow 2.5 knows; ops after it in the enum (REDUCE_ALL, GELU...) cannot be parsed.
COMPILER16_LAST_BUILTIN = schema.BUILTIN_OPS.index("HASHTABLE_SIZE")


def max_version(op_name):
    """Newest version of a builtin op that compiler 16 parses; 0 when it does not know the op at all."""
    if op_name not in schema.BUILTIN_OPS or schema.BUILTIN_OPS.index(op_name) > COMPILER16_LAST_BUILTIN:
        return 0
    return COMPILER16_MAX_VERSION.get(op_name, 1)
