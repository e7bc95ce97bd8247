"""``muon-sweep``: learning-rate sweeps (Adam's ``--lr`` × Muon's ``--muon-lr``) on Ray Tune.

``config`` (what to sweep), ``trial`` (one trial = the CLI's own fit), ``report`` (table, presets,
heat map) need no Ray; only ``runner`` imports it.
"""
