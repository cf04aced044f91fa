"""The training report's pictures, drawn with Pillow and numpy only (no matplotlib, no TensorFlow), so a report
can be drawn again from its JSON on any machine: the training curves, confusion matrices, and thumbnails of
misclassified pictures.

Every function returns a PIL image (or a namedtuple holding one); the layout arithmetic lives in small pure
functions (`nice_ticks`, `curve_data`, `confusion_layout`) that tests and callers can read without drawing.
"""

import math
from collections import namedtuple

import numpy as np
from PIL import Image, ImageDraw

from edgekit.errors import EdgekitError
from edgekit.evaluation.plot import COLOURS, default_font
from edgekit.runtime.annotate import save_image
from edgekit.runtime.images import load_image

# One colour per role, taken from the eval chart's palette so edgekit's pictures look alike.
TRAIN_COLOUR, VALIDATION_COLOUR, BEST_COLOUR, PHASE_COLOUR = COLOURS[0], COLOURS[1], COLOURS[2], COLOURS[4]
GRID_GREY = (225, 225, 225)
# A confusion cell's shade runs from white (none of that true class's pictures) to this dark blue (all of them).
FULL_SHADE = (8, 48, 107)
# Past this many classes a cell is too small for a count: the shading alone tells the story.
MAX_NUMBERED_CLASSES = 30
LABEL_CHARACTERS = 16
THUMBNAIL_SIZE = 96
THUMBNAIL_BACKGROUND = (245, 245, 245)
PLACEHOLDER_GREY = (160, 160, 160)

CURVES_SIZE = (1000, 440)

Ticks = namedtuple("Ticks", "low high step values")
# epochs: the x of each history row; the four series: floats or None (absent or not finite) per row;
# phase_starts: [(x, phase)] between the last epoch of one phase and the first of the next; best: [x] of the
# best epoch (one per phase when the trainer keeps the best of each phase).
Curves = namedtuple("Curves", "epochs loss val_loss accuracy val_accuracy phase_starts best")
# cell: pixels per cell; left, top: where the grid starts; numbered: counts written in cells;
# label_every: one label name per this many rows/columns (they would overlap otherwise).
ConfusionLayout = namedtuple("ConfusionLayout", "cell left top width height numbered label_every")
# problem: None when the picture was read, else why not (the thumbnail is then a grey placeholder).
Thumbnail = namedtuple("Thumbnail", "image problem")


# --- small pure helpers ----------------------------------------------------------------------------------

def _nice_number(value, rounded):
    """1, 2 or 5 times a power of ten near `value`: Heckbert's "nice numbers" (Graphics Gems, 1990), rounded
    to the nearest when `rounded`, else to the one at or above."""
    exponent = math.floor(math.log10(value))
    fraction = value / 10 ** exponent
    if rounded:
        nice = 1 if fraction < 1.5 else 2 if fraction < 3 else 5 if fraction < 7 else 10
    else:
        nice = 1 if fraction <= 1 else 2 if fraction <= 2 else 5 if fraction <= 5 else 10
    return nice * 10 ** exponent


def nice_ticks(low, high, count=5, bounds=None):
    """About `count` evenly spaced round tick values covering [low, high]; `bounds` (lo, hi) clips the axis
    (accuracy never leaves [0, 1]). A zero-width range is widened so a flat curve still gets an axis."""
    low, high = (float(low), float(high)) if low <= high else (float(high), float(low))
    if high - low < 1e-12:
        pad = abs(low) * 0.1 or 0.5
        low, high = low - pad, high + pad
    step = _nice_number(_nice_number(high - low, False) / max(count - 1, 1), True)
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    if bounds is not None:
        start, end = max(start, bounds[0]), min(end, bounds[1])
    values = [round(start + k * step, 12) for k in range(int(round((end - start) / step)) + 1)]
    values = [v for v in values if start - 1e-9 <= v <= end + 1e-9]
    return Ticks(start, end, step, values)


def epoch_ticks(first, last, most=10):
    """Whole-epoch tick values from `first` to `last`, at most about `most` of them."""
    step = 1
    while (last - first) / step > most:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2  # 1, 2, 5, 10, 20, 50, ...
    start = math.ceil(first / step) * step
    return list(range(start, int(last) + 1, step)) or [int(first)]


def finite(value):
    """A float for a finite number, else None (a diverged run logs NaN; an absent value is None)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def best_epochs(best_epoch):
    """The trainer's best epoch as a list of epoch numbers: from one number, or from {phase: epoch}."""
    found = best_epoch.values() if isinstance(best_epoch, dict) else [best_epoch]
    return [number for number in (finite(value) for value in found) if number is not None]


