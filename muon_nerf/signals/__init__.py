"""The 2D adapter (``muon-fit``): image, audio, CT and SISR signals on the shared fit loop
(``muon_nerf.fit``)."""
