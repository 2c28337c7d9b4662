"""A restricted unpickler for the datasets distributed as Python pickles (CIFAR, WM-811K).

Unpickling runs code named by the file: a pickle can call any importable function. This
unpickler resolves only an exact list of the globals that the real files need (found by
instrumenting the unpickler on them): numpy array and scalar reconstruction and ``numpy.dtype``
for the CIFAR batches; the pandas DataFrame, index, block-manager and string-array classes (and
their rebuild helpers) for ``LSWMD.pkl``; and a few built-in containers. Everything else (any
other numpy class such as ``numpy.memmap``, which opens files; ``numpy.load``; ``os``;
``subprocess``; ``builtins.eval``/``exec``/``open``; ``importlib``; dotted attribute paths) is
refused with a :class:`~hqnn.exceptions.DataError` *before* its module is imported, so a refused
pickle can neither import a module nor touch a file. See ``docs/security.md``.

It also maps module paths that old pandas and numpy versions wrote (``pandas.indexes.base``,
``pandas.core.index``, ``pandas.core.indexes.numeric.Int64Index``, ``numpy.core...``) to their
current homes, which is what lets a modern pandas read the original 2015 ``LSWMD.pkl``.
"""

from __future__ import annotations

import codecs
import importlib
import io
import pickle
from pathlib import Path

from hqnn.exceptions import DataError

__all__ = ["load_pickle", "ALLOWED_GLOBALS"]

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
    ("pandas.core.internals", "SingleBlockManager"): ("pandas.core.internals.managers", "SingleBlockManager"),
}

# Python 2 module names (the C unpickler maps these only in its own find_class, which is overridden).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

# Module prefixes that moved as a whole: old prefix -> current prefix.
_MOVED_PREFIXES = (
    ("pandas.indexes.", "pandas.core.indexes."),
    ("numpy.core.", "numpy._core."),
)

ALLOWED_GLOBALS = frozenset({
    # built-in containers and the protocol-2 object rebuild helpers (they only call __new__ of an
    # allowed class)
    *(("builtins", name) for name in ("object", "slice", "bytes", "bytearray", "list", "dict", "tuple", "set",
                                      "frozenset", "complex")),
    ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes (latin-1 only, below)
    # numpy arrays, scalars and dtypes (CIFAR batches, the maps inside LSWMD.pkl)
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    # pandas frames (LSWMD.pkl, old and new pandas; each class under the paths pandas versions write)
    *((module, "DataFrame") for module in ("pandas", "pandas.core.frame")),
    *((module, "Series") for module in ("pandas", "pandas.core.series")),
    *((module, "Index") for module in ("pandas", "pandas.core.indexes.base")),
    *((module, "RangeIndex") for module in ("pandas", "pandas.core.indexes.range")),
    *((module, "MultiIndex") for module in ("pandas", "pandas.core.indexes.multi")),
    ("pandas.core.indexes.frozen", "FrozenList"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    *((module, "StringArray") for module in ("pandas.arrays", "pandas.core.arrays.string_")),
    *((module, "StringDtype") for module in ("pandas", "pandas.core.arrays.string_")),
})
"""The (module, name) pairs a dataset pickle may name, after the legacy renames above; nothing else resolves."""

_LATIN1 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1"}


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` restricted to the latin-1 text -> bytes step that Python 3's protocol-2 pickles use."""
    if not isinstance(text, str) or str(encoding).lower() not in _LATIN1:
        raise pickle.UnpicklingError(f"_codecs.encode is allowed only for latin-1 text; got encoding {encoding!r}")
    return codecs.encode(text, "latin1", errors)


def _current_location(module: str, name: str) -> tuple[str, str]:
    """Map an old (module, name) to where it lives now."""
    module = _PY2_MODULES.get(module, module)
    if (module, name) in _RENAMED:
        return _RENAMED[(module, name)]
    for old, new in _MOVED_PREFIXES:
        if module.startswith(old):
            module = new + module[len(old) :]
    return module, name


def _import(module: str):
    """Import an allowed module; ``numpy._core`` is ``numpy.core`` before numpy 2."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if module.startswith("numpy._core."):
            return importlib.import_module("numpy.core." + module[len("numpy._core.") :])
        raise


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that renames legacy paths and resolves only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file, source: Path):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str):
        module, name = _current_location(module, name)
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(
                f"{self._source}: refusing to unpickle {module}.{name}; a dataset pickle may only name numpy "
                "arrays and dtypes and pandas frames (the file is not a dataset pickle, or it was tampered "
                "with; see docs/security.md)"
            )
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        try:
            return getattr(_import(module), name)
        except (ImportError, AttributeError) as exc:
            raise DataError(
                f"{self._source}: the pickle refers to {module}.{name}, which this numpy/pandas "
                "does not have (file from an unsupported version, or not a dataset pickle)"
            ) from exc

    def persistent_load(self, pid):
        raise DataError(f"{self._source}: refusing a pickle with persistent ids (not a dataset pickle)")


def load_pickle(data: bytes, source: Path):
    """Unpickle ``data`` (read from ``source``) with the restricted, legacy-aware unpickler.

    Only :data:`ALLOWED_GLOBALS` resolve, so a file can rebuild numpy arrays and pandas frames but
    cannot name a function that opens files, starts processes or imports modules.

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