def curve_data(history, best_epoch=None):
    """The history rows ({"epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", ...}) as `Curves`.

    x is each row's "epoch" when those increase, else the row's position (counted from 1). `best_epoch`
    (the trainer's: a number, or {phase: number}) marks those epochs; without it, the epoch with the lowest
    validation loss (training loss when no row has one) is marked.
    """
    rows = [row for row in (history or ()) if isinstance(row, dict)]
    numbers = [finite(row.get("epoch")) for row in rows]
    increasing = all(n is not None for n in numbers) and all(a < b for a, b in zip(numbers, numbers[1:]))
    epochs = numbers if increasing else [float(k + 1) for k in range(len(rows))]
    series = {key: [finite(row.get(key)) for row in rows] for key in ("loss", "val_loss", "accuracy",
                                                                       "val_accuracy")}
    phase_starts = []
    for k in range(1, len(rows)):
        before, now = rows[k - 1].get("phase"), rows[k].get("phase")
        if now and before and now != before:
            phase_starts.append((epochs[k] - 0.5, str(now)))
    wanted = best_epochs(best_epoch)
    if wanted:
        best = [x for row, x in zip(rows, epochs) if finite(row.get("epoch")) in wanted]
    else:
        # The trainer's own rule: validation loss when there is a validation split, else training loss.
        watched = series["val_loss"] if any(v is not None for v in series["val_loss"]) else series["loss"]
        scored = [(v, x) for v, x in zip(watched, epochs) if v is not None]
        best = [min(scored)[1]] if scored else []
    return Curves(epochs, series["loss"], series["val_loss"], series["accuracy"], series["val_accuracy"],
                  phase_starts, best)


def cut_label(text, characters=LABEL_CHARACTERS):
    """A label cut to `characters` characters, ending in "..." when cut."""
    text = str(text)
    return text if len(text) <= characters else text[:max(characters - 3, 1)] + "..."


