"""`edgekit convert`: a Keras model (zoo name, .keras/.h5 file, SavedModel folder) to a full-int8 Edge TPU
ready .tflite, calibrated on the user's own pictures."""

import click

from edgekit.calibration.ranges import METHODS
from edgekit.cli.common import handles_errors, json_option, print_output, task_option, warning as cli_warning
from edgekit.converters.api import CONVERTIBLE_TASKS, DEFAULTS, LEARNING_OUTPUTS, convert, to_document
from edgekit.converters.quantize import IO_TYPES

CALIBRATION, INTERFACE, DETECTION = DEFAULTS.calibration, DEFAULTS.interface, DEFAULTS.detection
EMBEDDING, IMPRINTING = LEARNING_OUTPUTS


@click.command("convert")
@click.argument("model")
@click.option("--calib", required=True, help="Calibration pictures: a folder (recursive), a glob ('imgs/*.jpg'), a "
                                              ".txt list, a video, or a COCO / YOLO / VOC dataset folder.")
@click.option("--weights", help="Weights for a zoo model (e.g. imagenet).")
@click.option("--num-samples", default=CALIBRATION.num_samples, show_default=True, type=click.IntRange(min=1),
              help="Calibration images to use.")
@click.option("--calibration", "method", type=click.Choice(METHODS), default=CALIBRATION.method, show_default=True,
              help="Activation range method.")
@click.option("--io", type=click.Choice(IO_TYPES), default=INTERFACE.io, show_default=True,
              help="Input/output type (raw pixels either way).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, exists=True),
              help="Label file to embed (pycoral formats).")
@click.option("--float", "write_float", is_flag=True, help="Also write <name>_float.tflite, the float baseline.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Output folder.")
@click.option("--strict", is_flag=True, help="Refuse a model with ops the Edge TPU cannot map.")
@click.option("--mean", default=INTERFACE.mean, show_default=True, help="Normalisation: x = (pixel - mean) / std.")
@click.option("--std", default=INTERFACE.std, show_default=True, help="Normalisation: x = (pixel - mean) / std.")
@task_option("Override the model's task.", tasks=CONVERTIBLE_TASKS)
@click.option("--seed", default=CALIBRATION.seed, show_default=True, help="Calibration sampling seed.")
@click.option("--video-every", default=CALIBRATION.video_every, show_default=True, type=click.IntRange(min=1),
              help="Take every k-th frame of a video.")
@click.option("--max-detections", default=DETECTION.max_detections, show_default=True,
              help="Detection: boxes kept.")
@click.option("--score-threshold", default=DETECTION.score_threshold, show_default=True,
              help="Detection: lowest score kept.")
@click.option("--iou-threshold", default=DETECTION.iou_threshold, show_default=True,
              help="Detection: NMS IoU threshold.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Keep per-tensor calibration statistics "
                                                                    "here, so another method reuses them.")
@click.option("--bias-correction/--no-bias-correction", default=None,
              help="Correct int8 biases layer by layer against the float model (closer agreement with float, "
                   "one pass over a few pictures per layer) [on for classifiers, off for detectors].")
@click.option("--no-compile", is_flag=True, help="Do not run edgetpu_compiler even when it is installed.")
@click.option("--embedding", is_flag=True, help="On-device learning: write the classifier's embedding extractor "
                                                "(its pooled features as the output), for `edgekit learn backprop`.")
@click.option("--imprinting", is_flag=True, help="On-device learning: write the embedding extractor with pycoral's "
                                                 "imprinting head, the classifier's classes as its first ones, for "
                                                 "`edgekit learn imprint`.")
@json_option()
@handles_errors
def convert_command(model, calib, weights, num_samples, method, io, labels_path, write_float, out_dir, strict, mean,
                    std, task, seed, video_every, max_detections, score_threshold, iou_threshold, cache_dir,
                    bias_correction, no_compile, embedding, imprinting, as_json):
    """Convert MODEL (a zoo name, .keras/.h5 file or SavedModel folder) to a full-int8 Edge TPU ready .tflite,
    calibrated on your own pictures.

    \b
    Example:
      edgekit convert efficientnet-lite0 --weights imagenet --calib photos/ --out out/
      edgekit convert efficientnet-lite0 --weights imagenet --calib photos/ --out out/ --imprinting
    """
    if embedding and imprinting:
        raise click.UsageError("--embedding and --imprinting exclude each other: --imprinting already holds the "
                               "embedding extractor, with a head")
    learning = EMBEDDING if embedding else IMPRINTING if imprinting else None
    result = convert(model, calib, out_dir, weights=weights, num_samples=num_samples, method=method, io=io,
                     labels=labels_path, write_float=write_float, strict=strict, mean=mean, std=std, task=task,
                     seed=seed, video_every=video_every, max_detections=max_detections,
                     score_threshold=score_threshold, iou_threshold=iou_threshold, cache_dir=cache_dir,
                     bias_correction=bias_correction, compile=not no_compile, learning=learning)
    for warning in result.warnings:
        cli_warning(warning)
    print_output(result, as_json, format_result, to_document)


def format_result(result):
    lines = [f"int8 model     {result.int8_path}"]
    if result.float_path:
        lines.append(f"float model    {result.float_path}")
    if result.compiled_path:
        lines.append(f"compiled       {result.compiled_path}")
    if result.report_html:
        lines.append(f"report         {result.report_html}")
    c = result.calibration
    corrected = " + bias correction" if "bias correction" in result.metadata.get("calibration", "") else ""
    lines.append(f"calibration    {result.method}{corrected}, {c['used']} images from {c['source']} "
                 f"({c['skipped']} skipped)")
    found = result.agreement
    embedding = result.embedding_agreement
    if embedding:
        lines.append(f"vs float       embedding cosine similarity {embedding['mean_cosine']:.4f} on average "
                     f"(lowest {embedding['min_cosine']:.4f}) on {embedding['pictures']} calibration pictures")
    if found:
        lines.append(f"vs float       same top-1 class on {100 * found['top1']:.1f}% of {found['pictures']} "
                     f"calibration pictures, mean KL {found['mean_kl']:.3f}")
    e = result.check
    lines.append(f"edge tpu       {e['tpu']} of {e['ops']} ops predicted on the Edge TPU"
                 + (f"; on the CPU: {', '.join(sorted(e['cpu_ops']))}" if e["cpu_ops"] else ""))
    head = e.get("learning_head")
    if head:
        lines.append(f"               the {head['kind']} head's {len(head['ops'])} ops stay on the CPU on purpose "
                     f"(edgekit compile ends the Edge TPU part at '{head['tensor']}')")
    if not (result.compile or {}).get("ran"):
        why = (result.compile or {}).get("why")
        if why and why != "not requested":
            lines.append(f"not compiled   {why}")
    lines.append(f"time           {result.timings.get('total', 0):.1f} s")
    return "\n".join(lines)
