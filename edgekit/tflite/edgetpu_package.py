"""Read what the Edge TPU compiler stores inside each `edgetpu-custom-op`.

The op's custom options are a FlexBuffer map; key "4" holds a flatbuffer with identifier `DWN1`
(google-coral/libedgetpu's `executable/executable.fbs`, root `Package`), key "7" more such packages. Field
ids below are that schema's.
"""

import struct
from collections import namedtuple

from flatbuffers import flexbuffers

from edgekit.tflite.flatbuf import FlatbufferError, Table, file_identifier

PACKAGE_IDENTIFIER = b"DWN1"
EXECUTABLE_TYPES = {0: "STAND_ALONE", 1: "PARAMETER_CACHING", 2: "EXECUTION_ONLY"}
# executable.fbs DataType enum, as numpy-style names (FIXED_POINT8 is unsigned, SIGNED_FIXED_POINT8 int8).
LAYER_DATA_TYPES = {0: "uint8", 1: "uint16", 2: "int32", 3: "bfloat16", 4: "float16", 5: "float32",
                    8: "int8", 9: "int16"}

_PACKAGE = dict(min_runtime_version=0, serialized_multi_executable=1, compiler_version=4,
                virtual_chip_id=5, model_identifier=7)
_EXECUTABLE = dict(name=1, batch_size=3, scratch_size_bytes=4, instruction_bitstreams=5, parameters=6,
                   input_layers=8, output_layers=9, chip=10, type=13, parameter_caching_token=14,
                   estimated_cycles_64bit=16)
_LAYER = dict(name=0, size_bytes=1, y_dim=2, x_dim=3, z_dim=4, numerics=5, data_type=6)
_NUMERICS = dict(zero_point=0, dequantization_factor=1)

Package = namedtuple("Package", "min_runtime_version compiler_version model_identifier virtual_chip_id "
                                "executables")
Executable = namedtuple("Executable", "name chip type batch_size scratch_size_bytes instruction_bytes "
                                      "parameter_bytes caching_token estimated_cycles input_layers "
                                      "output_layers")
Layer = namedtuple("Layer", "name size_bytes shape data_type zero_point scale")


class EdgeTpuPackageError(ValueError):
    """The custom op's options are not a readable Edge TPU package."""


def read_packages(custom_options):
    """All `Package`s of one edgetpu-custom-op, from its raw custom options bytes."""
    try:
        options = flexbuffers.GetRoot(bytearray(custom_options)).AsMap
        blobs = [options["4"].AsStringBytes]
        keys = {k.AsKey for k in options.Keys}
        if "7" in keys:
            blobs += [item.AsStringBytes for item in options["7"].AsVector]
    except (TypeError, KeyError, IndexError, ValueError, AttributeError, struct.error, OverflowError,
            RecursionError) as e:
        raise EdgeTpuPackageError(f"edgetpu-custom-op options are not a FlexBuffer map with key '4' ({e})") \
            from None
    try:
        return [_package(bytes(blob)) for blob in blobs if len(blob)]
    except (FlatbufferError, UnicodeDecodeError) as e:
        raise EdgeTpuPackageError(f"damaged Edge TPU package ({e})") from None


def _package(blob):
    if file_identifier(blob) != PACKAGE_IDENTIFIER:
        raise EdgeTpuPackageError("Edge TPU package lacks the 'DWN1' identifier")
    p = Table.root(blob)
    executables = []
    multi = p.bytes(_PACKAGE["serialized_multi_executable"])
    if len(multi):
        multi = bytes(multi)
        for serialized in Table.root(multi).strings_bytes(0):
            executables.append(_executable(Table.root(serialized)))
    return Package(min_runtime_version=p.scalar(_PACKAGE["min_runtime_version"], "i"),
                   compiler_version=p.string(_PACKAGE["compiler_version"]),
                   model_identifier=p.string(_PACKAGE["model_identifier"]),
                   virtual_chip_id=p.scalar(_PACKAGE["virtual_chip_id"], "i"),
                   executables=executables)


def _executable(t):
    f = _EXECUTABLE
    instruction_bytes = sum(len(b.bytes(0)) for b in t.tables(f["instruction_bitstreams"]))
    return Executable(name=t.string(f["name"]), chip=t.string(f["chip"]),
                      type=EXECUTABLE_TYPES.get(t.scalar(f["type"], "h"), "STAND_ALONE"),
                      batch_size=t.scalar(f["batch_size"], "i"),
                      scratch_size_bytes=t.scalar(f["scratch_size_bytes"], "i"),
                      instruction_bytes=instruction_bytes,
                      parameter_bytes=t.vector_length(f["parameters"]),
                      caching_token=t.scalar(f["parameter_caching_token"], "Q"),
                      estimated_cycles=t.scalar(f["estimated_cycles_64bit"], "q"),
                      input_layers=[_layer(x) for x in t.tables(f["input_layers"])],
                      output_layers=[_layer(x) for x in t.tables(f["output_layers"])])


def _layer(t):
    f = _LAYER
    numerics = t.table(f["numerics"])
    zero_point, scale = 0, 0.0
    if numerics is not None:
        zero_point = numerics.scalar(_NUMERICS["zero_point"], "i")
        scale = numerics.scalar(_NUMERICS["dequantization_factor"], "f")
    shape = tuple(t.scalar(f[k], "i") for k in ("y_dim", "x_dim", "z_dim"))
    return Layer(name=t.string(f["name"]), size_bytes=t.scalar(f["size_bytes"], "i"), shape=shape,
                 data_type=t.scalar(f["data_type"], "h"), zero_point=zero_point, scale=scale)


def layer_dtype(layer):
    """numpy-style name of a layer's data type (e.g. 'uint8'), or 'type N' for codes we do not know."""
    return LAYER_DATA_TYPES.get(layer.data_type, f"type {layer.data_type}")


def min_runtime_version(model):
    """The highest min_runtime_version over a compiled model's packages (0 when not compiled)."""
    versions = [pkg.min_runtime_version for op in model.operators() if op.name == "edgetpu-custom-op"
                for pkg in read_packages(op.custom_options)]
    return max(versions, default=0)
