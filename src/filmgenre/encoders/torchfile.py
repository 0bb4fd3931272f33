"""EfficientNet-Lite0's weights file without PyTorch: a legacy ``torch.save`` state dict as numpy arrays.

No code from the file ever runs: the unpickler admits an OrderedDict of tensors backed by
float or int64 storages and refuses every other name. ``take`` and ``check_all_used`` let
a network's loader copy the arrays strictly (every array used once, shapes checked).
"""

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from filmgenre import FilmgenreError


class WeightsError(FilmgenreError):
    """A weights file that is missing, malformed, or names something other than tensors."""


TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}  # BatchNorm counters are int64


@dataclass
class _Storage:
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def array(self) -> np.ndarray:
        flat = self.storage.data
        item = flat.itemsize
        if not self.shape:
            return flat[self.offset].copy()
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.shape, [s * item for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, shape, stride, requires_grad=False, hooks=None, metadata=None):
    if not (isinstance(storage, _Storage) and isinstance(offset, int) and isinstance(shape, tuple)
            and isinstance(stride, tuple) and all(isinstance(n, int) for n in shape + stride)):
        raise pickle.UnpicklingError("a tensor with malformed storage, offset, shape or stride")
    return _TensorRef(storage, offset, shape, stride)


class _TensorsOnly(pickle.Unpickler):
    """Admits an OrderedDict of tensors backed by float or int64 storages; refuses every other name."""

    def __init__(self, handle, storages: dict):
        super().__init__(handle)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"refuses {module}.{name}: only tensors of floats are read")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and pid[1] in STORAGE_DTYPES
                and pid[5] is None):  # (kind, storage type, key, device, elements, view): no views
            raise pickle.UnpicklingError(f"refuses the storage reference {pid!r}")
        _, kind, key, _device, numel, _view = pid
        return self.storages.setdefault(key, _Storage(STORAGE_DTYPES[kind], int(numel)))


def read_torch_legacy(path: Path | str) -> dict[str, np.ndarray]:
    """A legacy (non-zip) ``torch.save`` state dict as ``{name: numpy array}``, without PyTorch.

    The file is five records: a magic number, the protocol version, system info, the
    pickled state dict (tensors refer to storages by key), the list of storage keys; then
    each storage's raw bytes in that order, after its element count (int64).
    """
    path = Path(path)
    storages: dict[str, _Storage] = {}
    try:
        with open(path, "rb") as handle:
            header = [_TensorsOnly(handle, storages).load() for _ in range(3)]
            if header[0] != TORCH_LEGACY_MAGIC or not isinstance(header[2], dict):
                raise pickle.UnpicklingError("not a legacy PyTorch file (wrong magic number)")
            state = _TensorsOnly(handle, storages).load()
            keys = _TensorsOnly(handle, storages).load()
            for key in keys:
                storage = storages[key]
                (numel,) = np.frombuffer(handle.read(8), "<i8")
                if numel != storage.numel:
                    raise pickle.UnpicklingError(f"storage {key}: {numel} elements, {storage.numel} expected")
                storage.data = np.frombuffer(handle.read(numel * np.dtype(storage.dtype).itemsize),
                                             np.dtype(storage.dtype).newbyteorder("<"))
                if storage.data.size != numel:
                    raise pickle.UnpicklingError(f"storage {key} is truncated")
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as error:
        raise WeightsError(f"{path}: not a readable PyTorch state dict ({error}).") from None
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise WeightsError(f"{path}: holds something other than a dict of tensors.")
    return {name: ref.array() for name, ref in state.items()}


def take(weights: dict[str, np.ndarray], used: set, name: str, shape: tuple) -> np.ndarray:
    if name not in weights:
        raise WeightsError(f"weight {name} is missing")
    if weights[name].shape != shape:
        raise WeightsError(f"weight {name} has shape {weights[name].shape}, {shape} expected")
    used.add(name)
    return weights[name]


def check_all_used(weights: dict, used: set, ignored: Callable[[str], bool]) -> None:
    unused = sorted(name for name in weights if name not in used and not ignored(name))
    if unused:
        raise WeightsError(f"{len(unused)} weights fit no layer, e.g. {unused[:3]}")

