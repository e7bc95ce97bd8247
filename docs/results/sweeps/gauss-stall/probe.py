#!/usr/bin/env python3
"""What a Gauss field does on its plateau: every 25 steps of the cpu-profile fit (kodim05 ÷4,
5×75, 1000 steps, cosine, seed 0, Muon with the given lr and Adam 1e-2 for the rest), the PSNR,
per layer the fraction of Gaussian units whose largest activation over all pixels is below 0.01
(near-dead: their gradient is below 3 % of its peak everywhere) and the fraction of (pixel, unit)
activations above 0.5, and the hidden matrices' spectral norms. Stops after step 500.

    python3 docs/results/sweeps/gauss-stall/probe.py ../shared/data/kodak/kodim05.png 0.4 OUT.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from muon_nerf.fit.loop import fit
from muon_nerf.fit.metrics import psnr
from muon_nerf.runs.checkpoint import make_field
from muon_nerf.runs.io import write_json
from muon_nerf.signals.cli import parse

LAST_STEP = 500


def main(image: str, muon_lr: str, out: str) -> None:
    flags = ["--image", image, "--arch", "gauss", "--downscale", "4", "--width", "75", "--steps", "1000"]
    cfg = parse("image", [*flags, "--muon-lr", muon_lr, "--checkpoint-every", "25", "--no-progress"])
    signal = cfg.signal()
    field = make_field(cfg.field.under("muon"), signal.in_dim, signal.out_dim, cfg.fit.seed, "cpu")
    optimizer = cfg.optim.build(field, "muon")
    rows: list[dict] = []
    hidden = list(field.hidden)

    def probe(state: dict) -> None:
        acts: list[torch.Tensor] = []
        hooks = [
            layer.register_forward_hook(lambda _m, _i, out: acts.append(field.activation(out)))
            for layer in [field.first, *field.hidden]
        ]
        with torch.no_grad():
            pred = field(signal.coords.reshape(-1, signal.coords.shape[-1]))
        for hook in hooks:
            hook.remove()
        rows.append(
            {
                "step": state["step"],
                "psnr": psnr(pred.reshape(signal.values.shape).clamp(0, 1), signal.values),
                "near_dead_units": [float((a.amax(0) < 0.01).float().mean()) for a in acts],
                "active_fraction": [float((a > 0.5).float().mean()) for a in acts],
                "spectral_norm": [float(torch.linalg.matrix_norm(h.weight.detach(), ord=2)) for h in hidden],
            }
        )
        print(rows[-1], flush=True)
        if state["step"] >= LAST_STEP:
            write_json(Path(out), {"image": image, "muon_lr": float(muon_lr), "rows": rows})
            raise SystemExit(0)

    fit(signal, field, optimizer, cfg.fit, label="probe", checkpoint=probe)


if __name__ == "__main__":
    main(*sys.argv[1:4])
