"""Explain a compiled model: what each edgetpu-custom-op holds, what stayed on the CPU, and the totals.

Byte accounting follows the package layout of google-coral/libedgetpu's `executable/executable.fbs` and
Coral's account of parameter caching (https://coral.ai/docs/edgetpu/compiler/#parameter-data-caching): the
PARAMETER_CACHING executable's parameters live in the on-chip cache; the parameters of an EXECUTION_ONLY
or lone STAND_ALONE executable are streamed to the chip on every inference.
"""

from collections import Counter, namedtuple

from edgekit.errors import ModelFormatError
from edgekit.tflite.edgetpu_package import EdgeTpuPackageError, layer_dtype, read_packages
from edgekit.tflite.model import EDGETPU_CUSTOM_OP, read_model

CustomOp = namedtuple("CustomOp", "index inputs outputs packages cached_bytes streamed_bytes instruction_bytes")
CpuOp = namedtuple("CpuOp", "index op version")
Inspection = namedtuple("Inspection", "path compiled custom_ops cpu_ops summary")

STREAMED_TYPES = ("EXECUTION_ONLY", "STAND_ALONE")


def inspect_file(path):
    return inspect_model(read_model(path))


def inspect_model(model):
    if not model.is_edgetpu_compiled:
        return Inspection(model.path, False, [], [], {"model": model.path, "compiled": False})
    graph = model.main
    custom, cpu = [], []
    for op in model.operators():
        if op.name == EDGETPU_CUSTOM_OP:
            custom.append(custom_op(model, graph, op))
        else:
            cpu.append(CpuOp(op.index, op.name, op.version))
    return Inspection(model.path, True, custom, cpu, summarize(model, custom, cpu))


def custom_op(model, graph, op):
    try:
        packages = read_packages(op.custom_options)
    except EdgeTpuPackageError as e:
        raise ModelFormatError(f"{model.path}: op {op.index} edgetpu-custom-op is damaged ({e}); "
                               "compile the model again") from None
    executables = [x for p in packages for x in p.executables]
    cached = sum(x.parameter_bytes for x in executables if x.type == "PARAMETER_CACHING")
    streamed = sum(x.parameter_bytes for x in executables if x.type in STREAMED_TYPES)
    names = [graph.tensors[i].name for i in op.inputs if i >= 0], [graph.tensors[i].name for i in op.outputs]
    return CustomOp(op.index, names[0], names[1], packages, cached, streamed,
                    sum(x.instruction_bytes for x in executables))


def summarize(model, custom, cpu):
    packages = [p for c in custom for p in c.packages]
    tokens = {x.caching_token for p in packages for x in p.executables if x.caching_token}
    return {
        "model": model.path, "compiled": True, "size_bytes": model.size,
        "ops": len(model.operators()), "edgetpu_custom_ops": len(custom), "cpu_ops": len(cpu),
        "cpu_op_counts": dict(Counter(c.op for c in cpu)),
        "min_runtime_version": max((p.min_runtime_version for p in packages), default=0),
        "compiler_versions": sorted({p.compiler_version for p in packages}),
        "cached_bytes": sum(c.cached_bytes for c in custom),
        "streamed_bytes": sum(c.streamed_bytes for c in custom),
        "instruction_bytes": sum(c.instruction_bytes for c in custom),
        # Co-compiled models share one token, so equal tokens across files mean a shared cache.
        "caching_tokens": sorted(tokens),
        "inputs": [_tensor_doc(t) for t in model.input_tensors()],
        "outputs": [_tensor_doc(t) for t in model.output_tensors()],
    }


def _tensor_doc(t):
    scale, zero_point = t.quantization.per_tensor
    return {"name": t.name, "shape": list(t.shape), "dtype": t.type.lower(), "scale": scale,
            "zero_point": zero_point}


def _layer_doc(layer):
    return {"name": layer.name, "shape": list(layer.shape), "dtype": layer_dtype(layer),
            "zero_point": layer.zero_point, "scale": layer.scale, "size_bytes": layer.size_bytes}


def to_document(report):
    if not report.compiled:
        return {"compiled": False, "summary": report.summary, "message": not_compiled_message(report.path)}
    return {
        "compiled": True,
        "custom_ops": [{
            "index": c.index, "inputs": c.inputs, "outputs": c.outputs, "cached_bytes": c.cached_bytes,
            "streamed_bytes": c.streamed_bytes, "instruction_bytes": c.instruction_bytes,
            "packages": [{
                "compiler_version": p.compiler_version, "min_runtime_version": p.min_runtime_version,
                "model_identifier": p.model_identifier, "virtual_chip_id": p.virtual_chip_id,
                "executables": [{
                    "name": x.name, "type": x.type, "chip": x.chip, "batch_size": x.batch_size,
                    "parameter_bytes": x.parameter_bytes, "instruction_bytes": x.instruction_bytes,
                    "scratch_bytes": x.scratch_size_bytes, "caching_token": x.caching_token,
                    "estimated_cycles": x.estimated_cycles,
                    "input_layers": [_layer_doc(layer) for layer in x.input_layers],
                    "output_layers": [_layer_doc(layer) for layer in x.output_layers],
                } for x in p.executables],
            } for p in c.packages],
        } for c in report.custom_ops],
        "cpu_ops": [c._asdict() for c in report.cpu_ops],
        "summary": report.summary,
    }


def not_compiled_message(path):
    return (f"{path} is not compiled for the Edge TPU (it has no edgetpu-custom-op); "
            f"run `edgekit check {path}` to predict what the compiler will map")
