"""Proposal-network sampling (``--pipeline.model.sampler proposal``) and the ``muon-ngp`` /
``muon-ngp-adam`` methods: registry, param groups, outputs and losses, and toy CPU runs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nerfstudio", reason="the nerfstudio plugin needs the [nerf] extra")

import torch  # noqa: E402
import tyro  # noqa: E402
from nerfstudio.data.scene_box import SceneBox  # noqa: E402
from nerfstudio.engine.callbacks import TrainingCallbackLocation  # noqa: E402
from nerfstudio.engine.optimizers import Optimizers  # noqa: E402
from nerfstudio.engine.trainer import TrainerConfig  # noqa: E402
from nerfstudio.fields.density_fields import HashMLPDensityField  # noqa: E402
from nerfstudio.plugins.registry import discover_methods  # noqa: E402

from muon_nerf import method_configs  # noqa: E402
from muon_nerf.fields.encodings import EncodingConfig  # noqa: E402
from muon_nerf.fields.hashgrid import HashGridConfig, HashGridEncoding  # noqa: E402
from muon_nerf.method_configs import muon_nerf_method, muon_ngp_adam_method, muon_ngp_method  # noqa: E402
from muon_nerf.nerf.config import NGP_ARCH, MuonNeRFModelConfig, ProposalConfig, group_lrs, method_lrs  # noqa: E402
from muon_nerf.nerf.data import write_sphere_scene  # noqa: E402
from muon_nerf.nerf.model import MuonNeRFModel  # noqa: E402
from muon_nerf.nerf.optimizers import FloatLambdaLR  # noqa: E402
from muon_nerf.optim import MuonWithAuxAdam  # noqa: E402
from tests.test_nerf import _rays  # noqa: E402
from tests.test_nerf_smoke import _test_view_psnr, shrunk  # noqa: E402

AABB = torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]])
GROUPS = {"fields", "fields_muon", "fields_encoding", "proposal_networks", "camera_opt"}
NGP = {"muon-ngp": muon_ngp_method, "muon-ngp-adam": muon_ngp_adam_method}
SMALL_HASH = EncodingConfig(
    hash=HashGridConfig(hash_levels=4, hash_log2_table_size=10, hash_finest_resolution=64)
)
TOY_NET = {"hidden_dim": 8, "log2_hashmap_size": 10, "num_levels": 3, "max_res": 32, "use_linear": False}


def small_proposal(passes: tuple[int, ...] = (16, 8), nerf_samples: int = 8) -> ProposalConfig:
    """nerfacto's proposal sampling at toy size (two passes by default, as nerfacto's)."""
    return ProposalConfig(
        num_proposal_samples_per_ray=passes,
        num_nerf_samples_per_ray=nerf_samples,
        proposal_net_args_list=[dict(TOY_NET), {**TOY_NET, "max_res": 64}],
    )


def build(config: TrainerConfig, scene: str = "bounded") -> MuonNeRFModel:
    """The config's model on a toy box; ``scene`` as MuonPipeline resolves it (bounded: Blender)."""
    model_config = config.pipeline.model
    assert isinstance(model_config, MuonNeRFModelConfig)
    model_config.scene = scene
    return model_config.setup(scene_box=SceneBox(aabb=AABB), num_train_data=4)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_sphere_scene(
        tmp_path_factory.mktemp("data") / "sphere", size=32, views={"train": 4, "val": 1, "test": 1}
    )


