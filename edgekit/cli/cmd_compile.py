"""`edgekit compile`: run edgetpu_compiler (several models are co-compiled to share the cache) and explain
its log; without the compiler, say how to get it and what it would most likely do. With --segments N
--partition profile, cut the model where the segments' latencies on N attached Edge TPUs even out.

Exit codes: 0 = compiled, 1 = the compiler failed or the output folder cannot be written, 2 = unusable
model, 3 = no compiler here (or, for --partition profile, too few Edge TPUs).
"""

import sys

import click

from edgekit.cli.cmd_check import format_prediction
from edgekit.cli.common import emit_json, error, handles_errors, json_option, print_output
from edgekit.compiler import check, compiler, rules
from edgekit.compiler.check import format_bytes
from edgekit.compiler.partition import PARTITIONS


@click.command("compile")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("-o", "--out-dir", default=compiler.DEFAULT_OPTIONS.out_dir, show_default=True,
              type=click.Path(file_okay=True), help="Folder for <name>_edgetpu.tflite and .log.")
@click.option("--min-runtime", type=click.IntRange(rules.ALL_RUNTIMES, rules.NEWEST_RUNTIME),
              help=f"Oldest Edge TPU runtime [compiler: {rules.DEFAULT_RUNTIME}].")
@click.option("--segments", type=click.IntRange(1, 64), help="Split for pipelining over N Edge TPUs.")
@click.option("--partition", type=click.Choice(PARTITIONS), default=PARTITIONS[0], show_default=True,
              help="How --segments cuts: params, the compiler's split by parameter bytes; profile, cuts moved until "
                   "the segments' latencies on N attached Edge TPUs even out (Coral's profiling partitioner).")
@click.option("--search-delegate", is_flag=True, help="On failure, retry with shorter prefixes (-d).")
@click.option("--step", type=click.IntRange(1), help="Ops per retry with --search-delegate (-k).")
@click.option("--intermediate", help="End the Edge TPU part at these tensors, comma-separated (-i).")
@click.option("-a", "--multiple-subgraphs", is_flag=True, help="Allow several Edge TPU subgraphs (experimental).")
@click.option("--timeout", type=click.IntRange(1), default=compiler.DEFAULT_OPTIONS.timeout, show_default=True,
              help="Compile time limit, s.")
@json_option()
@handles_errors
def compile_command(models, out_dir, min_runtime, segments, partition, search_delegate, step, intermediate,
                    multiple_subgraphs, timeout, as_json):
    """Run edgetpu_compiler on MODELS (co-compiled to share the cache) and explain the result.

    \b
    Example:
      edgekit compile mobilenet_v2_1.0_224_quant.tflite -o out/ --search-delegate --step 10
      edgekit compile efficientdet_lite3.tflite --segments 2 --partition profile -o out/
    """
    if step and not search_delegate:
        raise click.UsageError("--step only works with --search-delegate")
    options = compiler.Options(out_dir=out_dir, min_runtime=min_runtime, segments=segments,
                               search_delegate=search_delegate, step=step,
                               intermediate=tuple(t for t in (intermediate or "").split(",") if t),
                               timeout=timeout, multiple_subgraphs=multiple_subgraphs, partition=partition)
    try:
        result = compiler.compile_models(models, options)
    except compiler.CompilerMissingError as e:
        # Without the compiler, the next best thing is what it would most likely say.
        error(e)
        if as_json:
            emit_json({"compiled": False, "error": str(e),
                       "predictions": {m: check.to_document(p) for m, p in e.predictions.items()}})
        else:
            click.echo("\n\n".join(f"Predicted by edgekit check (no compiler ran):\n{format_prediction(p)}"
                                   for p in e.predictions.values()))
        sys.exit(e.exit_code)
    except compiler.CompileFailedError as e:
        if as_json and e.result is not None:
            emit_json(compile_document(e.result, ok=False, message=str(e)))
        elif e.result is not None and e.result.stdout.strip():
            click.echo(e.result.stdout.rstrip())
        raise
    print_output(result, as_json, format_compile, lambda done: compile_document(done, ok=True))


def compile_document(result, ok, message=None):
    return {
        "compiled": ok, "error": message, "command": result.command, "returncode": result.returncode,
        "outputs": result.outputs, "version": result.report.version, "compile_ms": result.report.compile_ms,
        "fatal": result.report.fatal._asdict() if result.report.fatal else None,
        "models": [dict(m._asdict(), rows=[r._asdict() for r in m.rows]) for m in result.report.models],
        "disagreements": {k: [d._asdict() for d in v] for k, v in result.disagreements.items()},
        "learning_heads": {k: dict(h._asdict(), ops=list(h.ops)) for k, h in result.learning_heads.items()},
        "partition": partition_document(result.partition),
        "streaming": [a._asdict() for a in result.streaming],
    }


def partition_document(profiled):
    """--partition profile's cuts and measurements (a `partition.ProfiledPartition`), or None."""
    if profiled is None:
        return None
    return dict(profiled._asdict(), bounds=list(profiled.bounds))


def partition_lines(profiled):
    latency = ", ".join(f"{ms:g}" for ms in profiled.latency_ms)
    return ["", f"profiled on {', '.join(profiled.devices)}: segments start at operators "
                f"{', '.join(str(c) for c in profiled.cuts)}; Edge TPU latency per segment {latency} ms (the "
                f"parameter split's ranged {profiled.bounds[0]:g}-{profiled.bounds[1]:g} ms); "
                f"{profiled.measured} candidate segments compiled and timed",
            "CPU twins: " + ", ".join(profiled.cpu_segments)]


def learning_head_line(path, head):
    """What compile did by itself for a model with an on-device learning head."""
    return (f"{path}: its {head.kind} head stays on the CPU: added --intermediate_tensors {head.tensor} "
            f"{check.IMPRINTING_HEAD_WHY}")


def format_compile(result):
    lines = [f"compiled with edgetpu_compiler {result.report.version or '?'} "
             f"in {result.report.compile_ms if result.report.compile_ms is not None else '?'} ms"]
    lines += [learning_head_line(path, head) for path, head in result.learning_heads.items()]
    for m in result.report.models:
        lines += ["", f"{m.input_model} -> {m.output_model}",
                  f"  on-chip cache used {format_bytes(m.on_chip_used)}, remaining "
                  f"{format_bytes(m.on_chip_remaining)}, "
                  f"streamed off-chip {format_bytes(m.off_chip_streamed)}",
                  f"  Edge TPU subgraphs {m.subgraphs}, ops {m.total_ops} "
                  f"(Edge TPU {m.tpu_ops if m.tpu_ops is not None else '?'}, CPU "
                  f"{m.cpu_ops if m.cpu_ops is not None else '?'})"]
        lines += [f"  {r.op or '':<31}{r.count or '':<11}{r.status}" for r in m.rows]
    for path, found in result.disagreements.items():
        lines.append("")
        if not found:
            lines.append(f"{path}: the compiler agrees with edgekit check")
        for d in found:
            lines.append(f"{path}: {d.op}: check predicted {d.predicted_cpu} on the CPU, the compiler left "
                         f"{d.compiler_cpu}")
    for advice in result.streaming:
        lines += ["", f"{advice.model}: {format_bytes(advice.streamed)} of parameters stream off chip on every "
                      f"inference, which is much slower than the on-chip cache; spread them over {advice.segments} "
                      f"Edge TPUs: {advice.command}"]
    if result.partition is not None:
        lines += partition_lines(result.partition)
    lines += ["", "written: " + ", ".join(result.outputs)]
    return "\n".join(lines)
