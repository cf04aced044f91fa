"""`edgekit bench`: latency and FPS of a model, for invoke alone and for the whole pipeline."""

import click

from edgekit.cli.cmd_run import model_document
from edgekit.cli.common import device_option, handles_errors, json_option, print_output, threads_option
from edgekit.runtime.benchmark import DEFAULT_ITERATIONS, DEFAULT_WARMUP, bench_model


@click.command("bench")
@click.argument("model", type=click.Path(dir_okay=False))
@device_option()
@click.option("-n", "--iterations", default=DEFAULT_ITERATIONS, show_default=True, help="Timed runs.")
@click.option("--warmup", default=DEFAULT_WARMUP, show_default=True, help="Untimed runs first.")
@threads_option()
@click.option("--image", type=click.Path(dir_okay=False), help="Image for the pipeline timing "
                                                                 "[a generated picture].")
@json_option()
@handles_errors
def bench_command(model, device, iterations, warmup, threads, image, as_json):
    """Latency and FPS of MODEL: invoke alone, and the whole pipeline.

    \b
    Example:
      edgekit bench mobilenet_v2_1.0_224_quant_edgetpu.tflite -n 200 --device usb
    """
    report = bench_model(model, device=device, iterations=iterations, warmup=warmup, threads=threads, image=image)
    print_output(bench_document(report), as_json, format_bench)


def latency_document(stats):
    """A `runtime.benchmark.LatencyStats` as JSON (None stays None: nothing was timed)."""
    return stats._asdict() if stats is not None else None


def bench_document(report):
    """The document `edgekit bench --json` prints, from a `runtime.benchmark.BenchReport`."""
    return dict(model_document(report.model), threads=report.threads, warmup=report.warmup, image=report.image,
                invoke=latency_document(report.invoke), pipeline=latency_document(report.pipeline))


def format_bench(document):
    lines = [f"{document['model']} on {document['device']} ({document['backend']}, "
             f"{document['threads']} threads, {document['invoke']['n']} runs after {document['warmup']} warm-up)",
             f"{'':<10}{'min':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'fps':>9}"]
    for name in ("invoke", "pipeline"):
        s = document[name]
        lines.append(f"{name:<10}" + "".join(f"{s[k]:>9.2f}" for k in ("min_ms", "p50_ms", "p90_ms", "p99_ms",
                                                                       "max_ms")) + f"{s['fps']:>9.1f}")
    lines.append("(milliseconds; pipeline = decode + preprocess + invoke + postprocess)")
    return "\n".join(lines)
