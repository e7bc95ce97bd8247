"""The fit layer: what a fit computes, shared by every front end: the training loop, the signal
interface, metrics and diagnostics (stable rank), the device and memory checks, and the errors
every command reports. It imports ``muon_nerf.fields`` and ``muon_nerf.optim`` only; what a run
writes and resumes is ``muon_nerf.runs``, one layer up."""
