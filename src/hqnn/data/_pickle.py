"""A restricted unpickler for the datasets distributed as Python pickles (CIFAR, WM-811K).

Unpickling runs code named by the file: a pickle can call any importable function. This
unpickler resolves only the globals that numpy arrays and pandas DataFrames need (classes from
numpy and pandas, and a short list of their reconstruction helpers), which blocks the usual
``os.system``-style payloads; it is a mitigation, not a sandbox, so only load files from a source
you trust, and convert WM-811K once to ``.npz`` (:func:`hqnn.data.convert_wm811k`).

It also maps module paths that old pandas and numpy versions wrote (``pandas.indexes.base``,
``pandas.core.index``, ``pandas.core.indexes.numeric.Int64Index``, ``numpy.core...``) to their
current homes, which is what lets a modern pandas read the original 2015 ``LSWMD.pkl``.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path

from hqnn.exceptions import DataError

__all__ = ["load_pickle"]

# (old module, old name) -> (current module, current name), for names that moved or merged.
_RENAMED = {
    **{
        (module, cls): ("pandas.core.indexes.base", "Index")
        for module in ("pandas.indexes.numeric", "pandas.core.indexes.numeric", "pandas.core.index")
        for cls in ("Int64Index", "UInt64Index", "Float64Index", "NumericIndex")
    },
    ("pandas.core.internals.blocks", "new_block"): ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.index", "Index"): ("pandas.core.indexes.base", "Index"),
    ("pandas.core.index", "_new_Index"): ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.index", "MultiIndex"): ("pandas.core.indexes.multi", "MultiIndex"),
    ("pandas.core.internals", "BlockManager"): ("pandas.core.internals.managers", "BlockManager"),
}

# Python 2 module names (the C unpickler maps these only in its own find_class, which is overridden).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

# Module prefixes that moved as a whole: old prefix -> current prefix.
_MOVED_PREFIXES = (
    ("pandas.indexes.", "pandas.core.indexes."),
    ("numpy.core.", "numpy._core."),
)

# Functions (not classes) that numpy/pandas pickles call to rebuild objects.
_ALLOWED_FUNCTIONS = {
    ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas._libs.internals", "_unpickle_block"),
}
_ALLOWED_BUILTINS = {"object", "slice", "bytes", "list", "dict", "tuple", "set", "frozenset", "complex", "bytearray"}
_ALLOWED_CLASS_ROOTS = ("numpy", "pandas", "collections")


def _current_location(module: str, name: str) -> tuple[str, str]:
    """Map an old (module, name) to where it lives now."""
    module = _PY2_MODULES.get(module, module)
    if (module, name) in _RENAMED:
        return _RENAMED[(module, name)]
    for old, new in _MOVED_PREFIXES:
        if module.startswith(old):
            module = new + module[len(old) :]
    return module, name


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that renames legacy paths and refuses globals outside numpy/pandas types."""

    def __init__(self, file, source: Path):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str):
        module, name = _current_location(module, name)
        if module == "builtins" and name in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        is_helper = (module, name) in _ALLOWED_FUNCTIONS or name.startswith("__pyx_unpickle")
        if module.split(".")[0] in _ALLOWED_CLASS_ROOTS:
            try:
                obj = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError) as exc:
                raise DataError(
                    f"{self._source}: the pickle refers to {module}.{name}, which this numpy/pandas "
                    "does not have (file from an unsupported version, or not a dataset pickle)"
                ) from exc
            if isinstance(obj, type) or is_helper:
                return obj
        elif is_helper:
            return super().find_class(module, name)
        raise DataError(
            f"{self._source}: refusing to unpickle {module}.{name}; a dataset pickle only needs "
            "numpy and pandas types (the file is not a dataset pickle, or it was tampered with)"
        )


def load_pickle(data: bytes, source: Path):
    """Unpickle ``data`` (read from ``source``) with the restricted, legacy-aware unpickler.

    Warning: unpickling can run code from the file even with the restrictions; load only files
    from a source you trust.

    Args:
        data: the pickle bytes (already decompressed).
        source: the file the bytes came from, named in error messages.

    Returns:
        The unpickled object. Python 2 ``str`` values decode as latin-1.

    Raises:
        DataError: the bytes are not a valid pickle, are truncated, or need a refused global.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except DataError:
        raise
    except Exception as exc:  # a corrupt pickle can raise almost anything (EOFError, KeyError, ...)
        raise DataError(
            f"{source}: not a readable pickle, or truncated ({type(exc).__name__}: {exc})"
        ) from exc
