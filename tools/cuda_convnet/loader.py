"""Read cuda-convnet checkpoints and data-provider meta files without executing anything.

A checkpoint is a pickled dict {"model_state": {...}, "op": OptionsParser}; it is stored plain,
as a zip archive with one member "data" (--zip-save=1) or gzip-compressed (util.unpickle accepts
it). Pickles come from Python 2 (protocol 2, byte strings, numpy arrays pickled by Python 2) or
Python 3. Only plain data and numpy arrays are rebuilt; every other class the pickle names
(cuda-convnet's options.OptionsParser, Option, ...) becomes an inert Stub: nothing is imported.
"""
import collections
import gzip
import io
import os
import pickle
import re
import zipfile

import numpy as np

from . import ConversionError


class Stub:
    """Stand-in for a class named by the pickle; keeps its arguments and state, runs nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.stub_args = args
        self.stub_state = None
        self.stub_items = []

    def __setstate__(self, state):
        self.stub_state = state

    # BUILD / APPENDS / SETITEMS may target list- or dict-like classes.
    def append(self, item):
        self.__dict__.setdefault("stub_items", []).append(item)

    def extend(self, items):
        for item in items:
            self.append(item)

    def __setitem__(self, key, value):
        self.append((key, value))

    def __repr__(self):
        return "<stub %s.%s>" % (type(self).stub_module, type(self).__name__)


_stub_classes = {}


def _stub_class(module, name):
    key = (module, name)
    if key not in _stub_classes:
        _stub_classes[key] = type(str(name), (Stub,), {"stub_module": module})
    return _stub_classes[key]


def _reconstruct(subtype, shape, dtype):
    # numpy.core.multiarray._reconstruct(ndarray, (0,), 'b'), followed by BUILD (numpy's own
    # ndarray.__setstate__, which honours is_fortran and accepts Python 2 str data decoded as
    # latin-1). Any subtype (np.matrix, a stub) becomes a plain ndarray.
    return np.ndarray(shape, dtype=np.dtype(dtype))


def _frombuffer(buf, dtype, shape, order):
    # numpy >= 1.16 with pickle protocol 5
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


def _scalar(dtype, raw=None):
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if raw is None:
        return np.zeros((), dtype=dtype)[()]
    return np.frombuffer(raw, dtype=dtype)[0]


def _codecs_encode(text, encoding="utf-8"):
    # Python 3 pickles bytes with protocol 2 as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding.lower() not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode(encoding)


def _reconstructor(cls, base, state=None):
    # copy_reg._reconstructor (protocol 0/1 new-style objects): only stubs and plain containers.
    obj = cls() if isinstance(cls, type) and issubclass(cls, Stub) else _stub_class("copy_reg", "object")()
    if state is not None:
        obj.__setstate__(state)
    return obj


_SAFE = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _SAFE[(_mod, "_reconstruct")] = _reconstruct
    _SAFE[(_mod, "scalar")] = _scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _SAFE[(_mod, "_frombuffer")] = _frombuffer
_SAFE[("numpy", "ndarray")] = np.ndarray
_SAFE[("numpy", "dtype")] = np.dtype
_SAFE[("_codecs", "encode")] = _codecs_encode
_SAFE[("collections", "OrderedDict")] = collections.OrderedDict
for _mod in ("__builtin__", "builtins"):
    for _name, _obj in (("set", set), ("frozenset", frozenset), ("bytearray", bytearray),
                        ("complex", complex), ("bytes", bytes), ("str", str), ("int", int),
                        ("float", float), ("list", list), ("tuple", tuple), ("dict", dict)):
        _SAFE[(_mod, _name)] = _obj
for _mod in ("copy_reg", "copyreg"):
    _SAFE[(_mod, "_reconstructor")] = _reconstructor


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        found = _SAFE.get((module, name))
        return found if found is not None else _stub_class(module, name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not supported")


def unpickle_bytes(data, what):
    """Unpickle `data` (bytes) safely; `what` names the source in error messages."""
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
            KeyError, AttributeError, MemoryError, OverflowError) as e:
        raise ConversionError("%s: cannot unpickle (truncated or not a pickle?): %s: %s"
                              % (what, type(e).__name__, e)) from None


def read_container(path):
    """The pickle bytes of a plain, zip-saved (member 'data') or gzip-compressed file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConversionError("cannot read %s: %s" % (path, e.strerror or e)) from None
    if not data:
        raise ConversionError("%s is empty" % path)
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = z.namelist()
                member = "data" if "data" in names else (names[0] if len(names) == 1 else None)
                if member is None:
                    raise ConversionError("%s: zip archive without a member named 'data' (members: %s)"
                                          % (path, ", ".join(names)))
                return z.read(member), "zip"
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise ConversionError("%s: broken zip archive (truncated?): %s" % (path, e)) from None
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data), "gzip"
        except (EOFError, OSError, ValueError) as e:
            raise ConversionError("%s: broken gzip data (truncated?): %s" % (path, e)) from None
    return data, "plain"


def _alphanum_key(s):
    # cuda-convnet's util.alphanum_key: "natural" order, so 140.10 sorts after 140.9.
    return [int(c) if i % 2 else c for i, c in enumerate(re.split("([0-9]+)", s))]


def resolve_checkpoint(path):
    """A checkpoint file, or the newest file of a checkpoint directory (as load_checkpoint does)."""
    if os.path.isdir(path):
        files = [f for f in os.listdir(path) if os.path.isfile(os.path.join(path, f))]
        if not files:
            raise ConversionError("checkpoint directory %s holds no files" % path)
        return os.path.join(path, sorted(files, key=_alphanum_key)[-1])
    if not os.path.exists(path):
        raise ConversionError("no such checkpoint: %s" % path)
    return path


def load_checkpoint(path):
    """-> (model_state dict, info dict with 'path' and 'container')."""
    path = resolve_checkpoint(path)
    data, container = read_container(path)
    obj = unpickle_bytes(data, path)
    if isinstance(obj, dict) and "model_state" in obj:
        state = obj["model_state"]
    elif isinstance(obj, dict) and "layers" in obj:
        state = obj                       # a bare model_state
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(l, dict) for l in obj):
        state = {"layers": list(obj)}     # a bare layer list (DeCAF's decafnet files)
    else:
        keys = ", ".join(sorted(map(str, obj.keys()))) if isinstance(obj, dict) else type(obj).__name__
        raise ConversionError("%s is not a cuda-convnet checkpoint: no 'model_state' (found: %s)"
                              % (path, keys))
    if not isinstance(state, dict) or "layers" not in state:
        raise ConversionError("%s: model_state has no 'layers'" % path)
    return state, {"path": path, "container": container}


def load_meta(path):
    """A data provider's meta file (batches.meta, input_meta): a dict with data_mean etc."""
    data, _ = read_container(path)
    obj = unpickle_bytes(data, path)
    if not isinstance(obj, dict):
        raise ConversionError("%s: expected a pickled dict (batches.meta / input_meta), got %s"
                              % (path, type(obj).__name__))
    return obj
