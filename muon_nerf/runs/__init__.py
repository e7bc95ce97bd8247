"""The runs layer: what a fit writes, resumes and is invoked with, apart from what it computes
(``muon_nerf.fit``): task configs and the command line (one tyro parse, presets, tuned learning
rates), atomic files and run folders, run state (``state``: ownership, resume), checkpoints,
outputs, figures and reports. It imports ``muon_nerf.fields``, ``muon_nerf.optim`` and
``muon_nerf.fit`` only, never a front end or nerfstudio, open3d or Ray."""