def row_shares(matrix):
    """Each row of a count matrix divided by its sum (rows that sum to zero stay zero): the share of a true
    class's pictures predicted as each class."""
    counts = np.asarray(matrix, dtype=np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


# --- drawing helpers ------------------------------------------------------------------------------------

def _drawable(text, font):
    """`text` as `font` can draw it: Pillow's bitmap default font (Pillow < 10.1) encodes text as Latin-1
    and raises on anything else, so other characters become "?" there rather than an exception."""
    try:
        font.getbbox(text)
        return text
    except UnicodeEncodeError:
        return text.encode("latin-1", "replace").decode("latin-1")


def _text_size(draw, text, font):
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def write_text(draw, xy, text, font, fill="black", anchor_right=False, centre=False):
    """Draw `text` with its top-left corner at `xy` (or its right edge at x / its centre at xy)."""
    text = _drawable(text, font)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = xy
    if anchor_right:
        x -= right - left
    if centre:
        x, y = x - (right - left) / 2, y - (bottom - top) / 2
    draw.text((x - left, y - top), text, fill=fill, font=font)


def _dashed_vertical(draw, x, top, bottom, colour, dash=6, width=2):
    y = top
    while y < bottom:
        draw.line((x, y, x, min(y + dash, bottom)), fill=colour, width=width)
        y += 2 * dash


def _rotated_text(text, font, fill="black"):
    """An RGBA picture of `text` turned 90 degrees anticlockwise (read bottom to top), transparent around it."""
    text = _drawable(text, font)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    strip = Image.new("RGBA", (max(right - left, 1) + 2, max(bottom - top, 1) + 2), (255, 255, 255, 0))
    ImageDraw.Draw(strip).text((1 - left, 1 - top), text, fill=fill, font=font)
    return strip.rotate(90, expand=True)


# --- training curves ------------------------------------------------------------------------------------

def _tick_text(value, step, percent):
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    if percent:
        return f"{value * 100:.{max(0, decimals - 2)}f}%"
    return f"{value:.{decimals}f}"


def panel(draw, box, curves, pairs, title, percent):
    """One chart in `box` (x0, y0, x1, y1 of the plotting area): grid, ticks, markers and the series `pairs`
    ([(values, colour)])."""
    font, small = default_font(15), default_font(12)
    x0, y0, x1, y1 = box
    values = [v for series, _ in pairs for v in series if v is not None]
    ticks = nice_ticks(min(values), max(values), bounds=(0.0, 1.0) if percent else None) if values \
        else nice_ticks(0.0, 1.0)
    first, last = (curves.epochs[0], curves.epochs[-1]) if curves.epochs else (1.0, 1.0)
    x_low, x_high = first - 0.5, last + 0.5
    span_y = (ticks.high - ticks.low) or 1.0

    def sx(v):
        return x0 + (v - x_low) / (x_high - x_low) * (x1 - x0)

    def sy(v):
        return y1 - (v - ticks.low) / span_y * (y1 - y0)

    write_text(draw, (x0, y0 - 30), title, font)
    for tick in ticks.values:
        y = sy(tick)
        draw.line((x0, y, x1, y), fill=GRID_GREY)
        draw.line((x0 - 5, y, x0, y), fill="black")
        write_text(draw, (x0 - 8, y - 6), _tick_text(tick, ticks.step, percent), small, anchor_right=True)
    for epoch in epoch_ticks(first, last):
        x = sx(epoch)
        draw.line((x, y1, x, y1 + 5), fill="black")
        write_text(draw, (x, y1 + 14), str(epoch), small, centre=True)
    write_text(draw, ((x0 + x1) / 2, y1 + 34), "epoch", small, centre=True)
    for x, _ in curves.phase_starts:
        _dashed_vertical(draw, sx(x), y0, y1, PHASE_COLOUR)
    for x in curves.best:
        draw.line((sx(x), y0, sx(x), y1), fill=BEST_COLOUR, width=2)
    for series, colour in pairs:
        points = [(sx(x), sy(v)) if v is not None else None for x, v in zip(curves.epochs, series)]
        for a, b in zip(points, points[1:]):
            if a is not None and b is not None:
                draw.line((a, b), fill=colour, width=3)
        for p in points:
            if p is not None:
                draw.ellipse((p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3), fill=colour)
    draw.rectangle(box, outline="black")


def legend(draw, x, y, curves):
    """The curves' legend from (`x`, `y`) rightwards: train, validation, the best epochs and phase changes."""
    small = default_font(13)
    entries = [("train", TRAIN_COLOUR, False), ("validation", VALIDATION_COLOUR, False)]
    if curves.best:
        entries.append((f"best epoch ({', '.join(f'{x:g}' for x in curves.best)})", BEST_COLOUR, False))
    for start, phase in curves.phase_starts:
        entries.append((f"{phase} from epoch {start + 0.5:g}", PHASE_COLOUR, True))
    for text, colour, dashed in entries:
        if dashed:
            for k in range(0, 28, 10):
                draw.line((x + k, y + 7, x + k + 5, y + 7), fill=colour, width=3)
        else:
            draw.line((x, y + 7, x + 28, y + 7), fill=colour, width=3)
        write_text(draw, (x + 34, y), text, small)
        x += 34 + _text_size(draw, _drawable(text, small), small)[0] + 28


def training_curves(history, out_path=None, best_epoch=None):
    """Loss and accuracy per epoch, train and validation, in two panels side by side, with a green line at
    each best epoch (`curve_data` reads `best_epoch`) and a dashed purple one where the phase changes
    (head -> fine-tune). Returns the PIL image; also saves it (atomically, format from the suffix) when
    `out_path` is given."""
    curves = curve_data(history, best_epoch)
    width, height = CURVES_SIZE
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    top, bottom = 50, height - 100
    if not curves.epochs:
        write_text(draw, (width / 2, height / 2), "no epochs recorded", default_font(16), centre=True)
    else:
        half = width // 2
        panel(draw, (70, top, half - 30, bottom), curves,
              [(curves.loss, TRAIN_COLOUR), (curves.val_loss, VALIDATION_COLOUR)], "loss", False)
        panel(draw, (half + 70, top, width - 30, bottom), curves,
              [(curves.accuracy, TRAIN_COLOUR), (curves.val_accuracy, VALIDATION_COLOUR)], "accuracy", True)
        legend(draw, 70, height - 36, curves)
    if out_path is not None:
        save_image(image, out_path)
    return image


# --- confusion matrix -----------------------------------------------------------------------------------

def confusion_layout(labels):
    """Where `confusion_matrix_picture` draws the grid for these labels (a `ConfusionLayout`)."""
    count = len(labels)
    numbered = count <= MAX_NUMBERED_CLASSES
    cell = min(64, max(18, 560 // max(count, 1))) if numbered else max(1, 720 // count)
    font = default_font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = _text_size(probe, "Hg", font)[1]
    label_every = max(1, math.ceil((line + 3) / cell))
    shown = [cut_label(name) for name in labels[::label_every]]
    extent = max((_text_size(probe, _drawable(name, font), font)[0] for name in shown), default=0) + 10
    left = 30 + extent
    top = 34 + 22 + extent
    return ConfusionLayout(cell, left, top, left + count * cell + 20, top + count * cell + 20, numbered,
                           label_every)


def confusion_matrix_picture(matrix, labels, title):
    """Rows: true class, columns: predicted class. Each cell shaded by its share of the true class's pictures
    (white none, dark blue all), with the count written in it when it fits and there are at most
    `MAX_NUMBERED_CLASSES` classes; label names (cut to `LABEL_CHARACTERS`) on both axes."""
    counts = np.asarray(matrix, dtype=np.float64) if matrix is not None else np.zeros((0, 0))
    labels = [str(name) for name in labels]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(labels) or not labels:
        raise EdgekitError(f"confusion matrix for '{title}' has shape {tuple(counts.shape)} but there are "
                           f"{len(labels)} labels: give one row and one column per label (rows true, columns "
                           "predicted)")
    counts = np.where(np.isfinite(counts), np.maximum(counts, 0), 0)
    layout = confusion_layout(labels)
    title_font, font = default_font(16), default_font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(layout.width, _text_size(probe, _drawable(title, title_font), title_font)[0] + 20)
    image = Image.new("RGB", (width, layout.height), "white")
    draw = ImageDraw.Draw(image)
    count, cell = len(labels), layout.cell
    white = np.array((255, 255, 255), dtype=np.float64)
    shares = row_shares(counts)
    shades = white + shares[..., None] * (np.array(FULL_SHADE, dtype=np.float64) - white)
    grid = Image.fromarray(np.round(shades).astype(np.uint8), "RGB").resize((count * cell, count * cell),
                                                                            Image.Resampling.NEAREST)
    image.paste(grid, (layout.left, layout.top))
    right, bottom = layout.left + count * cell, layout.top + count * cell
    if cell >= 8:
        for k in range(1, count):
            draw.line((layout.left + k * cell, layout.top, layout.left + k * cell, bottom), fill=GRID_GREY)
            draw.line((layout.left, layout.top + k * cell, right, layout.top + k * cell), fill=GRID_GREY)
    draw.rectangle((layout.left - 1, layout.top - 1, right, bottom), outline="black")
    if layout.numbered:
        number_font = default_font(max(9, min(14, cell // 3)))
        for row in range(count):
            for column in range(count):
                value = counts[row, column]
                text = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
                if _text_size(draw, text, number_font)[0] > cell - 3:
                    continue
                ink = "white" if shares[row, column] > 0.5 else "black"
                write_text(draw, (layout.left + (column + 0.5) * cell, layout.top + (row + 0.5) * cell), text,
                           number_font, fill=ink, centre=True)
    for k in range(0, count, layout.label_every):
        name = cut_label(labels[k])
        write_text(draw, (layout.left - 6, layout.top + (k + 0.5) * cell - 6), name, font, anchor_right=True)
        column = _rotated_text(name, font)
        x = int(layout.left + (k + 0.5) * cell - column.width / 2)
        image.paste(column, (x, layout.top - 6 - column.height), column)
    write_text(draw, (10, 8), title, title_font)
    write_text(draw, ((layout.left + right) / 2, 42), "predicted", font, centre=True)
    axis = _rotated_text("true", font)
    image.paste(axis, (6, int((layout.top + bottom) / 2 - axis.height / 2)), axis)
    return image


# --- thumbnails -----------------------------------------------------------------------------------------

def placeholder(problem, size=THUMBNAIL_SIZE):
    """A grey square with a cross, standing in for a picture that cannot be read; `problem` says why."""
    image = Image.new("RGB", (size, size), PLACEHOLDER_GREY)
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, size, size), fill=(130, 130, 130), width=2)
    draw.line((0, size, size, 0), fill=(130, 130, 130), width=2)
    write_text(draw, (size / 2, size / 2), "unreadable", default_font(12), fill="white", centre=True)
    return Thumbnail(image, str(problem))


def thumbnail(path, size=THUMBNAIL_SIZE):
    """The picture at `path` shrunk to fit a `size` square (centred on light grey), as a `Thumbnail`. A file
    that is gone or cannot be read any more gives a grey placeholder, never an exception: the report
    describes a finished run, and pictures move."""
    if not path:
        return placeholder("no file recorded", size)
    try:
        picture = load_image(path)
    except EdgekitError as error:
        return placeholder(error, size)
    except OSError as error:  # load_image turns read errors into EdgekitError; this covers anything it misses
        return placeholder(f"{path}: {error}", size)
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    square = Image.new("RGB", (size, size), THUMBNAIL_BACKGROUND)
    square.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    return Thumbnail(square, None)
