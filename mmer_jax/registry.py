"""String name -> constructor registries, so configs name encoders, fusions and systems.

A registry is a dict with a decorator; modules register themselves on import and
:func:`ensure_registered` imports the model packages so every name is known before lookup.
"""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

T = TypeVar("T")


class Registry(dict):
    """A named mapping from string to constructor with a clear error for unknown names."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self[name] = obj
            return obj

        return wrap

    def get_or_raise(self, name: str):
        ensure_registered()
        if name not in self:
            known = ", ".join(sorted(self)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}")
        return self[name]


ENCODERS = Registry("encoder")
FUSIONS = Registry("fusion")
MODELS = Registry("model")

# Modules whose import registers models; kept as strings so importing the registry stays cheap.
_MODEL_MODULES = (
    "mmer_jax.models.encoders",
    "mmer_jax.models.fusion",
    "mmer_jax.models.quickstart",
    "mmer_jax.models.systems",
)
_loaded = False


def ensure_registered() -> None:
    """Imports every model module once so all registry names are present."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in _MODEL_MODULES:
        importlib.import_module(name)
