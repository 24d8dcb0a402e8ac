"""The training and evaluation pipeline behind the DVC stages (install with ``.[pipeline]``).

Data flows one way: images → shards (prepare, shards) → checkpoints (train) → models
(export) → evaluations (evaluation, classic) → report. The codec in ``grm`` never
imports from here.
"""
