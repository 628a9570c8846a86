"""The examples directory as a whole: a numbered learning path, every file under test."""

from __future__ import annotations

import re

from tests.examples.running import EXAMPLES, ROOT

TESTS = ROOT / "tests" / "examples"


def test_every_example_file_has_a_test_module_mirroring_its_path() -> None:
    scripts = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*.py"))
    assert scripts
    missing = [str(s) for s in scripts if not (TESTS / s.parent / f"test_{s.stem}.py").is_file()]
    assert missing == []


def test_numbered_examples_run_from_01_without_gaps() -> None:
    numbers = sorted(int(p.name[:2]) for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
    assert numbers == list(range(1, len(numbers) + 1))


def test_examples_readme_lists_every_numbered_example_in_order_and_readme_links_it() -> None:
    numbered = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
    readme = (EXAMPLES / "README.md").read_text()
    listed = re.findall(r"\]\((\d\d_\w+\.py)\)", readme)
    assert listed == numbered
    assert "](examples/README.md)" in (ROOT / "README.md").read_text()


def test_every_numbered_example_says_what_it_shows_and_how_to_run_it() -> None:
    for path in sorted(EXAMPLES.glob("[0-9][0-9]_*.py")):
        text = path.read_text()
        assert text.startswith(f'"""Step {int(path.name[:2])}, '), path.name
        docstring = text[: text.index('"""', 3)]
        assert f"python examples/{path.name}" in docstring, path.name
