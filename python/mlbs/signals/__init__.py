"""What every observation updates: from a trained batch's outputs to the tables the policies read.

- :mod:`~mlbs.signals.observation`: a batch's observation, checked (indices, outputs or losses);
- :mod:`~mlbs.signals.bce`: its per-sample binary cross-entropy;
- :mod:`~mlbs.signals.window`: the prediction window of Uncertain and D2ACE (E, phi, l);
- :mod:`~mlbs.signals.history`: the history tables of Active Bias and Recency Bias;
- :mod:`~mlbs.signals.refresh`: D2ACE's end-of-epoch scores from the window (Numba kernels,
  with :mod:`~mlbs.signals.vector_math`);
- :mod:`~mlbs.signals.tables`: checkpointing of the tables.
"""
