"""Figures from predictions: pure functions over numpy arrays, returning namedtuples.

Classification: top-1/top-5, per-class accuracy, the worst classes and the most frequent confusions.
Agreement: how often a model's top-1 equals a reference's, and the mean KL divergence of their outputs.
Detection: COCO mAP@[.5:.95] and mAP@.5 computed by pycocotools itself, not a re-implementation; from the
same run, each class's AP and the precision-recall curve at IoU 0.5.
Segmentation: mean IoU over classes from pixel counts summed over the whole data set.
"""

import contextlib
import io
from collections import Counter, namedtuple

import numpy as np

from edgekit.errors import EdgekitError

Accuracy = namedtuple("Accuracy", "count top1 top5 per_class worst confusions")
ClassAccuracy = namedtuple("ClassAccuracy", "id count top1")
Confusion = namedtuple("Confusion", "true predicted count")
Agreement = namedtuple("Agreement", "count top1 mean_kl")
DetectionScore = namedtuple("DetectionScore", "map map50 images annotations detections")
# per_class: {category id: ClassAP, or None for a category without ground truth}; pr_curve: {"recall": the
# 101 recall points, "precision": precision at IoU 0.5 averaged over the categories with ground truth at each,
# "per_class": {category id: its 101 precisions at IoU 0.5}}, all plain floats.
DetectionDetails = namedtuple("DetectionDetails", "map map50 per_class pr_curve images annotations detections")
ClassAP = namedtuple("ClassAP", "ap ap50")
# COCOeval's recall points (Params.recThrs), for the curve of a run with nothing to evaluate.
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MaskScore = namedtuple("MaskScore", "miou per_class pixel_accuracy images")


def top_k_hits(scores, targets, k):
    """True where the target is among the k best scores (ties: lower id first, as classify does)."""
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (order == np.asarray(targets)[:, None]).any(axis=1)


