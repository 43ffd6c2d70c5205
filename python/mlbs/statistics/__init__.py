"""What is computed once per training set from its features X and labels Y.

- :mod:`~mlbs.statistics.labels`: label statistics (Card, IRLbl, MeanIR, minority labels, the
  co-occurrence matrix A);
- :mod:`~mlbs.statistics.neighbors`: the k nearest neighbours of every sample (FAISS);
- :mod:`~mlbs.statistics.imbalance`: Adaptive's instance weights from the local label imbalance;
- :mod:`~mlbs.statistics.structure`: the label structure of AdaC (related labels, seed labels)
  and D2ACE (the local context Z).

The policies read these; nothing here changes during training.
"""

from mlbs.statistics.neighbors import LowRecallWarning

__all__ = ["LowRecallWarning"]
