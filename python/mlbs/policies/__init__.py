"""Batch-selection policies: one interface (:class:`Policy`), one module per method."""

from mlbs.policies.adac import AdaC
from mlbs.policies.adaptive import Adaptive
from mlbs.policies.base import Policy
from mlbs.policies.hard import Hard
from mlbs.policies.random import Random

__all__ = ["AdaC", "Adaptive", "Hard", "Policy", "Random"]
