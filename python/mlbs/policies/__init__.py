"""Batch-selection policies: one interface (:class:`Policy`), one module per method."""

from mlbs.policies.adac import AdaC
from mlbs.policies.adaptive import Adaptive
from mlbs.policies.base import Policy
from mlbs.policies.d2ace import D2ACE
from mlbs.policies.hard import Hard
from mlbs.policies.history import ActiveBias, RecencyBias
from mlbs.policies.random import Random
from mlbs.policies.uncertain import Uncertain

__all__ = ["ActiveBias", "AdaC", "Adaptive", "D2ACE", "Hard", "Policy", "Random", "RecencyBias", "Uncertain"]
