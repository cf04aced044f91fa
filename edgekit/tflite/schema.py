"""Facts of the TFLite flatbuffer schema that the reader needs: enum names and field slots, as TensorFlow's
schema.fbs defines them (tensorflow/compiler/mlir/lite/schema/schema.fbs, formerly tensorflow/lite/schema/).

Kept as plain data so that reading a model needs neither TensorFlow nor a LiteRT install.
"""

# BuiltinOperator enum, indexed by code.
BUILTIN_OPS = (
    'ADD', 'AVERAGE_POOL_2D', 'CONCATENATION', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'DEPTH_TO_SPACE',
    'DEQUANTIZE', 'EMBEDDING_LOOKUP', 'FLOOR', 'FULLY_CONNECTED', 'HASHTABLE_LOOKUP', 'L2_NORMALIZATION',
    'L2_POOL_2D', 'LOCAL_RESPONSE_NORMALIZATION', 'LOGISTIC', 'LSH_PROJECTION', 'LSTM', 'MAX_POOL_2D',
    'MUL', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'RESHAPE', 'RESIZE_BILINEAR', 'RNN', 'SOFTMAX',
    'SPACE_TO_DEPTH', 'SVDF', 'TANH', 'CONCAT_EMBEDDINGS', 'SKIP_GRAM', 'CALL', 'CUSTOM',
    'EMBEDDING_LOOKUP_SPARSE', 'PAD', 'UNIDIRECTIONAL_SEQUENCE_RNN', 'GATHER', 'BATCH_TO_SPACE_ND',
    'SPACE_TO_BATCH_ND', 'TRANSPOSE', 'MEAN', 'SUB', 'DIV', 'SQUEEZE', 'UNIDIRECTIONAL_SEQUENCE_LSTM',
    'STRIDED_SLICE', 'BIDIRECTIONAL_SEQUENCE_RNN', 'EXP', 'TOPK_V2', 'SPLIT', 'LOG_SOFTMAX', 'DELEGATE',
    'BIDIRECTIONAL_SEQUENCE_LSTM', 'CAST', 'PRELU', 'MAXIMUM', 'ARG_MAX', 'MINIMUM', 'LESS', 'NEG',
    'PADV2', 'GREATER', 'GREATER_EQUAL', 'LESS_EQUAL', 'SELECT', 'SLICE', 'SIN', 'TRANSPOSE_CONV',
    'SPARSE_TO_DENSE', 'TILE', 'EXPAND_DIMS', 'EQUAL', 'NOT_EQUAL', 'LOG', 'SUM', 'SQRT', 'RSQRT', 'SHAPE',
    'POW', 'ARG_MIN', 'FAKE_QUANT', 'REDUCE_PROD', 'REDUCE_MAX', 'PACK', 'LOGICAL_OR', 'ONE_HOT',
    'LOGICAL_AND', 'LOGICAL_NOT', 'UNPACK', 'REDUCE_MIN', 'FLOOR_DIV', 'REDUCE_ANY', 'SQUARE',
    'ZEROS_LIKE', 'FILL', 'FLOOR_MOD', 'RANGE', 'RESIZE_NEAREST_NEIGHBOR', 'LEAKY_RELU',
    'SQUARED_DIFFERENCE', 'MIRROR_PAD', 'ABS', 'SPLIT_V', 'UNIQUE', 'CEIL', 'REVERSE_V2', 'ADD_N',
    'GATHER_ND', 'COS', 'WHERE', 'RANK', 'ELU', 'REVERSE_SEQUENCE', 'MATRIX_DIAG', 'QUANTIZE',
    'MATRIX_SET_DIAG', 'ROUND', 'HARD_SWISH', 'IF', 'WHILE', 'NON_MAX_SUPPRESSION_V4',
    'NON_MAX_SUPPRESSION_V5', 'SCATTER_ND', 'SELECT_V2', 'DENSIFY', 'SEGMENT_SUM', 'BATCH_MATMUL',
    'PLACEHOLDER_FOR_GREATER_OP_CODES', 'CUMSUM', 'CALL_ONCE', 'BROADCAST_TO', 'RFFT2D', 'CONV_3D', 'IMAG',
    'REAL', 'COMPLEX_ABS', 'HASHTABLE', 'HASHTABLE_FIND', 'HASHTABLE_IMPORT', 'HASHTABLE_SIZE',
    'REDUCE_ALL', 'CONV_3D_TRANSPOSE', 'VAR_HANDLE', 'READ_VARIABLE', 'ASSIGN_VARIABLE', 'BROADCAST_ARGS',
    'RANDOM_STANDARD_NORMAL', 'BUCKETIZE', 'RANDOM_UNIFORM', 'MULTINOMIAL', 'GELU', 'DYNAMIC_UPDATE_SLICE',
    'RELU_0_TO_1', 'UNSORTED_SEGMENT_PROD', 'UNSORTED_SEGMENT_MAX', 'UNSORTED_SEGMENT_SUM', 'ATAN2',
    'UNSORTED_SEGMENT_MIN', 'SIGN', 'BITCAST', 'BITWISE_XOR', 'RIGHT_SHIFT', 'STABLEHLO_LOGISTIC',
    'STABLEHLO_ADD', 'STABLEHLO_DIVIDE', 'STABLEHLO_MULTIPLY', 'STABLEHLO_MAXIMUM', 'STABLEHLO_RESHAPE',
    'STABLEHLO_CLAMP', 'STABLEHLO_CONCATENATE', 'STABLEHLO_BROADCAST_IN_DIM', 'STABLEHLO_CONVOLUTION',
    'STABLEHLO_SLICE', 'STABLEHLO_CUSTOM_CALL', 'STABLEHLO_REDUCE', 'STABLEHLO_ABS', 'STABLEHLO_AND',
    'STABLEHLO_COSINE', 'STABLEHLO_EXPONENTIAL', 'STABLEHLO_FLOOR', 'STABLEHLO_LOG', 'STABLEHLO_MINIMUM',
    'STABLEHLO_NEGATE', 'STABLEHLO_OR', 'STABLEHLO_POWER', 'STABLEHLO_REMAINDER', 'STABLEHLO_RSQRT',
    'STABLEHLO_SELECT', 'STABLEHLO_SUBTRACT', 'STABLEHLO_TANH', 'STABLEHLO_SCATTER', 'STABLEHLO_COMPARE',
    'STABLEHLO_CONVERT', 'STABLEHLO_DYNAMIC_SLICE', 'STABLEHLO_DYNAMIC_UPDATE_SLICE', 'STABLEHLO_PAD',
    'STABLEHLO_IOTA', 'STABLEHLO_DOT_GENERAL', 'STABLEHLO_REDUCE_WINDOW', 'STABLEHLO_SORT',
    'STABLEHLO_WHILE', 'STABLEHLO_GATHER', 'STABLEHLO_TRANSPOSE', 'DILATE', 'STABLEHLO_RNG_BIT_GENERATOR',
    'REDUCE_WINDOW', 'STABLEHLO_COMPOSITE', 'STABLEHLO_SHIFT_LEFT', 'STABLEHLO_CBRT', 'STABLEHLO_CASE',
)

