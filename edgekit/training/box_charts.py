"""The detector's training report pictures, drawn with Pillow and numpy only (no TensorFlow), in the classifier
report's style (`charts`): the loss curves (total, class and box loss per epoch), the precision-recall curves
of the float and int8 models, and each example test picture twice, its ground-truth boxes beside the int8
model's, drawn by the runtime's own `annotate.draw_objects` as `edgekit run` draws them.
"""

from collections import namedtuple

from PIL import Image, ImageDraw

from edgekit.errors import EdgekitError
from edgekit.evaluation.plot import COLOURS, default_font
from edgekit.runtime.adapters.detect import BBox, Object
from edgekit.runtime.annotate import draw_objects
from edgekit.runtime.images import load_image
from edgekit.training import charts

LOSS_CURVES_SIZE = (1200, 420)
# The three panels: title and the history keys of its training and validation series.
LOSS_PANELS = (("loss", "loss", "val_loss"), ("class loss", "class_loss", "val_class_loss"),
               ("box loss", "box_loss", "val_box_loss"))
PR_SIZE = (560, 480)
PR_AREA = (70, 58, PR_SIZE[0] - 30, PR_SIZE[1] - 100)  # x0, y0, x1, y1 of the plot: recall 0..1, precision 1..0
# The model that ships in red, drawn last so it stays on top where the curves agree.
MODEL_COLOURS = {"float": COLOURS[0], "int8": COLOURS[3]}
EXAMPLE_SIDE = 320  # each half of an example pair fits this square
EXAMPLE_GAP = 8
EXAMPLE_HEADER = 22
BOX_WIDTH = 2
EXAMPLE_TITLES = ("ground truth", "int8 model")

# epochs, phase_starts, best: as `charts.Curves`; series: {history key: [float or None per row]}.
LossCurves = namedtuple("LossCurves", "epochs phase_starts best series")
# left, right: where each half's picture is pasted; size: the whole pair; scale: picture pixels to drawn ones.
PairLayout = namedtuple("PairLayout", "size left right picture_size scale")


# --- loss curves ----------------------------------------------------------------------------------------

def loss_data(history, best_epoch=None):
    """The history rows as `LossCurves`: the epochs and best epoch as the classifier's curves read them
    (`charts.curve_data`), and every series of `LOSS_PANELS`."""
    curves = charts.curve_data(history, best_epoch)
    rows = [row for row in (history or ()) if isinstance(row, dict)]
    keys = [key for _, train, val in LOSS_PANELS for key in (train, val)]
    series = {key: [charts.finite(row.get(key)) for row in rows] for key in keys}
    return LossCurves(curves.epochs, curves.phase_starts, curves.best, series)


def loss_curves(history, best_epoch=None):
    """Total, class and box loss per epoch, train and validation, in three panels side by side, with a green
    line at the best epoch (the weights kept). Returns the PIL image."""
    found = loss_data(history, best_epoch)
    width, height = LOSS_CURVES_SIZE
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    if not found.epochs:
        charts.write_text(draw, (width / 2, height / 2), "no epochs recorded", default_font(16), centre=True)
        return image
    # `charts.panel` reads only the epochs, phase starts and best epochs of a `charts.Curves`.
    frame = charts.Curves(found.epochs, None, None, None, None, found.phase_starts, found.best)
    third = width // 3
    for k, (title, train, val) in enumerate(LOSS_PANELS):
        box = (k * third + 70, 50, (k + 1) * third - 20, height - 100)
        charts.panel(draw, box, frame, [(found.series[train], charts.TRAIN_COLOUR),
                                        (found.series[val], charts.VALIDATION_COLOUR)], title, False)
    charts.legend(draw, 70, height - 36, frame)
    return image


# --- precision-recall -----------------------------------------------------------------------------------

def pr_curves(test):
    """[(model name, recall, precision)] of the models in `test` ({name: scores}, in the order given) whose
    scores hold a "pr_curve" with as many finite precisions as recalls."""
    found = []
    for name, scores in test.items():
        curve = (scores or {}).get("pr_curve") or {}
        recall = [charts.finite(r) for r in curve.get("recall") or ()]
        precision = [charts.finite(p) for p in curve.get("precision") or ()]
        if recall and len(recall) == len(precision) and None not in recall + precision:
            found.append((name, recall, precision))
    return found


