"""Test-session settings.

The package looks for MULAN files only in ``MLBS_DATA`` (or an explicit folder)
and in its bundle. The tests use the copy beside the checkout,
``<repo>/../shared/data/mulan``, when it exists and ``MLBS_DATA`` is not set;
without either, the tests that need files the package does not bundle skip with
the reason (see ``test_data_realdata.real_data_dir``).
"""
import os
from pathlib import Path

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mulan"

if not os.environ.get("MLBS_DATA") and _SHARED.is_dir():
    os.environ["MLBS_DATA"] = str(_SHARED)
