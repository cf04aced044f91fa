"""`edgekit eval`: accuracy of one or more models on the user's own data, side by side."""

import click

from edgekit.cli.options import (device_option, emit_json, handles_errors, json_option, labels_option, resize_option,
                                 task_option, threads_option)
from edgekit.errors import EdgekitError


@click.command("eval")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(),
              help="Class folders (classification), COCO .json / YOLO / VOC folder (detection), "
                   "images/ + masks/ (segmentation).")
@labels_option("Label file [the model's own].")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="Model to measure top-1 agreement and mean KL against (no labels needed).")
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

    \b
    Example:
      edgekit eval a.tflite a_edgetpu.tflite --data photos/ --labels imagenet_labels.txt
      edgekit eval small.tflite --data photos/ --reference big.tflite --workers 2 --json
      edgekit eval detector.tflite --data coco/instances_val.json --plot eval.png
    """
    from edgekit.evaluation import evaluate, plot

    if plot_to and not plot_to.lower().endswith(".png"):
        raise EdgekitError(f"{plot_to}: --plot writes a PNG image; give a file name ending in .png")
    document = evaluate.evaluate(models, data, labels_path=labels_path, reference=reference, device=device,
                                 workers=workers, threads=threads, task=task, resize=resize,
                                 progress=False if no_progress else None)
    if plot_to:
        document["plot"] = plot.draw_plot(document, plot_to)
    if as_json:
        emit_json(document)
    else:
        click.echo(format_table(document))


def format_table(document):
    from edgekit.evaluation.plot import figure_columns, short_name

    columns = figure_columns(document)
    extra = f", {document['classes']} classes" if document.get("classes") else ""
    lines = [f"{document['task']} on {document['data']} ({document['images']} images{extra})"]
    if "reference" in document:
        lines.append(f"reference: {document['reference']['model']}")
    header = f"{'model':<40}{'device':<8}" + "".join(f"{t:>10}" for _, t in columns)
    with_kl = any("mean_kl" in m for m in document["models"])
    lines.append(header + (f"{'KL':>8}" if with_kl else "") + f"{'p50 ms':>9}{'img/s':>8}")
    for m in document["models"]:
        cells = "".join(f"{100 * m[k]:>9.1f}%" if k in m else f"{'-':>10}" for k, _ in columns)
        kl = (f"{m['mean_kl']:>8.3f}" if "mean_kl" in m else f"{'-':>8}") if with_kl else ""
        latency = m["latency"]["p50_ms"] if m.get("latency") else float("nan")
        lines.append(f"{short_name(m['model'], 39):<40}{m['device']:<8}{cells}{kl}{latency:>9.2f}"
                     f"{m['images_per_second'] or 0:>8.1f}")
    for m in document["models"]:
        worst = [w for w in m.get("worst", []) if w["top1"] < 1.0]
        if worst:
            lines.append(f"{short_name(m['model'], 60)}: worst classes " +
                         ", ".join(f"{w['label']} {100 * w['top1']:.0f}% of {w['count']}" for w in worst))
        if m.get("confusions"):
            lines.append("  most confused: " + ", ".join(f"{c['true']} -> {c['predicted']} x{c['count']}"
                                                          for c in m["confusions"]))
    workers = document["models"][0]["workers"] if document["models"] else 1
    lines.append(f"(invoke latency per image over {workers} worker process{'es' if workers > 1 else ''}; "
                 "img/s includes decoding and start-up)")
    return "\n".join(lines)
