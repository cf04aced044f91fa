"""`edgekit segment`: cut a CPU .tflite model into N segment files to pipeline over N Edge TPUs or CPU cores."""

import click

from edgekit.cli.common import handles_errors, json_option, print_output
from edgekit.compiler.check import format_bytes
from edgekit.compiler.partition import BY, DEFAULT_REPEATS, segment_model


@click.command("segment")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--segments", "count", type=int, required=True, help="How many segments (2 or more).")
@click.option("--by", type=click.Choice(BY), default=BY[0], show_default=True,
              help="params: balance parameter bytes, as edgetpu_compiler --num_segments does; latency: then move "
                   "the cuts until each segment's CPU latency (one thread each) is about the same.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for <model>_segment_K_of_N.tflite.")
@click.option("--repeats", type=click.IntRange(1), default=DEFAULT_REPEATS, show_default=True,
              help="Timed invokes per candidate segment with --by latency.")
@json_option()
@handles_errors
def segment_command(model, count, by, out, repeats, as_json):
    """Cut MODEL into N runnable segments, each a .tflite whose tensors keep the model's names.

    Run them pipelined with `edgekit run` / `bench` on the folder, or chain them with pycoral's
    PipelinedModelRunner. For Edge TPUs, `edgekit compile MODEL --segments N` splits and compiles.

    \b
    Example:
      edgekit segment mobilenet_v2_1.0_224_quant.tflite --segments 2 --by latency --out segments/
    """
    result = segment_model(model, count, out, by=by, repeats=repeats)
    print_output(result, as_json, format_segmented, segment_document)


def segment_document(result):
    """The JSON of a `partition.SegmentedModel`."""
    return {"model": result.model, "by": result.by, "count": len(result.files), "cuts": result.cuts,
            "files": result.files, "total_parameter_bytes": result.total_parameter_bytes,
            "latency_ms": result.latency_ms, "measured": result.measured,
            "segments": [{"index": plan.index, "file": path, "operators": [plan.start, plan.end],
                          "parameter_bytes": plan.parameter_bytes, "inputs": plan.inputs, "outputs": plan.outputs,
                          "latency_ms": result.latency_ms[plan.index] if result.latency_ms else None}
                         for plan, path in zip(result.segments, result.files)]}


def format_segmented(result):
    how = ("by parameter bytes" if result.by == "params" else
           f"by CPU latency, one thread per segment ({result.measured} candidate segments timed)")
    lines = [f"cut {result.model} into {len(result.files)} segments {how}, at operators "
             f"{', '.join(str(c) for c in result.cuts)}:"]
    for plan, path in zip(result.segments, result.files):
        latency = f", {result.latency_ms[plan.index]:g} ms" if result.latency_ms else ""
        lines.append(f"  {path}: operators {plan.start}-{plan.end - 1}, "
                     f"{format_bytes(plan.parameter_bytes)} of parameters{latency}")
    return "\n".join(lines)