def test_ngp_methods_are_registered_with_hash_field_and_proposal_sampler():
    for name, hidden in (("muon-ngp", "muon"), ("muon-ngp-adam", "adam")):
        spec = NGP[name]
        assert not spec.description.startswith("unavailable"), spec.description
        config = spec.config
        assert config.method_name == name
        model = config.pipeline.model
        assert isinstance(model, MuonNeRFModelConfig)
        assert (model.field.arch, model.sampler, model.hidden_optimizer) == ("hash", "proposal", hidden)
        assert (model.field.num_layers, model.field.width) == (4, 64)  # two 64×64 hidden matrices
        assert (model.geo_feat_dim, model.head_layers, model.head_width) == (15, 3, 64)
        assert (model.scene, model.background_color) == ("auto", None)  # white on Blender scenes
        assert config.pipeline.datamanager.train_num_rays_per_batch == 4096
        # the tuned groups at the tuned table's ngp row, the rest at instant-ngp's / nerfacto's Adam
        tuned = group_lrs(method_lrs(NGP_ARCH)[0], hidden)
        for group in ("fields", "fields_encoding", "proposal_networks"):
            optimizer = config.optimizers[group]["optimizer"]
            assert (optimizer.lr, optimizer.eps) == (tuned.get(group, 1e-2), 1e-15), group
        if hidden == "muon":
            assert config.optimizers["fields_muon"]["optimizer"].lr == tuned["fields_muon"]
    # every method offers every group, so --pipeline.model.sampler / field.arch can be flipped on any
    for spec in vars(method_configs).values():
        if isinstance(spec, method_configs.MethodSpecification):
            assert set(spec.config.optimizers) == GROUPS, spec.config.method_name
    assert muon_nerf_method.config.pipeline.model.sampler == "coarse_fine"  # the default is unchanged


def test_ns_train_discovers_the_ngp_methods():
    """What ``ns-train --help`` lists: the ``nerfstudio.method_configs`` entry points (pyproject.toml;
    an editable install picks new ones up on ``pip install -e .``)."""
    methods, descriptions = discover_methods()
    for name in NGP:
        assert name in methods, f"{name} is not an entry point: add it to pyproject.toml and reinstall"
        assert not descriptions[name].startswith("unavailable"), descriptions[name]
        assert methods[name].pipeline.model.sampler == "proposal"


@pytest.mark.parametrize("scene", ["bounded", "unbounded"])
@pytest.mark.parametrize("name", sorted(NGP))
def test_ngp_param_groups_split_as_intended(name, scene):
    """The registered model at full size: Muon gets exactly the position MLP's hidden matrices,
    the hash table is ``fields_encoding``, the proposal networks are their own Adam group, and
    the colour head, first/last layers, biases (and an unbounded scene's appearance codes) are
    ``fields``, an unbounded scene's pose corrections ``camera_opt``; an exact partition."""
    config = copy.deepcopy(NGP[name].config)
    model = build(config, scene)
    groups = model.get_param_groups()
    want = GROUPS if scene == "unbounded" else GROUPS - {"camera_opt"}
    base = model.field.mlp_base
    ids = {k: {id(p) for p in v} for k, v in groups.items()}
    hidden = {id(layer.weight) for layer in base.hidden}
    assert len(base.hidden) == 2 and all(layer.weight.shape == (64, 64) for layer in base.hidden)
    if name == "muon-ngp":
        assert set(groups) == want
        assert ids["fields_muon"] == hidden
    else:
        assert set(groups) == want - {"fields_muon"}
        assert hidden <= ids["fields"]
    assert isinstance(base.encoding, HashGridEncoding) and ids["fields_encoding"] == {id(base.encoding.table)}
    assert len(model.proposal_networks) == 2
    assert all(isinstance(net, HashMLPDensityField) for net in model.proposal_networks)
    assert ids["proposal_networks"] == {id(p) for p in model.proposal_networks.parameters()}
    assert {id(p) for p in model.field.mlp_head.parameters()} <= ids["fields"]
    assert {id(base.first.weight), id(base.last.weight), id(base.first.bias)} <= ids["fields"]
    if scene == "unbounded":
        assert {id(p) for p in model.field.appearance.parameters()} <= ids["fields"]
        assert ids["camera_opt"] == {id(p) for p in model.camera_optimizer.parameters()}
    else:
        assert model.field.appearance is None
    assert sum(len(v) for v in ids.values()) == len(set().union(*ids.values()))  # disjoint
    trainable = {id(p) for p in model.parameters() if p.requires_grad and p.numel()}  # no device indicator
    assert set().union(*ids.values()) == trainable

    config.resolve_schedules()  # as the trainer's setup does
    optimizers = Optimizers(config.optimizers, groups)
    for group, optimizer in optimizers.optimizers.items():
        expected = MuonWithAuxAdam if group == "fields_muon" else torch.optim.Adam
        assert type(optimizer) is expected, group
        if group != "fields_muon":
            (param_group,) = optimizer.param_groups
            # nerfacto's camera optimizer lr; the tuned table's ngp row; instant-ngp's
            tuned = group_lrs(method_lrs(NGP_ARCH)[0], "muon" if name == "muon-ngp" else "adam")
            lr = 1e-3 if group == "camera_opt" else tuned.get(group, 1e-2)
            assert param_group["lr"] == pytest.approx(lr) and param_group["eps"] == 1e-15, group


