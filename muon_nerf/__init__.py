"""muon-nerf: plain-MLP implicit neural representations trained with Muon + Adam.

Import-light on purpose: nerfstudio imports ``muon_nerf.method_configs`` for every ``ns-*``
command, so nothing heavy may happen here.
"""

__version__ = "0.1.0"