def accuracy(scores, targets, worst=5, confusions=5):
    """Accuracy of score rows [N, C] against target class ids [N]."""
    scores, targets = np.asarray(scores), np.asarray(targets, dtype=np.int64)
    if len(scores) == 0:
        raise EdgekitError("no images to score")
    top1 = top_k_hits(scores, targets, 1)
    top5 = top_k_hits(scores, targets, 5)
    predicted = np.argsort(-scores, axis=1, kind="stable")[:, 0]
    per_class = [ClassAccuracy(int(c), int((targets == c).sum()), float(top1[targets == c].mean()))
                 for c in np.unique(targets)]
    ranked = sorted(per_class, key=lambda c: (c.top1, -c.count, c.id))[:worst]
    mistakes = Counter((int(t), int(p)) for t, p in zip(targets, predicted) if t != p)
    common = [Confusion(t, p, n) for (t, p), n in sorted(mistakes.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Accuracy(len(targets), float(top1.mean()), float(top5.mean()), per_class, ranked,
                    common[:confusions])


def _distributions(scores, floor):
    """Rows made into probability distributions without zeros, which would make KL infinite.

    A quantized softmax stores every probability under half a step (`floor`) as exactly 0. Those zeros
    share the mass the row is missing (1 - its sum), each at most the floor: clipping them all to the
    floor instead would add up to ~2 of mass over 1000 classes, and a tiny epsilon would make rounding
    zeros dominate the divergence. Float outputs (floor 0) only clip underflow.
    """
    values = np.asarray(scores, dtype=np.float64).copy()
    if floor > 0:
        zeros = values <= 0
        count = np.maximum(zeros.sum(axis=1, keepdims=True), 1)
        missing = np.clip(1.0 - values.sum(axis=1, keepdims=True), 0.0, None)
        share = np.clip(missing / count, floor * 1e-3, floor)
        values = np.where(zeros, share, values)
    values = np.clip(values, 1e-12, None)
    return values / values.sum(axis=1, keepdims=True)


def agreement(scores, reference, floor=0.0, reference_floor=0.0):
    """Top-1 agreement with a reference model's scores, and mean KL(reference || model) in nats.

    The floors are each side's smallest meaningful probability: half the output's quantization step
    (see `output_floor`), 0 for a float output."""
    scores, reference = np.asarray(scores), np.asarray(reference)
    if scores.shape != reference.shape:
        raise EdgekitError(f"the model scores {scores.shape[-1]} classes and the reference "
                           f"{reference.shape[-1]}: agreement needs the same classes")
    if len(scores) == 0:
        raise EdgekitError("no images to compare")
    same = np.argsort(-scores, axis=1, kind="stable")[:, 0] == np.argsort(-reference, axis=1, kind="stable")[:, 0]
    p, q = _distributions(reference, reference_floor), _distributions(scores, floor)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=1)
    return Agreement(len(scores), float(same.mean()), float(kl.mean()))


def coco_ground_truth(images, categories, annotations):
    """A pycocotools COCO object built in memory (no file), quietly."""
    from pycocotools.coco import COCO

    document = {"images": [{"id": i, "file_name": str(f), "width": w, "height": h}
                           for i, (f, w, h) in images.items()],
                "categories": [{"id": c, "name": n} for c, n in categories.items()],
                "annotations": [dict(a, id=n + 1) for n, a in enumerate(annotations)]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress on stdout
        coco = COCO()
        coco.dataset = document
        coco.createIndex()
    return coco


def coco_map(images, categories, annotations, detections):
    """(mAP@[.5:.95], mAP@.5) of detections [dict(image_id, category_id, bbox [x, y, w, h], score)].

    COCOeval's own numbers; -1 (its "no ground truth") and no detections at all both count as 0.
    """
    found = coco_details(images, categories, annotations, detections)
    return DetectionScore(found.map, found.map50, found.images, found.annotations, found.detections)


def coco_details(images, categories, annotations, detections):
    """`coco_map`'s figures and, from the same COCOeval run, each category's AP and the precision-recall curve
    at IoU 0.5, as `DetectionDetails`.

    COCOeval.accumulate leaves precision [T iou thresholds, R recall points, K categories, A areas, M max
    detections], interpolated (each point the best precision at that recall or above) and -1 where a category
    has no ground truth; COCOeval.summarize averages it over T and R for AP, over R at IoU 0.5 for AP50. The
    per-category figures here are those averages for one category, at area "all" and 100 detections per
    image, the setting of the headline mAP (pycocotools/cocoeval.py, `summarize` and `accumulate`).
    """
    try:
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise EdgekitError("detection mAP needs pycocotools: pip install 'edgekit[eval]'") from None
    gt = coco_ground_truth(images, categories, annotations)
    counts = (len(images), len(annotations), len(detections))
    if not detections or not annotations:
        # pycocotools cannot load an empty result list; nothing found scores 0 wherever there was ground truth.
        # Crowd boxes are ignored by COCOeval, so a category with only those has no ground truth either.
        truth = {a["category_id"] for a in annotations if not a.get("iscrowd")}
        category_ids = sorted(categories)
        found_nothing = np.array([0.0 if c in truth else -1.0 for c in category_ids]).reshape(1, 1, -1, 1, 1)
        precision = np.broadcast_to(found_nothing, (1, len(RECALL_POINTS), len(category_ids), 1, 1))
        return _details(0.0, 0.0, category_ids, precision, RECALL_POINTS, 0, 0, counts)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes([dict(d) for d in detections])
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.imgIds = sorted(images)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [max(0.0, float(s)) for s in evaluator.stats[:2]]
    params = evaluator.params
    return _details(stats[0], stats[1], list(params.catIds), evaluator.eval["precision"], params.recThrs,
                    params.areaRngLbl.index("all"), params.maxDets.index(100), counts)


def _details(map_, map50, category_ids, precision, recall_points, area, max_dets, counts):
    """`DetectionDetails` from COCOeval's precision array (see `coco_details`); `precision[0]` is at IoU 0.5."""
    per_class, curves = {}, {}
    for k, category in enumerate(category_ids):
        at_all_iou = precision[:, :, k, area, max_dets]
        if (at_all_iou < 0).all():
            per_class[int(category)] = None
            continue
        per_class[int(category)] = ClassAP(float(at_all_iou.mean()), float(at_all_iou[0].mean()))
        curves[int(category)] = [float(p) for p in at_all_iou[0]]
    mean = np.mean(list(curves.values()), axis=0) if curves else np.zeros(len(recall_points))
    pr_curve = {"recall": [float(r) for r in recall_points], "precision": [float(p) for p in mean],
                "per_class": curves}
    return DetectionDetails(map_, map50, per_class, pr_curve, *counts)


def mask_counts(predicted, truth, ignore=255):
    """{class id: (intersection, union)} pixel counts of one image, `ignore` pixels of the truth left out."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {predicted.shape} and {truth.shape}")
    keep = truth != ignore
    predicted, truth = predicted[keep], truth[keep]
    counts = {}
    for c in np.union1d(np.unique(predicted), np.unique(truth)):
        p, t = predicted == c, truth == c
        counts[int(c)] = (int((p & t).sum()), int((p | t).sum()))
    return counts, int((predicted == truth).sum()), int(keep.sum())


def mean_iou(per_image):
    """Mean IoU over classes from per-image (counts, correct pixels, pixels) of `mask_counts`: the
    intersections and unions are summed over all images first, as VOC and Cityscapes do."""
    inter, union, correct, pixels = Counter(), Counter(), 0, 0
    for counts, right, total in per_image:
        for c, (i, u) in counts.items():
            inter[c] += i
            union[c] += u
        correct, pixels = correct + right, pixels + total
    per_class = {c: inter[c] / union[c] for c in sorted(union) if union[c]}
    miou = float(np.mean(list(per_class.values()))) if per_class else 0.0
    return MaskScore(miou, per_class, correct / pixels if pixels else 0.0, len(per_image))
