"""Import a user's object from a ``'package.module:Name'`` or ``'path/file.py:Name'`` spec."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeloop.errors import ConfigError

__all__ = ["StrategySpec", "load_object", "load_strategy_class"]


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
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"{what}: cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
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


@dataclass(frozen=True)
class StrategySpec:
    """A picklable strategy factory: ``StrategySpec("file.py:Class")(**params)`` imports the
    class in whichever process calls it (a sweep worker) and builds it with ``params``.

    A class imported from a file path cannot itself be pickled by reference (its module is
    not importable by name elsewhere); its spec string can.
    """

    spec: str

    @classmethod
    def resolved(cls, spec: str) -> StrategySpec:
        """Check ``spec`` imports here, and make a file path absolute for other processes."""
        load_strategy_class(spec)
        module_name, _, class_name = spec.rpartition(":")
        if module_name.endswith(".py"):
            return cls(f"{Path(module_name).resolve()}:{class_name}")
        return cls(spec)

    def __call__(self, **params: Any) -> Any:
        return _cached_class(self.spec)(**params)


_cached_class = functools.cache(load_strategy_class)  # one import per worker process
