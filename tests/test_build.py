"""How the compiled core was built: the flags recorded in the module (mlbs._core.build_flags)."""

from __future__ import annotations

import os

import pytest

from mlbs import _core


def test_build_flags_are_recorded():
    assert isinstance(_core.build_flags, str) and "-O" in _core.build_flags


@pytest.mark.skipif(os.environ.get("MLBS_EXPECT_SANITIZED") != "1", reason="only in the sanitizer job")
def test_the_sanitized_build_is_the_one_under_test():
    """scripts/sanitize.sh sets MLBS_EXPECT_SANITIZED: the module it tests must be its own build."""
    assert "-fsanitize=address,undefined" in _core.build_flags
