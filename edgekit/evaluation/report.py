"""The eval document for people: a side-by-side table, and a bar chart drawn with Pillow (no matplotlib,
which would be a heavy dependency for one picture)."""

import os

from PIL import Image, ImageDraw, ImageFont

from edgekit.files import atomic_path

# The figures in [0, 1] a task can have, in the order shown.
FRACTIONS = (("top1", "top-1"), ("top5", "top-5"), ("agreement", "agree"), ("map", "mAP"),
             ("map50", "mAP@.5"), ("miou", "mIoU"), ("pixel_accuracy", "pixel acc"),
              ("mask_iou", "mask IoU"))
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))


def _columns(document):
    return [(key, title) for key, title in FRACTIONS if any(key in m for m in document["models"])]


def _name(path, width):
    name = os.path.basename(str(path))
    return name if len(name) <= width else "..." + name[-(width - 3):]


def format_table(document):
    columns = _columns(document)
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
        lines.append(f"{_name(m['model'], 39):<40}{m['device']:<8}{cells}{kl}{latency:>9.2f}"
                     f"{m['images_per_second'] or 0:>8.1f}")
    for m in document["models"]:
        worst = [w for w in m.get("worst", []) if w["top1"] < 1.0]
        if worst:
            lines.append(f"{_name(m['model'], 60)}: worst classes " +
                         ", ".join(f"{w['label']} {100 * w['top1']:.0f}% of {w['count']}" for w in worst))
        if m.get("confusions"):
            lines.append("  most confused: " + ", ".join(f"{c['true']} -> {c['predicted']} x{c['count']}"
                                                          for c in m["confusions"]))
    workers = document["models"][0]["workers"] if document["models"] else 1
    lines.append(f"(invoke latency per image over {workers} worker process{'es' if workers > 1 else ''}; "
                 "img/s includes decoding and start-up)")
    return "\n".join(lines)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def draw_plot(document, out):
    """Grouped bars (one colour per model) for each figure in [0, 1], and a latency panel beside them."""
    columns = _columns(document)
    models = document["models"]
    width, height, margin = 960, 420, 50
    split = int(width * 0.68)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(14), _font(11)
    base, top = height - 70, 40
    draw.text((margin, 10), f"edgekit eval: {document['task']}, {document['images']} images", fill="black",
              font=font)
    # Left panel: fractions, 0..100 %.
    draw.line((margin, base, split - 20, base), fill="black")
    for tick in (0, 25, 50, 75, 100):
        y = base - (base - top) * tick / 100
        draw.line((margin - 4, y, split - 20, y), fill=(225, 225, 225) if tick else "black")
        draw.text((margin - 36, y - 7), f"{tick}%", fill="black", font=small)
    group = (split - 20 - margin) / max(1, len(columns))
    bar = group * 0.8 / max(1, len(models))
    for g, (key, title) in enumerate(columns):
        x0 = margin + g * group + group * 0.1
        for i, m in enumerate(models):
            if key in m:
                y = base - (base - top) * max(0.0, min(1.0, m[key]))
                draw.rectangle((x0 + i * bar, y, x0 + (i + 1) * bar - 2, base), fill=COLOURS[i % len(COLOURS)])
        draw.text((x0, base + 6), title, fill="black", font=small)
    # Right panel: p50 invoke latency, a bar per model.
    latencies = [m["latency"]["p50_ms"] if m.get("latency") else 0.0 for m in models]
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
        draw.text((x + 14, y), _name(m["model"], 40), fill="black", font=small)
    _save(image, out)
    return out


def _save(image, out):
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    with atomic_path(out) as temporary:
        image.save(temporary, format="PNG")
