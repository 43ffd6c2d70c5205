"""The README's code runs as written, and the defaults it states are the classes' own.

Every ```python block of README.md is executed, in order, in one namespace (a block may use what
an earlier one defined). A block that cannot run in a test is preceded by the line
``<!-- readme-test: skip -->``; none is at present.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SKIP = "<!-- readme-test: skip -->"


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of ``text`` not marked with :data:`SKIP` on the line before."""
    blocks = []
    for match in re.finditer(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", text, re.S):
        if match["before"].strip() != SKIP:
            blocks.append(match["code"])
    return blocks


def test_block_extraction_honours_the_skip_marker():
    text = "a\n```python\nx = 1\n```\n" + SKIP + "\n```python\nraise SystemExit\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == ["x = 1"]


def test_the_readme_code_blocks_run_as_written():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    blocks = python_blocks(README)
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "readme"}
    for number, code in enumerate(blocks, 1):
        try:
            exec(compile(code, f"README.md python block {number}", "exec"), namespace)
        except Exception as exc:  # name the block in the failure
            raise AssertionError(f"README python block {number} failed: {exc!r}\n{code}") from exc
    # the complete training loop went past the warm-up into selection, with a finite loss
    assert namespace["policy"].selecting and torch.isfinite(namespace["loss"])


def _defaults_table() -> dict[str, tuple[int, str, str]]:
    """Policy class -> (warm-up epochs, refresh, observation) as the README's table states them."""
    rows = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[1].isdigit():
            for name in re.findall(r"`(\w+)`", cells[0]):
                rows[name] = (int(cells[1]), cells[2], cells[3])
    return rows


def test_the_readme_states_each_policys_own_defaults():
    import mlbs.policies as policies

    table = _defaults_table()
    assert set(table) == {"Random", "Hard", "Adaptive", "AdaC", "Uncertain", "D2ACE", "ActiveBias", "RecencyBias"}
    for name, (warmup, refresh, observation) in table.items():
        cls = getattr(policies, name)
        assert (cls.warmup_epochs, cls.default_refresh, cls.observation) == (warmup, refresh, observation), name
