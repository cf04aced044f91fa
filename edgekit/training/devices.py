"""Where training runs: every GPU TensorFlow sees (several through `tf.distribute.MirroredStrategy`), else the
CPU. Imported only from inside training functions (it imports TensorFlow)."""

from collections import namedtuple

import tensorflow as tf

from edgekit.errors import EdgekitError

# strategy: a tf.distribute strategy; devices: the device names it trains on; text: one line for people.
Placement = namedtuple("Placement", "strategy devices text")


def placement(devices=None):
    """The strategy for `devices` (None: all GPUs, else the default CPU device; or a list of TensorFlow
    device names such as ["/cpu:0", "/cpu:1"], which is how tests train on two logical CPU devices)."""
    if devices is None:
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not gpus:
            return Placement(tf.distribute.get_strategy(), ["CPU"], "CPU (TensorFlow sees no GPU)")
        devices = gpus
    devices = list(devices)
    known = {d.name.lower() for d in tf.config.list_logical_devices()}
    missing = [d for d in devices if _canonical(d) not in known]
    if missing:
        raise EdgekitError(f"training devices {', '.join(missing)} are not among TensorFlow's "
                           f"({', '.join(sorted(known))})")
    if len(devices) == 1:
        return Placement(tf.distribute.OneDeviceStrategy(devices[0]), devices, f"one device ({devices[0]})")
    return Placement(tf.distribute.MirroredStrategy(devices), devices,
                     f"{len(devices)} devices with MirroredStrategy ({', '.join(devices)})")


def _canonical(name):
    """"/cpu:1", "CPU:1" or "/device:CPU:1" -> "/device:cpu:1", as list_logical_devices names them (lower-cased)."""
    kind, _, index = name.lower().lstrip("/").replace("device:", "").partition(":")
    return f"/device:{kind}:{index or 0}"
