"""The COCO box metric through pycocotools' COCOeval, on detections gathered from all ranks."""
import contextlib
import io

import numpy as np

# COCOeval.stats order of the box metrics reported
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def detection_rows(image_id, boxes, scores, labels):
    """(K, 7) float64 rows [image_id, x, y, w, h, score, label] of one image's detections
    (x1y1x2y2 boxes to COCO's xywh)."""
    rows = np.zeros((len(boxes), 7))
    rows[:, 0] = image_id
    rows[:, 1:3] = boxes[:, :2]
    rows[:, 3:5] = boxes[:, 2:] - boxes[:, :2]
    rows[:, 5], rows[:, 6] = scores, labels
    return rows


def coco_metrics(coco_gt, rows, cat_ids, image_ids=None):
    """{AP, AP50, AP75, APs, APm, APl} of the detection rows against the COCO ground truth
    (over `image_ids`, default all its images). No detection at all is AP 0, not an error."""
    from pycocotools.cocoeval import COCOeval

    if len(rows) == 0:
        return {k: 0.0 for k in STAT_NAMES}
    results = [{"image_id": int(r[0]), "bbox": [float(v) for v in r[1:5]], "score": float(r[5]),
                "category_id": int(cat_ids[int(r[6])])} for r in rows]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        if image_ids is not None:
            ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # COCOeval's -1 (no ground truth of that size) as NaN
    return {k: float(v) if v >= 0 else float("nan") for k, v in zip(STAT_NAMES, ev.stats[:6])}