# TensorType enum, indexed by code: (name, numpy dtype string or None, bits per element).
TENSOR_TYPES = (
    ("FLOAT32", "float32", 32), ("FLOAT16", "float16", 16), ("INT32", "int32", 32),
    ("UINT8", "uint8", 8), ("INT64", "int64", 64), ("STRING", None, 0), ("BOOL", "bool", 8),
    ("INT16", "int16", 16), ("COMPLEX64", "complex64", 64), ("INT8", "int8", 8),
    ("FLOAT64", "float64", 64), ("COMPLEX128", "complex128", 128), ("UINT64", "uint64", 64),
    ("RESOURCE", None, 0), ("VARIANT", None, 0), ("UINT32", "uint32", 32), ("UINT16", "uint16", 16),
    ("INT4", None, 4), ("BFLOAT16", None, 16), ("INT2", None, 2), ("UINT4", None, 4),
    ("FLOAT8_E4M3FN", None, 8), ("FLOAT8_E5M2", None, 8),
)

# Codes below this are stored in OperatorCode.deprecated_builtin_code (an int8); the real code lives in
# builtin_code, and readers take the larger of the two.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# Field ids per table (a field's vtable slot is 4 + 2 * id).
MODEL = dict(version=0, operator_codes=1, subgraphs=2, description=3, buffers=4, metadata=6,
             signature_defs=7)
