"""`edgekit inspect`: what is inside a compiled model (packages, executables, cached and streamed bytes, CPU
ops).

Exit codes: 0 = compiled model reported, 1 = not a compiled model, 2 = unreadable.
"""

import sys

import click

from edgekit.cli.common import emit_json, error, handles_errors, json_option
from edgekit.compiler import compiled_model
from edgekit.compiler.check import format_bytes
from edgekit.tflite.edgetpu_package import layer_dtype


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=True))
@json_option()
@handles_errors
def inspect_command(model, as_json):
    """Explain an Edge TPU compiled model: packages, executables, cached/streamed bytes, CPU ops.

    \b
    Example:
      edgekit inspect mobilenet_v2_1.0_224_quant_edgetpu.tflite --json
    """
    report = compiled_model.inspect_file(model)
    if as_json:
        emit_json(compiled_model.to_document(report))
    if not report.compiled:
        error(compiled_model.not_compiled_message(model))
        sys.exit(1)
    if not as_json:
        click.echo(format_inspection(report))


def format_inspection(report):
    """The readable report: one block per custom op, then the CPU ops and the totals."""
    lines = []
    for c in report.custom_ops:
        lines.append(f"edgetpu-custom-op (op {c.index}): {len(c.inputs)} inputs, {len(c.outputs)} outputs")
        for p in c.packages:
            lines.append(f"  compiler {p.compiler_version or '?'}, min runtime {p.min_runtime_version}"
                         + (f", model id {p.model_identifier}" if p.model_identifier else ""))
            for x in p.executables:
                lines.append(f"  {x.type:<18} params {format_bytes(x.parameter_bytes):>10}  "
                             f"instructions {format_bytes(x.instruction_bytes):>10}  "
                             f"scratch {format_bytes(x.scratch_size_bytes):>9}  token {x.caching_token:x}")
                for kind, layers in (("in ", x.input_layers), ("out", x.output_layers)):
                    for layer in layers:
                        lines.append(f"    {kind} {_short(layer.name, 40):<40} {str(list(layer.shape)):<16} "
                                     f"{layer_dtype(layer):<7} zp {layer.zero_point:<6} scale {layer.scale:.6g}")
        lines.append(f"  parameters cached on chip {format_bytes(c.cached_bytes)}, "
                     f"streamed {format_bytes(c.streamed_bytes)}")
    s = report.summary
    cpu = ", ".join(f"{n} x{k}" if k > 1 else n for n, k in s["cpu_op_counts"].items()) or "none"
    lines += ["", f"ops left on the CPU: {cpu}",
              f"summary: {s['ops']} ops, {s['edgetpu_custom_ops']} on the Edge TPU, {s['cpu_ops']} on the CPU; "
              f"min runtime {s['min_runtime_version']}; cached {format_bytes(s['cached_bytes'])}, streamed "
              f"{format_bytes(s['streamed_bytes'])}"]
    return "\n".join(lines)


def _short(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."
