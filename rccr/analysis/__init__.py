"""Looking at runs: never trains, and never imports the training package.

- ``checkpoints``: a checkpoint's networks rebuilt for inspection, and its target-val score;
- ``regions``: one region-sampling step laid out for inspection (notebook 03, dashboard);
- ``results``: many runs side by side as tables (dashboard, notebook 07);
- ``benchmark``: a UDA benchmark's results folder read back (notebook 07);
- ``bank_embedding``: a t-SNE map of a memory-bank snapshot (notebook 05, dashboard).
- ``feature_space``: a bank snapshot's class separability and cross-domain alignment (the
  trainer logs them at each checkpoint as ``diag/feat_*``; analysis only).
"""
