"""nerfstudio method registry entries (the ``nerfstudio.method_configs`` entry points).

Every ``ns-*`` command imports this module while discovering methods, so it must be light and
must never raise: it imports config dataclasses only (the model is imported when one is built),
and if our configs cannot be imported the methods are still listed, with the reason in their
description, instead of breaking nerfstudio for every method.
"""

from __future__ import annotations

from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

_DESCRIPTIONS = {
    "muon-nerf": "Plain-MLP NeRF (ReLU+PE); hidden weights on Muon, the rest on Adam.",
    "muon-nerf-adam": "Same model as muon-nerf, Adam everywhere (the baseline).",
    "muon-nerf-siren": "SIREN field (ω0 folded into the hidden weights); hidden weights on Muon.",
    "muon-nerf-siren-adam": "SIREN field, Adam everywhere (the baseline).",
    "muon-nerf-finer": "FINER field (ω0 folded into the hidden weights); hidden weights on Muon.",
    "muon-nerf-finer-adam": "FINER field, Adam everywhere (the baseline).",
    "muon-ngp": "Hash grid + 4×64 ReLU MLP, proposal sampling (nerfacto-like); MLP hidden weights on Muon.",
    "muon-ngp-adam": "Same model as muon-ngp, Adam everywhere (the baseline).",
}


def _method(
    name: str, hidden_optimizer: str, arch: str = "relu_pe", ngp: bool = False
) -> MethodSpecification:
    try:
        from muon_nerf.nerf.config import ngp_trainer_config, trainer_config

        if ngp:
            config = ngp_trainer_config(name, hidden_optimizer=hidden_optimizer)  # type: ignore[arg-type]
        else:
            config = trainer_config(name, hidden_optimizer=hidden_optimizer, arch=arch)  # type: ignore[arg-type]
        return MethodSpecification(config=config, description=_DESCRIPTIONS[name])
    except Exception as err:  # noqa: BLE001 - an error here would break every ns-* command
        return MethodSpecification(
            config=TrainerConfig(method_name=name),
            description=f"unavailable: {type(err).__name__}: {err}",
        )


muon_nerf_method = _method("muon-nerf", "muon", "relu_pe")
muon_nerf_adam_method = _method("muon-nerf-adam", "adam", "relu_pe")
muon_nerf_siren_method = _method("muon-nerf-siren", "muon", "siren")
muon_nerf_siren_adam_method = _method("muon-nerf-siren-adam", "adam", "siren")
muon_nerf_finer_method = _method("muon-nerf-finer", "muon", "finer")
muon_nerf_finer_adam_method = _method("muon-nerf-finer-adam", "adam", "finer")
muon_ngp_method = _method("muon-ngp", "muon", ngp=True)
muon_ngp_adam_method = _method("muon-ngp-adam", "adam", ngp=True)
