"""`edgekit eval`: accuracy of one or more models on the user's own data, side by side."""

import click

from edgekit.cli.cmd_bench import latency_document
from edgekit.cli.common import (device_option, emit_json, handles_errors, json_option, labels_option, resize_option,
                                task_option, threads_option)
from edgekit.errors import EdgekitError
from edgekit.runtime.tasks import CLASSIFICATION, DETECTION


@click.command("eval")
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--data", required=True, type=click.Path(),
              help="Class folders (classification), COCO .json / YOLO / VOC folder (detection), "
                   "images/ + masks/ (segmentation).")
@labels_option("Label file [the model's own].")
@click.option("--reference", type=click.Path(),
              help="Model (or folder of segments) to measure top-1 agreement and mean KL against (no labels "
                   "needed).")
@device_option()
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Worker processes.")
@threads_option("Threads per worker [cores / workers].", minimum=1)
@task_option()
@resize_option("Resize method [the model's, else the task's default].")
@click.option("--plot", "plot_to", type=click.Path(dir_okay=False), help="Draw the figures into OUT.png.")
@click.option("--no-progress", is_flag=True, help="No progress bar (it is drawn only on a terminal anyway).")
@json_option()
@handles_errors
def eval_command(models, data, labels_path, reference, device, workers, threads, task, resize, plot_to, no_progress,
                 as_json):
    """Accuracy of MODELS on your own data, side by side (e.g. float, int8 and Edge TPU twin).

    A model cut into segments (`edgekit segment`, `edgekit compile --segments`) is its folder, or its segment
    files one after the other; its segments run pipelined, one per device (--device usb:0,usb:1 or
    pci:0,pci:1, else as many Edge TPUs as are found, else the CPU).

    \b
    Example:
      edgekit eval a.tflite a_edgetpu.tflite --data photos/ --labels imagenet_labels.txt
      edgekit eval small.tflite --data photos/ --reference big.tflite --workers 2 --json
      edgekit eval detector.tflite --data coco/instances_val.json --plot eval.png
      edgekit eval det_segment_0_of_2_edgetpu.tflite det_segment_1_of_2_edgetpu.tflite \\
          --data coco/instances_val.json --device usb:0,usb:1
    """
    from edgekit.evaluation import evaluate, plot

    if plot_to and not plot_to.lower().endswith(".png"):
        raise EdgekitError(f"{plot_to}: --plot writes a PNG image; give a file name ending in .png")
    report = evaluate.evaluate(models, data, labels_path=labels_path, reference=reference, device=device,
                               workers=workers, threads=threads, task=task, resize=resize,
                               progress=False if no_progress else None)
    plotted = plot.draw_plot(report, plot_to) if plot_to else None
    if as_json:
        emit_json(eval_document(report, plotted))
    else:
        click.echo(format_table(report))


# --- JSON -----------------------------------------------------------------------------------------------

# With one model, these figures of it are also at the top level, where `--json` users look for them.
HEADLINE_FIGURES = ("top1", "top5", "agreement", "mean_kl", "map", "map50", "miou")


def scores_document(scores):
    """An `evaluation.evaluate.ModelScores` as JSON: its run, then the figures it has (absent, not null, where
    the task or the data gives none)."""
    document = {"model": scores.model, "device": scores.device, "ran": scores.ran, "workers": scores.workers,
                "threads": scores.threads, "seconds": scores.seconds, "images_per_second": scores.images_per_second,
                "latency": latency_document(scores.latency)}
    if scores.top1 is not None:
        document.update(top1=scores.top1, top5=scores.top5, per_class=[c._asdict() for c in scores.per_class],
                        worst=[c._asdict() for c in scores.worst],
                        confusions=[c._asdict() for c in scores.confusions])
    if scores.agreement is not None:
        document.update(agreement=scores.agreement, mean_kl=scores.mean_kl)
    if scores.map is not None:
        document.update(map=scores.map, map50=scores.map50, detections=scores.detections)
    if scores.miou is not None:
        document.update(miou=scores.miou, pixel_accuracy=scores.pixel_accuracy, mask_iou=scores.mask_iou,
                        per_class=[c._asdict() for c in scores.per_class])
    return document


def eval_document(report, plot=None):
    """The document `edgekit eval --json` prints, from an `evaluation.evaluate.EvalReport` (and the chart's
    path, when one was drawn)."""
    document = {"task": report.task, "data": report.data}
    if report.task == DETECTION:
        document.update(format=report.format, images=report.images, annotations=report.annotations,
                        categories=report.categories)
    else:
        document["images"] = report.images
    if report.task == CLASSIFICATION:
        document["classes"] = report.classes
    if report.reference is not None:
        document["reference"] = scores_document(report.reference)
    document["models"] = [scores_document(m) for m in report.models]
    if len(report.models) == 1:
        document.update({k: v for k, v in document["models"][0].items() if k in HEADLINE_FIGURES})
    if plot is not None:
        document["plot"] = plot
    return document


# --- text -----------------------------------------------------------------------------------------------

def format_table(report):
    """The side-by-side table of an `EvalReport`: a row per model, then each model's worst classes."""
    from edgekit.evaluation.plot import figure_columns, short_name

    columns = figure_columns(report)
    extra = f", {report.classes} classes" if report.classes else ""
    lines = [f"{report.task} on {report.data} ({report.images} images{extra})"]
    if report.reference is not None:
        lines.append(f"reference: {report.reference.model}")
    header = f"{'model':<40}{'device':<8}" + "".join(f"{t:>10}" for _, t in columns)
    with_kl = any(m.mean_kl is not None for m in report.models)
    lines.append(header + (f"{'KL':>8}" if with_kl else "") + f"{'p50 ms':>9}{'img/s':>8}")
    for m in report.models:
        figures = [getattr(m, field) for field, _ in columns]
        cells = "".join(f"{100 * v:>9.1f}%" if v is not None else f"{'-':>10}" for v in figures)
        kl = (f"{m.mean_kl:>8.3f}" if m.mean_kl is not None else f"{'-':>8}") if with_kl else ""
        latency = m.latency.p50_ms if m.latency is not None else float("nan")
        lines.append(f"{short_name(m.model, 39):<40}{m.device:<8}{cells}{kl}{latency:>9.2f}"
                     f"{m.images_per_second or 0:>8.1f}")
    for m in report.models:
        worst = [w for w in m.worst or [] if w.top1 < 1.0]
        if worst:
            lines.append(f"{short_name(m.model, 60)}: worst classes " +
                         ", ".join(f"{w.label} {100 * w.top1:.0f}% of {w.count}" for w in worst))
        if m.confusions:
            lines.append("  most confused: " + ", ".join(f"{c.true} -> {c.predicted} x{c.count}"
                                                          for c in m.confusions))
    workers = report.models[0].workers if report.models else 1
    lines.append(f"(invoke latency per image over {workers} worker process{'es' if workers > 1 else ''}; "
                 "img/s includes decoding and start-up)")
    return "\n".join(lines)
