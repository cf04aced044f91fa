"""Training over several devices with tf.distribute.MirroredStrategy, tested on two logical CPU devices (the
path a machine with several GPUs takes), in a fresh process: logical devices must be made before TensorFlow
starts."""

import json
import subprocess
import sys

from box_sets import composite_set
from picture_sets import faces_folder

SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edgekit import train
lines = []
result = train.image_classifier(sys.argv[1], input_size=64, epochs=8, devices=["/cpu:0", "/cpu:1"],
                                log=lines.append)
print(json.dumps({"log": lines, "test": result.scores["test"].accuracy, "val": result.scores["val"].accuracy,
                  "replicas": result.trained.placement}))
"""


def test_two_devices_train_with_mirrored_strategy(tmp_path):
    photos = faces_folder(tmp_path / "faces", size=64)
    done = subprocess.run([sys.executable, "-c", SCRIPT, photos], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["log"][0] == ("training on 2 devices with MirroredStrategy (/cpu:0, /cpu:1)")
    assert found["test"] >= 0.85 and found["val"] >= 0.85


DETECTOR_SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edgekit import train
lines = []
result = train.object_detector(sys.argv[1], input_size=128, epochs=2, freeze_backbone=True,
                               devices=["/cpu:0", "/cpu:1"], log=lines.append)
print(json.dumps({"log": lines, "history": result.history}))
"""


def test_a_detector_trains_on_two_devices(tmp_path):
    data = composite_set(tmp_path / "coco", "coco", train=16, val=4, test=4, seed=2)
    done = subprocess.run([sys.executable, "-c", DETECTOR_SCRIPT, str(data)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["log"][0] == "training on 2 devices with MirroredStrategy (/cpu:0, /cpu:1)"
    losses = [row["loss"] for row in found["history"]]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)
