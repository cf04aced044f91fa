"""`edgekit bench`: latency and FPS of a model, for invoke alone and for the whole pipeline; for a model cut
into segments also each segment's latency and the throughput of the segments pipelined."""

import os

import click

from edgekit.cli.cmd_run import model_document
from edgekit.cli.common import device_option, handles_errors, json_option, print_output, threads_option
from edgekit.runtime.benchmark import DEFAULT_ITERATIONS, DEFAULT_WARMUP, bench_model, bench_segments


@click.command("bench")
@click.argument("models", nargs=-1, required=True, type=click.Path())
@device_option()
@click.option("-n", "--iterations", default=DEFAULT_ITERATIONS, show_default=True,
              help="Timed runs (for segments also the inputs streamed through the pipeline).")
@click.option("--warmup", default=DEFAULT_WARMUP, show_default=True, help="Untimed runs first.")
@threads_option(help="CPU threads [all cores; for segments, the cores shared out between them].")
@click.option("--image", type=click.Path(dir_okay=False), help="Image for the pipeline timing "
                                                                 "[a generated picture].")
@json_option()
@handles_errors
def bench_command(models, device, iterations, warmup, threads, image, as_json):
    """Latency and FPS of MODEL: invoke alone, and the whole pipeline.

    MODEL may also be a model cut into segments: the folder `edgekit segment` or `edgekit compile --segments`
    wrote, or the segment files in order. Each segment then runs on its own device (--device usb:0,usb:1 or
    pci:0,pci:1; auto: one Edge TPU per segment when there are enough, else the CPU), and bench adds each
    segment's latency and the throughput of a stream of -n inputs pipelined over the segments.

    \b
    Example:
      edgekit bench mobilenet_v2_1.0_224_quant_edgetpu.tflite -n 200 --device usb
      edgekit bench efficientdet_lite3_segments/ --device usb:0,usb:1 -n 200
    """
    if len(models) > 1 or os.path.isdir(models[0]) or _is_segment_set(models):
        report = bench_segments(list(models) if len(models) > 1 else models[0], device=device, iterations=iterations,
                                warmup=warmup, threads=threads, image=image)
    else:
        report = bench_model(models[0], device=device, iterations=iterations, warmup=warmup, threads=threads,
                             image=image)
    print_output(bench_document(report), as_json, format_bench)


def _is_segment_set(models):
    from edgekit.runtime.segmented import is_segment_set

    return is_segment_set(models)


def latency_document(stats):
    """A `runtime.benchmark.LatencyStats` as JSON (None stays None: nothing was timed)."""
    return stats._asdict() if stats is not None else None


def bench_document(report):
    """The document `edgekit bench --json` prints, from a `runtime.benchmark.BenchReport` (or a
    `SegmentsBenchReport`, which adds "per_segment": [{path, device, invoke}] and "stream": {inputs, seconds, fps,
    chain_fps, speedup})."""
    document = dict(model_document(report.model), threads=report.threads, warmup=report.warmup, image=report.image,
                    invoke=latency_document(report.invoke), pipeline=latency_document(report.pipeline))
    if hasattr(report, "stream"):
        document["per_segment"] = [{"path": s.path, "device": s.device, "invoke": latency_document(s.invoke)}
                                   for s in report.segments]
        document["stream"] = report.stream._asdict()
    return document


def format_bench(document):
    segments = document.get("per_segment")
    count = document["threads"]
    threads = f"{count} thread{'' if count == 1 else 's'}" + (" per segment" if segments else "")
    lines = [f"{document['model']} on {document['device']} ({document['backend']}, "
             f"{threads}, {document['invoke']['n']} runs after {document['warmup']} warm-up)",
             f"{'':<12}{'min':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'fps':>9}"]
    rows = [("invoke", document["invoke"]), ("pipeline", document["pipeline"])]
    rows += [(f"segment {k}", segment["invoke"]) for k, segment in enumerate(segments or [])]
    for name, s in rows:
        lines.append(f"{name:<12}" + "".join(f"{s[k]:>9.2f}" for k in ("min_ms", "p50_ms", "p90_ms", "p99_ms",
                                                                       "max_ms")) + f"{s['fps']:>9.1f}")
    lines.append("(milliseconds; pipeline = decode + preprocess + invoke + postprocess)")
    if segments:
        stream = document["stream"]
        where = ", ".join(f"segment {k} on {segment['device']}" for k, segment in enumerate(segments))
        lines.append(f"invoke = the {len(segments)} segments one after the other; {where}")
        lines.append(f"pipelined, a stream of {stream['inputs']} inputs: {stream['fps']:.1f} fps, "
                     f"{stream['speedup']:.2f}x the segments one after the other ({stream['chain_fps']:.1f} fps)")
    return "\n".join(lines)
