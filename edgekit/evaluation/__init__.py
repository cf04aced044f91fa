"""`edgekit eval`: accuracy, agreement, mAP and mean IoU of one or more models on the user's own data.

TensorFlow-free like the runtime it drives: datasets.py reads folders and annotation files, metrics.py
turns predictions into figures (pycocotools for mAP), workers.py runs models over worker processes,
evaluate.py ties them together, and plot.py draws the figures; the side-by-side table is printed by the
command (`edgekit.cli.cmd_eval.format_table`).
"""
