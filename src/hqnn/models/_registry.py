"""The model registry: names -> builders with default arguments, documented parameter counts and the
input size the defaults expect (timm's ``register_model`` / ``create_model`` / ``list_models``)."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from hqnn.exceptions import ConfigError

__all__ = [
    "ModelEntry",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
    "register_variants",
]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: registry name.
        builder: class or function called with ``defaults`` updated by the user's overrides.
        defaults: keyword arguments of this variant.
        param_count: trainable parameters of ``builder(**defaults)`` (checked by the tests).
        input_size: ``(C, H, W)`` the defaults are meant for (a small test input may differ in H, W).
        summary: one line shown by ``hqnn models``.
    """

    name: str
    builder: Callable[..., nn.Module]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    param_count: int | None = None
    input_size: tuple[int, int, int] = (3, 32, 32)
    summary: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    param_count: int | None = None,
    input_size: tuple[int, int, int] = (3, 32, 32),
    summary: str = "",
    **defaults: Any,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder under ``name`` (default: its ``__name__``) with ``defaults``.

    Raises:
        ConfigError: if the name is taken or a default is not an argument of the builder.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ConfigError(f"model name {key!r} is already registered")
        _check_arguments(key, builder, defaults)
        channels, height, width = input_size
        _REGISTRY[key] = ModelEntry(key, builder, dict(defaults), param_count, (channels, height, width), summary)
        return builder

    return decorator


def register_variants(builder: Callable[..., nn.Module], table: Mapping[str, Mapping[str, Any]]) -> None:
    """Register one builder once per row of ``table`` (name -> ``register_model`` keyword arguments)."""
    for name, row in table.items():
        register_model(name, **row)(builder)


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by a shell-style ``pattern`` (``"hcqdl*"``)."""
    names = sorted(_REGISTRY)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` of ``name``.

    Raises:
        ConfigError: for an unknown name; the message lists close matches.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known models: {', '.join(list_models())}"
        raise ConfigError(f"unknown model {name!r}; {hint}") from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name`` with its defaults updated by ``overrides``.

    Args:
        name: a name from :func:`list_models`.
        **overrides: builder arguments, e.g. ``num_classes=4, in_chans=1``.

    Returns:
        the model, in training mode.

    Raises:
        ConfigError: for an unknown name, an argument the builder does not take, or a
            ``num_classes``/``in_chans`` that is not an integer >= 1.

    Example:
        >>> model = create_model("spanet", num_classes=9, in_chans=1)
    """
    entry = get_model_entry(name)
    _check_arguments(name, entry.builder, overrides)
    kwargs = {**entry.defaults, **overrides}
    for key in _POSITIVE_INTS:
        value = kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"model {name!r}: {key} must be an integer >= 1; got {value!r}")
    return entry.builder(**kwargs)


# builder arguments that must be whole numbers >= 1 when a model takes them
_POSITIVE_INTS = ("num_classes", "in_chans")


def _check_arguments(name: str, builder: Callable[..., nn.Module], kwargs: Mapping[str, Any]) -> None:
    parameters = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise ConfigError(
            f"model {name!r} takes no argument(s) {', '.join(unknown)}; it takes: {', '.join(parameters)}"
        )
