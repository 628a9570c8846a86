"""`tradeloop init NAME`: a new project that runs at once (strategy, sample data, config, tests).

The files come from ``scaffold/`` beside this module (``$name`` is the project's name); the
sample data is ``synthetic_market`` (deterministic, not market data). An existing non-empty
folder is never written into.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from tradeloop.errors import ConfigError

__all__ = ["SCAFFOLD", "add", "scaffold"]

# template name → where it goes in the project
SCAFFOLD = {
    "strategy.py.tmpl": "strategy.py",
    "test_strategy.py.tmpl": "tests/test_strategy.py",
    "paper.toml.tmpl": "paper.toml",
    "Makefile.tmpl": "Makefile",
    "README.md.tmpl": "README.md",
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


def add(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="create a project: strategy, sample data, paper config, tests",
        description="Create NAME/ with strategy.py, data/bars.parquet (synthetic sample), "
        "paper.toml, tests/ and a Makefile; then: cd NAME && make demo && make test",
    )
    init.add_argument("name", metavar="NAME", help="the project folder to create")
    init.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root = scaffold(Path(args.name))
    print(f"created {root}/: cd {root} && make demo && make test", file=sys.stderr)
    for relative in [*SCAFFOLD.values(), "data/bars.parquet"]:
        print(f"  {root / relative}")
    return 0


def scaffold(root: Path) -> Path:
    """Write the project into ``root`` (created; refused if it exists and is not empty)."""
    from tradeloop.data.synthetic import synthetic_market

    if not _NAME.match(root.name):
        raise ConfigError(
            f"init {root.name!r}: a project name starts with a letter and holds letters, "
            "digits, '_' or '-'"
        )
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root}: exists and is not empty. Fix: choose a new NAME")
    templates = files("tradeloop.cli").joinpath("scaffold")
    for template, relative in SCAFFOLD.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = templates.joinpath(template).read_text(encoding="utf-8")
        target.write_text(text.replace("$name", root.name), encoding="utf-8")
    bars, _ = synthetic_market(n_assets=3, n_bars=252, seed=11)
    (root / "data").mkdir(exist_ok=True)
    bars.drop("confidence").write_parquet(root / "data" / "bars.parquet")
    return root