OPERATOR_CODE = dict(deprecated_builtin_code=0, custom_code=1, version=2, builtin_code=3)
SUBGRAPH = dict(tensors=0, inputs=1, outputs=2, operators=3, name=4)
TENSOR = dict(shape=0, type=1, buffer=2, name=3, quantization=4, is_variable=5, shape_signature=7)
QUANTIZATION = dict(min=0, max=1, scale=2, zero_point=3, quantized_dimension=6)
OPERATOR = dict(opcode_index=0, inputs=1, outputs=2, builtin_options_type=3, builtin_options=4,
                custom_options=5, large_custom_options_offset=9, large_custom_options_size=10)
BUFFER = dict(data=0, offset=1, size=2)
METADATA = dict(name=0, buffer=1)
SIGNATURE_DEF = dict(inputs=0, outputs=1, signature_key=2, subgraph_index=4)
TENSOR_MAP = dict(name=0, tensor_index=1)

# Builtin options the tools read, by operator name: (field, struct format, default) in field-id order.
_CONV = (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
         ("fused_activation_function", "b", 0), ("dilation_w_factor", "i", 1), ("dilation_h_factor", "i", 1))
_POOL = (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0), ("filter_width", "i", 0),
         ("filter_height", "i", 0), ("fused_activation_function", "b", 0))
_FUSED = (("fused_activation_function", "b", 0),)
_REDUCER = (("keep_dims", "?", False),)
BUILTIN_OPTIONS = {
    "CONV_2D": _CONV,
    "DEPTHWISE_CONV_2D": (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
                          ("depth_multiplier", "i", 0), ("fused_activation_function", "b", 0),
                          ("dilation_w_factor", "i", 1), ("dilation_h_factor", "i", 1)),
    "TRANSPOSE_CONV": (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
                       ("fused_activation_function", "b", 0)),
    "AVERAGE_POOL_2D": _POOL,
    "MAX_POOL_2D": _POOL,
    "CONCATENATION": (("axis", "i", 0), ("fused_activation_function", "b", 0)),
    "ADD": _FUSED, "SUB": _FUSED, "MUL": _FUSED, "L2_NORMALIZATION": _FUSED,
    "FULLY_CONNECTED": (("fused_activation_function", "b", 0), ("weights_format", "b", 0),
                        ("keep_num_dims", "?", False)),
    "SOFTMAX": (("beta", "f", 0.0),),
    "RESIZE_BILINEAR": (("new_height", "i", 0), ("new_width", "i", 0), ("align_corners", "?", False),
                        ("half_pixel_centers", "?", False)),
    "RESIZE_NEAREST_NEIGHBOR": (("align_corners", "?", False), ("half_pixel_centers", "?", False)),
    "STRIDED_SLICE": (("begin_mask", "i", 0), ("end_mask", "i", 0), ("ellipsis_mask", "i", 0),
                      ("new_axis_mask", "i", 0), ("shrink_axis_mask", "i", 0), ("offset", "?", False)),
    "MEAN": _REDUCER, "SUM": _REDUCER, "REDUCE_MAX": _REDUCER, "REDUCE_MIN": _REDUCER,
    "PACK": (("values_count", "i", 0), ("axis", "i", 0)),
    "SPLIT": (("num_splits", "i", 0),),
}

ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
PADDINGS = ("SAME", "VALID")