def precision_recall(test):
    """Precision against recall at IoU 0.5, one curve per model of `test` ({name: scores with "pr_curve" and
    "map50"}), the int8 model drawn over the float one. Returns the PIL image."""
    width, height = PR_SIZE
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = default_font(15), default_font(12)
    x0, y0, x1, y1 = PR_AREA
    charts.write_text(draw, (x0, 12), "precision-recall at IoU 0.5, test split", font)
    ticks = charts.nice_ticks(0.0, 1.0)
    for tick in ticks.values:
        x, y = x0 + tick * (x1 - x0), y1 - tick * (y1 - y0)
        draw.line((x0, y, x1, y), fill=charts.GRID_GREY)
        draw.line((x, y0, x, y1), fill=charts.GRID_GREY)
        charts.write_text(draw, (x0 - 8, y - 6), f"{tick:.1f}", small, anchor_right=True)
        charts.write_text(draw, (x, y1 + 14), f"{tick:.1f}", small, centre=True)
    charts.write_text(draw, ((x0 + x1) / 2, y1 + 34), "recall", small, centre=True)
    charts.write_text(draw, (x0 - 50, y0 - 20), "precision", small)
    curves = sorted(pr_curves(test), key=lambda found: found[0] == "int8")
    for name, recall, precision in curves:
        points = [(x0 + r * (x1 - x0), y1 - p * (y1 - y0)) for r, p in zip(recall, precision)]
        draw.line(points, fill=MODEL_COLOURS.get(name, COLOURS[4]), width=3, joint="curve")
    draw.rectangle((x0, y0, x1, y1), outline="black")
    x = x0
    for name, _, _ in reversed(curves):
        map50 = charts.finite((test.get(name) or {}).get("map50"))
        text = f"{name} (mAP@0.5 {100 * map50:.1f}%)" if map50 is not None else name
        draw.line((x, height - 29, x + 28, height - 29), fill=MODEL_COLOURS.get(name, COLOURS[4]), width=3)
        charts.write_text(draw, (x + 34, height - 36), text, small)
        x += 34 + draw.textlength(text, font=small) + 28
    if not curves:
        charts.write_text(draw, ((x0 + x1) / 2, (y0 + y1) / 2), "no curve recorded", font, centre=True)
    return image


# --- ground truth beside the prediction ----------------------------------------------------------------

def pair_layout(width, height, side=EXAMPLE_SIDE):
    """Where `truth_and_prediction` puts a `width` x `height` picture: scaled to fit a `side` square, twice."""
    scale = side / max(width, height)
    shown = (max(1, round(width * scale)), max(1, round(height * scale)))
    left, right = (0, EXAMPLE_HEADER), (shown[0] + EXAMPLE_GAP, EXAMPLE_HEADER)
    return PairLayout((2 * shown[0] + EXAMPLE_GAP, shown[1] + EXAMPLE_HEADER), left, right, shown, scale)


def _objects(found, scale, scored):
    """`Object`s of ground truth [(class, (xmin, ymin, xmax, ymax))] or predictions [(class, score, box)]
    with the boxes scaled; ground truth has no score, so it is captioned with its label alone."""
    objects = []
    for item in found or ():
        class_index, score, corners = (item[0], float(item[1]), item[2]) if scored else (item[0], None, item[1])
        bbox = BBox(*(float(v) for v in corners)).scale(scale, scale)
        objects.append(Object(int(class_index), score, bbox))
    return objects


def truth_and_prediction(path, truth, predicted, labels, side=EXAMPLE_SIDE):
    """The picture at `path` twice, side by side: the ground-truth boxes `truth` [(class index, (xmin, ymin,
    xmax, ymax))] on the left, the int8 model's `predicted` [(class index, score, box)] on the right, boxes in
    the picture's pixels; `labels` names the class indices (a list). A picture that cannot be read gives grey
    placeholders. Returns a `charts.Thumbnail` (the image, and why the picture could not be read or None)."""
    names = dict(enumerate(str(name) for name in labels or ()))
    picture, problem = None, "no file recorded"
    if path:
        try:
            picture, problem = load_image(path), None
        except EdgekitError as error:
            problem = str(error)
        except OSError as error:  # load_image turns read errors into EdgekitError; this covers anything it misses
            problem = f"{path}: {error}"
    if picture is None:
        missing = charts.placeholder(problem, side).image
        layout = pair_layout(side, side, side)
        halves = (missing, missing)
    else:
        layout = pair_layout(picture.width, picture.height, side)
        shown = picture.resize(layout.picture_size, Image.Resampling.LANCZOS)
        halves = (draw_objects(shown, _objects(truth, layout.scale, False), names, BOX_WIDTH),
                  draw_objects(shown, _objects(predicted, layout.scale, True), names, BOX_WIDTH))
    image = Image.new("RGB", layout.size, "white")
    draw = ImageDraw.Draw(image)
    for half, corner, title in zip(halves, (layout.left, layout.right), EXAMPLE_TITLES):
        image.paste(half, corner)
        charts.write_text(draw, (corner[0] + 2, 4), title, default_font(13))
    return charts.Thumbnail(image, problem)
