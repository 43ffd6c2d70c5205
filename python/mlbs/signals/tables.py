"""Checkpointing of the signal tables: one name per table, copies out, checked arrays back in."""

from __future__ import annotations

import numpy as np


class SignalTables:
    """Mixin: the arrays named in ``TABLES`` saved and restored under ``"<PREFIX>.<name>"``.

    :meth:`restore` assigns in place and trusts its input: the caller (the policy's
    ``load_state_dict``) has checked every array's shape and dtype kind against :meth:`tables`.
    """

    PREFIX = ""
    TABLES: tuple = ()

    def settings(self) -> dict:
        """What shapes the tables beyond n and q (for the fingerprint of a checkpoint)."""
        return {}

    def tables(self) -> dict:
        """Copies of the tables, by checkpoint name."""
        return {f"{self.PREFIX}.{name}": getattr(self, name).copy() for name in self.TABLES}

    def restore(self, tables: dict) -> None:
        """Assign checked tables (same names, shapes and dtype kinds as :meth:`tables`)."""
        for name in self.TABLES:
            getattr(self, name)[...] = np.asarray(tables[f"{self.PREFIX}.{name}"])
