"""Batch-selection policies: one interface (:class:`Policy`), one module per method.

A policy turns the tables its signals keep (:mod:`mlbs.signals`) into sampling weights and draws
batches from a weighted index (:mod:`mlbs.core`).
"""

from mlbs.policies.active_bias import ActiveBias, ActiveBiasConfig
from mlbs.policies.adac import AdaC
from mlbs.policies.adaptive import Adaptive
from mlbs.policies.base import Policy
from mlbs.policies.d2ace import D2ACE, D2ACEConfig
from mlbs.policies.hard import Hard
from mlbs.policies.random import Random
from mlbs.policies.recency_bias import RecencyBias
from mlbs.policies.uncertain import Uncertain, UncertainConfig

__all__ = ["ActiveBias", "ActiveBiasConfig", "AdaC", "Adaptive", "D2ACE", "D2ACEConfig", "Hard", "Policy", "Random",
           "RecencyBias", "Uncertain", "UncertainConfig"]
