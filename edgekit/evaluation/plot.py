"""The eval figures as a picture: a bar chart of an `evaluate.EvalReport` drawn with Pillow (no matplotlib,
which would be a heavy dependency for one picture)."""

import os

from PIL import Image, ImageDraw, ImageFont

from edgekit.runtime.annotate import save_image

# The figures in [0, 1] a task can have (`evaluate.ModelScores` fields), in the order shown.
FRACTIONS = (("top1", "top-1"), ("top5", "top-5"), ("agreement", "agree"), ("map", "mAP"),
             ("map50", "mAP@.5"), ("miou", "mIoU"), ("pixel_accuracy", "pixel acc"),
             ("mask_iou", "mask IoU"))
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))


def figure_columns(report):
    """[(field, title)] of the figures in [0, 1] that some model of the `EvalReport` has."""
    return [(field, title) for field, title in FRACTIONS
            if any(getattr(m, field) is not None for m in report.models)]


def short_name(path, width):
    """A model's file name, cut from the left to `width` characters."""
    name = os.path.basename(str(path))
    return name if len(name) <= width else "..." + name[-(width - 3):]


def default_font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def draw_plot(report, out):
    """Grouped bars (one colour per model) for each figure in [0, 1] of an `EvalReport`, and a latency panel
    beside them; returns `out`."""
    columns = figure_columns(report)
    models = report.models
    width, height, margin = 960, 420, 50
    split = int(width * 0.68)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = default_font(14), default_font(11)
    base, top = height - 70, 40
    draw.text((margin, 10), f"edgekit eval: {report.task}, {report.images} images", fill="black", font=font)
    # Left panel: fractions, 0..100 %.
    draw.line((margin, base, split - 20, base), fill="black")
    for tick in (0, 25, 50, 75, 100):
        y = base - (base - top) * tick / 100
        draw.line((margin - 4, y, split - 20, y), fill=(225, 225, 225) if tick else "black")
        draw.text((margin - 36, y - 7), f"{tick}%", fill="black", font=small)
    group = (split - 20 - margin) / max(1, len(columns))
    bar = group * 0.8 / max(1, len(models))
    for g, (field, title) in enumerate(columns):
        x0 = margin + g * group + group * 0.1
        for i, m in enumerate(models):
            value = getattr(m, field)
            if value is not None:
                y = base - (base - top) * max(0.0, min(1.0, value))
                draw.rectangle((x0 + i * bar, y, x0 + (i + 1) * bar - 2, base), fill=COLOURS[i % len(COLOURS)])
        draw.text((x0, base + 6), title, fill="black", font=small)
    # Right panel: p50 invoke latency, a bar per model.
    latencies = [m.latency.p50_ms if m.latency is not None else 0.0 for m in models]
    longest = max(latencies) or 1.0
    draw.text((split, top - 25), "invoke p50 (ms)", fill="black", font=font)
    row = (base - top) / max(1, len(models))
    for i, ms in enumerate(latencies):
        y = top + i * row + row * 0.2
        draw.rectangle((split, y, split + (width - split - 70) * ms / longest, y + row * 0.6),
                       fill=COLOURS[i % len(COLOURS)])
        draw.text((split + 4 + (width - split - 70) * ms / longest, y), f"{ms:.1f}", fill="black", font=small)
    # Legend: model names under the chart.
    for i, m in enumerate(models):
        x = margin + (i % 3) * 300
        y = height - 40 + (i // 3) * 16
        draw.rectangle((x, y + 2, x + 10, y + 12), fill=COLOURS[i % len(COLOURS)])
        draw.text((x + 14, y), short_name(m.model, 40), fill="black", font=small)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    return save_image(image, out)
