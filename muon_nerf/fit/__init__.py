"""The fit layer: the loop, task configs, checkpoints, outputs, figures, metrics and presets shared
by every front end. It imports ``muon_nerf.fields`` and ``muon_nerf.optim`` only, never a front end
or nerfstudio, open3d or Ray."""
