"""`edgekit eval`: accuracy, agreement, mAP and mean IoU of one or more models on the user's own data.

TensorFlow-free like the runtime it drives: datasets.py reads folders and annotation files, metrics.py
turns predictions into figures (pycocotools for mAP), workers.py runs models over worker processes,
evaluate.py ties them together into an `EvalReport` of namedtuples, and plot.py draws its figures; the
side-by-side table and the JSON are the command's (`edgekit.cli.cmd_eval`: `format_table`, `eval_document`).
"""
