"""One ``Registry`` type for every name a config can say: systems, encoders, fusions, heads,
corpora, augmentations and kernel implementations.

It sits below every other package (it imports only the standard library), so ``data_prep`` and
``mmer_kernels``, which must not import ``mmer_jax``, use the same type as the model code.

    MODELS = Registry("system")

    @MODELS.register("s001")
    def build(...): ...

    CORPORA.register_lazy("emodb", "data_prep.emodb.emodb:Emodb")  # imported on first lookup
    MODELS.get("s001")  # KeyError naming the kind, the name and every known name
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A name that no entry of the registry has; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would print the message inside quotes
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping from names to objects, filled by ``register`` / ``register_lazy``.

    Args:
      kind: what the entries are ("system", "fusion", "corpus", ...), used in error messages.
      loaders: modules imported (once) before the first lookup, so that entries which register
        themselves on import are present without the caller importing them.
    """

    def __init__(self, kind: str, loaders: tuple[str, ...] = ()):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}
        self._loaders = tuple(loaders)
        self._loaded = not loaders

    # -- filling ---------------------------------------------------------------------------
    def register(self, name: str, obj: T | None = None) -> Any:
        """``@REG.register("name")`` as a decorator, or ``REG.register("name", obj)``.

        Raises:
          ValueError: ``name`` is already registered.
        """
        if obj is not None:
            self._add(name, obj)
            return obj

        def wrap(target: T) -> T:
            self._add(name, target)
            return target

        return wrap

    def register_lazy(self, name: str, target: str) -> None:
        """Registers ``"package.module:attribute"``, imported on the first lookup of ``name``."""
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: lazy target {target!r} needs 'module:attr'")
        self._check_new(name)
        self._lazy[name] = target

    def _check_new(self, name: str) -> None:
        if name in self._entries or name in self._lazy:
            raise ValueError(f"{self.kind} {name!r} registered twice")

    def _add(self, name: str, obj: Any) -> None:
        self._check_new(name)
        self._entries[name] = obj

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._loaders:
                importlib.import_module(module)

    # -- lookup ----------------------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> T:  # type: ignore[override]
        """The entry called ``name``.

        Raises:
          UnknownName (a KeyError): no entry is called ``name``; the message lists the known
            names. (``default`` is not supported: an unknown name is always an error.)
        """
        if default is not None:
            raise TypeError("Registry.get takes no default: an unknown name is an error")
        self._load()
        if name in self._lazy:
            # Dropped from the lazy table only once imported: a failed import fails every time.
            self._entries[name] = import_target(self._lazy[name])
            del self._lazy[name]
        if name not in self._entries:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {known}")
        return self._entries[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted (lazy entries are not imported)."""
        self._load()
        return sorted(set(self._entries) | set(self._lazy))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def import_target(target: str) -> Any:
    """The object a ``"package.module:attribute"`` string names, imported on this call.

    Raises:
      ValueError: ``target`` has no ``:``.
      ImportError / AttributeError: the module or the attribute does not exist.
    """
    if ":" not in target:
        raise ValueError(f"target {target!r} needs 'module:attr'")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def lookup(registry: Registry[T], name: str, key: str, error: Callable[[str], Exception]) -> T:
    """``registry.get(name)``, re-raised as ``error("config key 'KEY': unknown ...")``."""
    try:
        return registry.get(name)
    except UnknownName as exc:
        raise error(f"config key {key!r}: {exc}") from exc
