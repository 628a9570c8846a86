"""Import a user's object from a ``'package.module:Name'`` or ``'path/file.py:Name'`` spec:
a strategy class, a ``Setup``, a feature provider, a risk manager."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeloop.data.features import FeatureProvider
from tradeloop.errors import ConfigError
from tradeloop.setup import Setup

__all__ = [
    "SetupSpec",
    "load_feature_provider",
    "load_object",
    "load_setup",
    "load_strategy_class",
]


def load_strategy_class(spec: str) -> type[Any]:
    """Import ``'pkg.module:Class'`` or ``'path/to/file.py:Class'`` and return the class."""
    strategy_class: type[Any] = load_object(spec, "--strategy")
    return strategy_class


def load_object(spec: str, what: str) -> Any:
    """Import ``'pkg.module:Name'`` or ``'path/to/file.py:Name'``; ``what`` names the setting
    in error messages."""
    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name:
        raise ConfigError(f"{what} {spec!r} must look like 'package.module:Name' or 'file.py:Name'")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.exists():
            raise ConfigError(f"{what}: no file {path} (cwd is {Path.cwd()})")
        folder = str(path.resolve().parent)
        if folder not in sys.path:  # a setup file imports the strategy file beside it
            sys.path.insert(0, folder)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"{what}: cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[path.stem]
            raise ConfigError(
                f"{what}: importing {path} failed with {type(err).__name__}: {err}. Fix the "
                "file (run `python " + str(path) + "` to see the traceback)"
            ) from err
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(f"{what}: cannot import {module_name!r}: {err}") from err
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfigError(f"{what}: {module_name!r} has no {class_name!r}") from None


def load_setup(spec: str, what: str = "--strategy") -> Setup:
    """The ``Setup`` a spec names: a Setup object, or a Strategy class (a Setup of it)."""
    return Setup.of(load_object(spec, what), f"{what} {spec!r}")


def load_feature_provider(spec: str, what: str) -> FeatureProvider:
    """A ``FeatureProvider`` a spec names, or that a function it names returns."""
    found = load_object(spec, what)
    provider = found if isinstance(found, FeatureProvider) else found()
    if not isinstance(provider, FeatureProvider):
        raise ConfigError(
            f"{what} = {spec!r} gave a {type(provider).__name__}; it must be a "
            "FeatureProvider (e.g. CallableFeatureProvider(fn)) or a function returning one"
        )
    return provider


@dataclass(frozen=True)
class SetupSpec:
    """A ``Setup`` named by specs, loaded in whichever process calls ``load()`` (a sweep
    worker): objects in a ``file.py`` cannot be pickled by reference, their specs can.

    ``risk`` and ``features`` name objects that replace the setup's; ``changes`` are plain
    values (params, context, costs) applied with ``Setup.replace``.
    """

    strategy: str
    risk: str | None = None
    features: str | None = None
    changes: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def resolved(
        cls,
        strategy: str,
        *,
        risk: str | None = None,
        features: str | None = None,
        **changes: object,
    ) -> SetupSpec:
        """Check every spec loads here, and make file paths absolute for other processes."""
        spec = cls(
            _absolute(strategy),
            None if risk is None else _absolute(risk),
            None if features is None else _absolute(features),
            changes,
        )
        spec.load()
        return spec

    def load(self) -> Setup:
        """The setup, imported once per process (a worker runs many jobs of one sweep)."""
        loaded: Setup | None = self.__dict__.get("_loaded")
        if loaded is None:
            loaded = self._build()
            object.__setattr__(self, "_loaded", loaded)  # a cache, not state: frozen stays
        return loaded

    def __getstate__(self) -> dict[str, object]:
        # ship the specs, never what they loaded here (a file's objects do not pickle)
        return {k: v for k, v in self.__dict__.items() if k != "_loaded"}

    def _build(self) -> Setup:
        setup = load_setup(self.strategy)
        changes = dict(self.changes)
        if self.risk is not None:
            changes["risk"] = load_object(self.risk, "--risk")
        if self.features is not None:
            changes["features"] = load_feature_provider(self.features, "--features")
        return setup.replace(**changes) if changes else setup


def _absolute(spec: str) -> str:
    module_name, _, name = spec.rpartition(":")
    if module_name.endswith(".py"):
        return f"{Path(module_name).resolve()}:{name}"
    return spec