def test_proposal_outputs_losses_and_callbacks():
    config = MuonNeRFModelConfig(
        scene="bounded", sampler="proposal", proposal=small_proposal(), geo_feat_dim=8, head_width=16
    )
    config.field.num_layers, config.field.width = 4, 32
    model = config.setup(scene_box=SceneBox(aabb=AABB), num_train_data=4)
    assert not hasattr(model, "sampler_uniform")
    train_out = model(_rays(5))
    for name in ("rgb", "depth", "accumulation"):
        assert train_out[name].shape[0] == 5 and name + "_coarse" not in train_out
    assert len(train_out["weights_list"]) == 3  # two proposal passes and the field's
    batch = {"image": torch.rand(5, 4)}
    metrics = model.get_metrics_dict(train_out, batch)
    losses = model.get_loss_dict(train_out, batch, metrics)
    assert set(losses) == {"rgb_loss", "interlevel_loss", "distortion_loss"}
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.proposal_networks.parameters())  # interlevel loss

    model.eval()
    with torch.no_grad():
        eval_out = model(_rays(144))  # a 12×12 "image": SSIM's window is 11×11
    assert set(eval_out) == {"rgb", "depth", "accumulation", "prop_depth_0", "prop_depth_1", "normals"}
    assert eval_out["normals"].min() >= 0 and eval_out["normals"].max() <= 1
    image = {k: v.view(12, 12, -1) for k, v in eval_out.items()}
    metrics, images = model.get_image_metrics_and_images(image, {"image": torch.rand(12, 12, 4)})
    assert {"psnr", "ssim"} <= set(metrics) and "coarse_psnr" not in metrics
    assert images["img"].shape == (12, 24, 3)  # ground truth, render
    assert images["depth"].shape == (12, 36, 3)  # two proposal passes, the field

    callbacks = model.get_training_callbacks(None)  # type: ignore[arg-type]
    before = [c for c in callbacks if TrainingCallbackLocation.BEFORE_TRAIN_ITERATION in c.where_to_run]
    (anneal,) = before
    anneal.run_callback_at_location(500, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    assert model.proposal_sampler._anneal == pytest.approx(10 * 0.5 / (9 * 0.5 + 1))  # nerfacto's eq. 18
    for c in callbacks:
        c.run_callback_at_location(7, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
    assert model.proposal_sampler._step == 7
    # nerfacto's update schedule: every step at first, every 5th after the 5000-step warmup
    for step in (0, 1000, 2500, 5000, 9000):
        nerfacto = np.clip(np.interp(step, [0, 5000], [0, 5]), 1, 5)
        assert model._proposal_update_interval(step) == pytest.approx(float(nerfacto)), step


def _toy(config: TrainerConfig, passes: tuple[int, ...] = (16, 8)) -> TrainerConfig:
    model = config.pipeline.model
    model.proposal = small_proposal(passes)
    model.field.encoding = SMALL_HASH
    return config


def _train_recording_losses(config: TrainerConfig):
    """Set up this config's trainer in this process; return it and the list it will fill with each
    step's (rgb loss, total loss)."""
    torch.manual_seed(0)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    pipeline, losses = trainer.pipeline, []
    get_train_loss_dict = pipeline.get_train_loss_dict

    def recording(step: int):
        out = get_train_loss_dict(step=step)  # (outputs, losses, metrics)
        losses.append((float(out[1]["rgb_loss"]), float(sum(out[1].values()))))
        return out

    pipeline.get_train_loss_dict = recording  # type: ignore[method-assign]
    return trainer, losses


def _load_checkpoint(config: TrainerConfig) -> dict:
    (ckpt,) = sorted(config.get_checkpoint_dir().glob("step-*.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert all(type(g["lr"]) is float for opt in state["optimizers"].values() for g in opt["param_groups"])
    assert any(k.startswith("_model.proposal_networks.") for k in state["pipeline"])
    return state


def test_muon_ngp_trains_on_cpu_and_checkpoints(scene, tmp_path):
    """The registered ``muon-ngp`` config, shrunk (hash grid, proposal networks, sample counts):
    loss falls, the test view gets better, every tensor stays finite, the checkpoint loads."""
    config = _toy(shrunk(muon_ngp_method.config, scene, tmp_path, 40))
    trainer, losses = _train_recording_losses(config)
    model = trainer.pipeline.model
    assert model.config.field.arch == "hash" and model.config.sampler == "proposal"
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    before = _test_view_psnr(model, scene)
    trainer.train()
    after = _test_view_psnr(model, scene)
    first, last = np.mean(losses[:5], axis=0), np.mean(losses[-5:], axis=0)  # (rgb, total) each
    print(f"muon-ngp toy: rgb loss {first[0]:.4f} -> {last[0]:.4f}, total {first[1]:.4f} -> {last[1]:.4f}, "
          f"test-view PSNR {before:.2f} -> {after:.2f} dB")  # fmt: skip
    # the total carries the proposal networks' interlevel and distortion losses, slower to fall
    # in 40 steps than the rgb loss
    assert len(losses) == 40 and last[0] < 0.8 * first[0] and last[1] < 0.9 * first[1], losses
    assert after > before + 1.0, (before, after)
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), name
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), start[n])}
    assert {"field.mlp_base.hidden.0.weight", "field.mlp_base.encoding.table"} <= changed
    assert any(n.startswith("proposal_networks.0.") for n in changed)
    optimizers = trainer.optimizers.optimizers
    assert set(optimizers) == GROUPS - {"camera_opt"} and isinstance(
        optimizers["fields_muon"], MuonWithAuxAdam
    )
    assert all(isinstance(s, FloatLambdaLR) for s in trainer.optimizers.schedulers.values())
    state = _load_checkpoint(config)
    assert state["step"] == config.max_num_iterations - 1 and set(state["optimizers"]) == GROUPS - {
        "camera_opt"
    }
    assert state["optimizers"]["fields_muon"]["param_groups"][0]["use_muon"] is True


def test_proposal_sampler_flag_on_muon_nerf_trains(scene, tmp_path):
    """``--pipeline.model.sampler proposal`` on the default ``muon-nerf`` (ReLU+PE field): the
    optimizer entries are already there, a few iterations train every group."""
    base = tyro.cli(
        TrainerConfig,
        default=copy.deepcopy(muon_nerf_method.config),
        args=["--pipeline.model.sampler", "proposal"],
    )
    config = _toy(shrunk(base, scene, tmp_path, 8), passes=(16,))
    trainer, losses = _train_recording_losses(config)
    model = trainer.pipeline.model
    assert model.config.field.arch == "relu_pe" and len(model.proposal_networks) == 1
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    assert len(losses) == 8 and np.isfinite(losses).all()
    for name, p in model.named_parameters():
        if p.numel():  # not nerfstudio's empty device indicator
            assert torch.isfinite(p).all() and not torch.equal(p.detach(), start[name]), name
    assert set(trainer.optimizers.optimizers) == {"fields", "fields_muon", "proposal_networks"}
    state = _load_checkpoint(config)
    assert set(state["optimizers"]) == {"fields", "fields_muon", "proposal_networks"}
