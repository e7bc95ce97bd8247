"""Unit tests of the nerfstudio plugin: registry, param split, optimizer/scheduler configs, field."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

pytest.importorskip("nerfstudio", reason="the nerfstudio plugin needs the [nerf] extra")

import torch  # noqa: E402
import tyro  # noqa: E402
from nerfstudio.cameras.rays import RayBundle  # noqa: E402
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig  # noqa: E402
from nerfstudio.data.scene_box import SceneBox  # noqa: E402
from nerfstudio.engine.optimizers import Optimizers  # noqa: E402
from nerfstudio.engine.schedulers import (  # noqa: E402
    CosineDecaySchedulerConfig,
    ExponentialDecaySchedulerConfig,
)
from nerfstudio.engine.trainer import TrainerConfig  # noqa: E402
from nerfstudio.plugins.registry import discover_methods  # noqa: E402

from muon_nerf import method_configs  # noqa: E402
from muon_nerf.fields import Arch, FieldConfig  # noqa: E402
from muon_nerf.fields.activations import ActivationConfig  # noqa: E402
from muon_nerf.fields.encodings import EncodingConfig  # noqa: E402
from muon_nerf.fields.fold import OmegaFoldedLinear  # noqa: E402
from muon_nerf.fields.hashgrid import HashGridConfig  # noqa: E402
from muon_nerf.fit.errors import InputError  # noqa: E402
from muon_nerf.method_configs import muon_nerf_adam_method, muon_nerf_method  # noqa: E402
from muon_nerf.nerf.captures import write_capture_scene  # noqa: E402
from muon_nerf.nerf.config import (  # noqa: E402
    MuonNeRFModelConfig,
    MuonNeRFTrainerConfig,
    check_data,
    position_mlp,
)
from muon_nerf.nerf.data import write_sphere_scene  # noqa: E402
from muon_nerf.nerf.field import MuonNeRFField  # noqa: E402
from muon_nerf.nerf.lpips import cached_lpips  # noqa: E402
from muon_nerf.nerf.model import MuonNeRFModel  # noqa: E402
from muon_nerf.nerf.optimizers import (  # noqa: E402
    FloatCosineDecaySchedulerConfig,
    FloatExponentialDecaySchedulerConfig,
    MuonOptimizerConfig,
)
from muon_nerf.optim import MuonConfig, MuonWithAuxAdam  # noqa: E402
from tests.conftest import ToyEncodingConfig  # noqa: E402

AABB = torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]])
TINY = dict(geo_feat_dim=8, head_width=16, num_coarse_samples=8, num_importance_samples=8)
ALL_ARCHS = typing.get_args(Arch)
BIN = Path(sys.executable).parent


SMALL_HASH = EncodingConfig(
    hash=HashGridConfig(hash_levels=4, hash_log2_table_size=10, hash_finest_resolution=64)
)


def tiny_field(arch: Arch = "relu_pe", num_layers: int = 4, **kw) -> FieldConfig:
    """The registered position MLP of ``arch``, shrunk (a hash grid too)."""
    small = {"num_layers": num_layers, "width": 32, **({"encoding": SMALL_HASH} if arch == "hash" else {})}
    return FieldConfig(**{**vars(position_mlp(arch)), **small, **kw})


def tiny_model(field: FieldConfig | None = None, **overrides) -> MuonNeRFModel:
    config = MuonNeRFModelConfig(field=field or tiny_field(), **{"scene": "bounded", **TINY, **overrides})
    return config.setup(scene_box=SceneBox(aabb=AABB), num_train_data=4)


def test_registry_discovers_both_methods():
    methods, descriptions = discover_methods()
    for name, hidden in (("muon-nerf", "muon"), ("muon-nerf-adam", "adam")):
        assert name in methods, sorted(methods)
        assert not descriptions[name].startswith("unavailable"), descriptions[name]
        model = methods[name].pipeline.model
        assert isinstance(model, MuonNeRFModelConfig)
        assert model.hidden_optimizer == hidden
        assert model.field == position_mlp("relu_pe")  # the nested field config, nothing copied
    assert methods["muon-nerf-siren"].pipeline.model.field.arch == "siren"
    assert methods["muon-nerf-finer-adam"].pipeline.model.field.arch == "finer"
    assert methods["muon-nerf-siren"].pipeline.model.field.activation.omega == 30.0


def test_method_configs_import_is_light_and_never_fails():
    """Run in a fresh interpreter: what importing the entry-point module pulls in, and what
    happens when our config module cannot be imported at all."""
    code = textwrap.dedent(
        """
        import sys
        import muon_nerf.method_configs as m
        heavy = ["muon_nerf.nerf.model", "muon_nerf.nerf.field", "muon_nerf.nerf.lpips",
                 "torchmetrics", "tinycudann", "open3d"]
        print("LOADED", [name for name in heavy if name in sys.modules])
        for name in [k for k in sys.modules if k.startswith("muon_nerf")]:
            del sys.modules[name]
        sys.modules["muon_nerf.nerf.config"] = None  # makes `import muon_nerf.nerf.config` raise
        import muon_nerf.method_configs as broken
        print("BROKEN", broken.muon_nerf_method.config.method_name, broken.muon_nerf_method.description)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout
    assert "BROKEN muon-nerf unavailable: ModuleNotFoundError" in out.stdout, out.stdout


def _field_params(model: MuonNeRFModel) -> set[int]:
    return {id(p) for p in model.field.parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_param_groups_are_an_exact_partition(arch):
    model = tiny_model(tiny_field(arch))
    groups = model.get_param_groups()
    trainable_encoding = any(True for _ in model.field.mlp_base.encoding.parameters())
    assert set(groups) == {"fields", "fields_muon"} | ({"fields_encoding"} if trainable_encoding else set())
    muon, adam = ({id(p) for p in groups[k]} for k in ("fields_muon", "fields"))
    encoding = {id(p) for p in groups.get("fields_encoding", [])}
    assert not muon & adam and not (muon | adam) & encoding
    assert muon | adam | encoding == _field_params(model)
    assert len(muon) + len(adam) + len(encoding) == sum(len(g) for g in groups.values())  # no duplicates
    # Muon gets exactly the hidden matrices of the position MLP, nothing from the colour head
    assert muon == {id(layer.weight) for layer in model.field.mlp_base.hidden}
    assert all(p.ndim == 2 for p in groups["fields_muon"])


def test_param_groups_adam_baseline_and_first_layer_option():
    adam_only = tiny_model(hidden_optimizer="adam").get_param_groups()
    assert set(adam_only) == {"fields"}  # the empty Muon group is omitted
    model = tiny_model(muon_first_layer=True)
    muon = {id(p) for p in model.get_param_groups()["fields_muon"]}
    base = model.field.mlp_base
    assert muon == {id(base.first.weight)} | {id(layer.weight) for layer in base.hidden}
    two_layers = tiny_model(tiny_field(num_layers=2))
    no_hidden = two_layers.get_param_groups()
    assert set(no_hidden) == {"fields"}  # no hidden layer: no Muon group
    assert {id(p) for p in no_hidden["fields"]} == _field_params(two_layers)


def test_method_optimizers_build_muon_without_weight_decay():
    config = copy.deepcopy(muon_nerf_method.config)
    config.resolve_schedules()  # what the trainer's setup does before it builds the optimizers
    model = tiny_model()
    optimizers = Optimizers(config.optimizers, model.get_param_groups())
    muon = optimizers.optimizers["fields_muon"]
    assert isinstance(muon, MuonWithAuxAdam)
    (group,) = muon.param_groups
    assert group["use_muon"] and group["weight_decay"] == 0.0
    assert group["momentum"] == 0.95 and group["nesterov"] and group["ns_steps"] == 5
    assert isinstance(optimizers.optimizers["fields"], torch.optim.Adam)
    # the baseline's config has a Muon entry too, so flipping hidden_optimizer never breaks it
    assert set(muon_nerf_adam_method.config.optimizers) == {
        "fields",
        "fields_muon",
        "fields_encoding",
        "proposal_networks",
        "camera_opt",
    }
    # nerfstudio's optimizer config with MuonConfig's settings, declared once
    assert isinstance(config.optimizers["fields_muon"]["optimizer"], MuonConfig)


def test_trainable_encoding_gets_the_fields_encoding_group():
    """A trainable encoding's tensors form ``fields_encoding``: Adam with its own lr and eps."""
    model = tiny_model(tiny_field("relu", encoding=ToyEncodingConfig()))
    groups = model.get_param_groups()
    assert set(groups) == {"fields", "fields_muon", "fields_encoding"}
    encoding = model.field.mlp_base.encoding
    assert groups["fields_encoding"] == [encoding.scale, encoding.mix]
    ids = {k: {id(p) for p in v} for k, v in groups.items()}
    assert not (ids["fields_encoding"] & (ids["fields"] | ids["fields_muon"]))
    assert ids["fields"] | ids["fields_muon"] | ids["fields_encoding"] == _field_params(model)
    config = copy.deepcopy(muon_nerf_method.config)
    config.resolve_schedules()
    optimizers = Optimizers(config.optimizers, groups)
    (group,) = optimizers.optimizers["fields_encoding"].param_groups
    assert isinstance(optimizers.optimizers["fields_encoding"], torch.optim.Adam)
    assert group["lr"] == pytest.approx(1e-2) and group["eps"] == 1e-15


def test_muon_lr_field_and_muon_settings_are_cli_flags():
    args = ["--optimizers.fields-muon.optimizer.lr", "0.05", "--pipeline.model.field.arch", "wire"]
    args += ["--pipeline.model.field.num-layers", "5", "--pipeline.model.field.activation.wire-omega", "15"]
    args += ["--optimizers.fields-muon.optimizer.muon-weight-decay", "0.01"]
    config = tyro.cli(TrainerConfig, default=copy.deepcopy(muon_nerf_method.config), args=args)
    muon = config.optimizers["fields_muon"]["optimizer"]
    assert muon.lr == 0.05 and muon.muon_weight_decay == 0.01
    field = config.pipeline.model.field
    assert (field.arch, field.num_layers, field.activation.wire_omega) == ("wire", 5, 15.0)
    assert muon.setup([torch.nn.Parameter(torch.zeros(3, 3))]).param_groups[0]["weight_decay"] == 0.01


def test_ns_train_help_lists_every_zoo_arch():
    """``ns-train muon-nerf --help`` (the real command) offers every architecture of the zoo."""
    env = {**os.environ, "COLUMNS": "80"}  # one help column, so a choice list is never split
    out = subprocess.run(
        [str(BIN / "ns-train"), "muon-nerf", "--help"], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    flat = re.sub(r"[│\s]+", "", out.stdout)  # rich's borders and line wraps removed
    match = re.search(r"--pipeline\.model\.field\.arch\{([^}]*)\}", flat)
    assert match, out.stdout[-3000:]
    assert set(match[1].split(",")) == set(ALL_ARCHS) == {
        "relu", "relu_pe", "relu_ff", "siren", "finer", "gauss", "wire", "hash"
    }  # fmt: skip


def _save_load(obj: dict, tmp_path) -> dict:
    path = tmp_path / "state.ckpt"
    torch.save(obj, path)
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            FloatExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=50, warmup_steps=5),
            ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=50, warmup_steps=5),
        ),
        (
            FloatCosineDecaySchedulerConfig(warm_up_end=5, max_steps=50),
            CosineDecaySchedulerConfig(warm_up_end=5, max_steps=50),
        ),
    ],
)
def test_float_schedulers_match_nerfstudio_and_load_weights_only(ours, theirs, tmp_path):
    def run(scheduler_config):
        param = torch.nn.Parameter(torch.zeros(4, 4))
        opt = MuonOptimizerConfig(lr=0.02).setup([param])
        sched = scheduler_config.setup().get_scheduler(optimizer=opt, lr_init=0.02)
        lrs = []
        for _ in range(20):
            param.grad = torch.ones_like(param)
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        return opt, sched, lrs

    opt, sched, lrs = run(ours)
    _, ref_sched, ref_lrs = run(theirs)
    assert lrs == pytest.approx([float(x) for x in ref_lrs], rel=1e-12)
    assert all(type(lr) is float for lr in lrs)
    loaded = _save_load({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path)
    assert loaded["sched"]["_last_lr"] == pytest.approx([lrs[-1]])
    # why the float schedulers exist: nerfstudio's own leaves numpy scalars that weights_only refuses
    with pytest.raises(Exception, match="(?i)weights_only|numpy"):
        _save_load({"sched": ref_sched.state_dict()}, tmp_path)


def test_every_schedule_decays_10x_over_the_run_whatever_lr_and_iterations(tmp_path, capsys, monkeypatch):
    """Each group's schedule follows the run: its final lr is a tenth of the lr it was given (set
    on the command line or not), over ``--max-num-iterations`` as given; nerfacto's camera
    schedule keeps its own numbers. A schedule that cannot mean that stops ns-train in one line."""
    config = copy.deepcopy(muon_nerf_method.config)
    assert isinstance(config, MuonNeRFTrainerConfig)
    config.max_num_iterations = 40
    config.optimizers["fields_muon"]["optimizer"].lr = 0.05
    config.optimizers["fields"]["optimizer"].lr = 2e-3
    monkeypatch.chdir(tmp_path)
    config.setup(local_rank=0, world_size=1)  # a Trainer, not yet set up: the schedules resolve here
    for name, lr, final, steps in (("fields_muon", 0.05, 0.005, 40), ("fields", 2e-3, 2e-4, 40)):
        param = torch.nn.Parameter(torch.zeros(4, 4))
        opt = config.optimizers[name]["optimizer"].setup([param])
        sched = config.optimizers[name]["scheduler"].setup().get_scheduler(optimizer=opt, lr_init=lr)
        assert config.optimizers[name]["scheduler"].max_steps == steps
        for _ in range(steps):
            param.grad = torch.ones_like(param)
            opt.step()
            sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(final, rel=1e-9), name
    assert config.optimizers["camera_opt"]["scheduler"].max_steps == 5000
    assert config.optimizers["camera_opt"]["scheduler"].lr_final == 1e-4
    bad = {
        "decay": (0.5, "--optimizers.fields.scheduler.decay must be a finite factor >= 1"),
        "lr_final": (
            1e-5,
            "--optimizers.fields.scheduler.decay (10) and scheduler.lr-final (1e-05): set one",
        ),
        "max_steps": (0, "--optimizers.fields.scheduler.max-steps must be >= 1"),
    }
    scene = write_sphere_scene(tmp_path / "s", size=8, views={"train": 1, "val": 1, "test": 1})
    capsys.readouterr()  # the trainer's own warnings above
    for key, (value, reason) in bad.items():
        broken = copy.deepcopy(muon_nerf_method.config)
        broken.pipeline.datamanager.data = scene
        broken.pipeline.datamanager.dataparser = BlenderDataParserConfig()
        setattr(broken.optimizers["fields"]["scheduler"], key, value)
        with pytest.raises(SystemExit) as exit_info:
            broken.print_to_terminal()
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith(f"error: {reason}") and err.count("\n") == 1, err


def test_ns_train_without_a_device_flag_trains_on_the_cpu_where_cuda_is_missing(
    tmp_path, capsys, monkeypatch
):
    """nerfstudio's default device is cuda: with no device flag a CPU-only machine trains on the
    CPU, saying so; ``--machine.device-type cuda`` given on such a machine stays an error."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    scene = write_sphere_scene(tmp_path / "s", size=8, views={"train": 1, "val": 1, "test": 1})
    for argv, device in (
        (["ns-train", "muon-nerf", "--data", str(scene)], "cpu"),
        (["ns-train", "muon-nerf", "--machine.device-type", "cuda"], None),
        (["ns-train", "muon-nerf", "--machine.device_type=cuda"], None),
    ):
        config = copy.deepcopy(muon_nerf_method.config)
        config.pipeline.datamanager.data = scene
        config.pipeline.datamanager.dataparser = BlenderDataParserConfig()
        monkeypatch.setattr(sys, "argv", argv)
        if device:
            config.print_to_terminal()
            out = capsys.readouterr().out
            assert config.machine.device_type == "cpu" and out.startswith(
                "machine: cpu (no CUDA device here"
            ), out
        else:
            with pytest.raises(SystemExit) as exit_info:
                config.print_to_terminal()
            err = capsys.readouterr().err
            assert exit_info.value.code == 2 and "CUDA is not available" in err and err.count("\n") == 1, err


def test_field_normalizes_positions_by_the_scene_box():
    field = MuonNeRFField(AABB, FieldConfig(arch="relu_pe", num_layers=3, width=8))
    corners = torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5], [0.0, 0.75, -0.75]])
    expected = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 0.5, -0.5]])
    torch.testing.assert_close(field.normalize(corners), expected)


@pytest.mark.parametrize("arch", ["siren", "finer"])
def test_omega_folding_keeps_the_function_and_sizes_muon_steps(arch):
    """Folded and unfolded fields compute the same function; one Muon step moves the effective
    pre-activation matrix (ω0·W) by spectral norm ``lr`` when folded and ``ω0·lr`` when not."""
    omega, lr = 30.0, 0.01
    cfg = FieldConfig(arch=arch, num_layers=3, width=16, activation=ActivationConfig(omega=omega))
    torch.manual_seed(0)
    plain = MuonNeRFField(AABB, cfg.under("adam"), geo_feat_dim=4, head_width=8)
    torch.manual_seed(0)
    folded = MuonNeRFField(AABB, cfg.under("muon"), geo_feat_dim=4, head_width=8)
    assert not isinstance(plain.mlp_base.hidden[0], OmegaFoldedLinear)
    assert isinstance(folded.mlp_base.hidden[0], OmegaFoldedLinear)
    x = torch.rand(64, 3) * 2 - 1
    torch.testing.assert_close(folded.mlp_base(x), plain.mlp_base(x), rtol=1e-4, atol=1e-5)

    def effective_step(field, scale):
        w = field.mlp_base.hidden[0].weight
        before = w.detach().clone() * scale
        opt = MuonWithAuxAdam([dict(params=[w], use_muon=True, lr=lr)])
        field.mlp_base(x).square().sum().backward()
        opt.step()
        return torch.linalg.matrix_norm(w.detach() * scale - before, ord=2).item()

    assert effective_step(folded, 1.0) == pytest.approx(lr, rel=0.35)
    assert effective_step(plain, omega) == pytest.approx(omega * lr, rel=0.35)


@pytest.mark.parametrize("arch", ["siren", "finer", "gauss", "wire"])
def test_fold_omega_follows_hidden_optimizer_and_the_field_config(arch):
    assert isinstance(tiny_model(tiny_field(arch)).field.mlp_base.hidden[0], OmegaFoldedLinear)
    adam = tiny_model(tiny_field(arch), hidden_optimizer="adam")
    assert not isinstance(adam.field.mlp_base.hidden[0], OmegaFoldedLinear)
    off = tiny_model(tiny_field(arch, fold_omega=False))
    assert not isinstance(off.field.mlp_base.hidden[0], OmegaFoldedLinear)
    # the colour head is a ReLU readout: never folded, whatever the position MLP
    assert not any(isinstance(m, OmegaFoldedLinear) for m in off.field.mlp_head.modules())


def test_relu_fields_are_never_folded():
    """Folding applies to steep activations only; for ReLU(+PE) it is a no-op, not an error."""
    model = tiny_model(tiny_field("relu_pe", fold_omega=True))
    assert not any(isinstance(m, OmegaFoldedLinear) for m in model.field.modules())


def _rays(n: int) -> RayBundle:
    origins = torch.tensor([[0.0, -4.0, 0.5]]).repeat(n, 1)
    directions = torch.nn.functional.normalize(
        torch.randn(n, 3) * 0.1 + torch.tensor([0.0, 1.0, -0.1]), dim=-1
    )
    return RayBundle(
        origins=origins,
        directions=directions,
        pixel_area=torch.full((n, 1), 1e-4),
        camera_indices=torch.zeros(n, 1, dtype=torch.long),
    )


def test_outputs_have_the_names_nerfstudio_tools_use():
    model = tiny_model()
    train_out = model(_rays(5))
    for name in ("rgb", "depth", "accumulation"):
        for suffix in ("", "_coarse", "_fine"):
            assert train_out[name + suffix].shape[0] == 5
    assert "normals" not in train_out  # training skips the extra backward
    model.eval()
    with torch.no_grad():
        eval_out = model(_rays(5))
    normals = eval_out["normals"]
    assert normals.shape == (5, 3) and normals.min() >= 0 and normals.max() <= 1  # ns-export's range
    assert not any(name.startswith("_lpips") for name in model.state_dict())


def test_lpips_is_absent_when_weights_are_not_cached(tmp_path, monkeypatch):
    hub_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        module, reason = cached_lpips()
    finally:
        torch.hub.set_dir(hub_dir)
    assert module is None
    assert str(tmp_path) in reason and "not cached" in reason
    assert not any(tmp_path.rglob("*.pth"))  # nothing was downloaded


METHODS = {
    spec.config.method_name: spec
    for spec in vars(method_configs).values()
    if isinstance(spec, method_configs.MethodSpecification)
}


def _datamanager(data: Path | None, blender: bool = False, parser_data: Path | None = None):
    datamanager = copy.deepcopy(muon_nerf_method.config.pipeline.datamanager)
    if blender:
        datamanager.dataparser = BlenderDataParserConfig()
    if parser_data is not None:
        datamanager.dataparser.data = parser_data
    datamanager.data = data
    return datamanager


def test_check_data_names_what_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("")
    (tmp_path / "scene.json").write_text("{}")
    blender_only = tmp_path / "blender_only"
    blender_only.mkdir()
    (blender_only / "transforms_train.json").write_text("{}")  # no transforms_val.json
    scene = write_sphere_scene(tmp_path / "sphere", size=8, views={"train": 1, "val": 1, "test": 1})
    cases = {
        # (data, blender-data?) -> the one-line reason
        (tmp_path / "missing", False): f"data path {tmp_path / 'missing'} does not exist",
        (tmp_path / "missing", True): f"data path {tmp_path / 'missing'} does not exist",
        (tmp_path / "afile", False): f"data path {tmp_path / 'afile'} is neither a folder nor a .json file",
        (tmp_path / "afile", True): f"data path {tmp_path / 'afile'} is not a folder: blender-data reads",
        (tmp_path / "empty", False): f"{tmp_path / 'empty' / 'transforms.json'} not found",
        (tmp_path / "empty", True): f"{tmp_path / 'empty' / 'transforms_train.json'} not found",
        (blender_only, True): f"{blender_only / 'transforms_val.json'} not found",
        (blender_only, False): "a Blender-format scene? put the blender-data subcommand after the flags",
        (scene, False): "a Blender-format scene?",
    }
    for (data, blender), reason in cases.items():
        with pytest.raises(InputError) as err:
            check_data(_datamanager(data, blender))
        assert reason in str(err.value) and "\n" not in str(err.value), (data, blender, err.value)
    check_data(_datamanager(scene, blender=True))  # a Blender scene under blender-data
    # nerfstudio-data takes a transforms file, whose frames check_capture then reads
    with pytest.raises(InputError, match="has no frames list"):
        check_data(_datamanager(tmp_path / "scene.json"))
    capture = write_capture_scene(tmp_path / "capture", size=8, views=3, test_views=1)
    check_data(_datamanager(capture / "transforms.json"))
    # without --data, the dataparser's own path is the one checked
    with pytest.raises(InputError, match="does not exist"):
        check_data(_datamanager(None, blender=True, parser_data=tmp_path / "nowhere"))
    check_data(_datamanager(None, blender=True, parser_data=scene))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_checks_its_data_before_ns_train_writes(name, tmp_path, capsys, monkeypatch):
    """ns-train calls ``print_to_terminal()`` just before ``save_config()``: on every registered
    method a bad path ends there, with one line and exit status 2, before anything is written."""
    assert not METHODS[name].description.startswith("unavailable"), METHODS[name].description
    config = copy.deepcopy(METHODS[name].config)
    assert isinstance(config, MuonNeRFTrainerConfig)
    monkeypatch.chdir(tmp_path)
    config.pipeline.datamanager.data = tmp_path / "missing"
    config.set_timestamp()
    with pytest.raises(SystemExit) as exit_info:
        config.print_to_terminal()
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert err == f"error: data path {tmp_path / 'missing'} does not exist\n" and out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "method, args, reason",
    [
        ("muon-nerf", ["--data", "{missing}"], "data path {missing} does not exist"),
        (
            "muon-nerf-siren-adam",
            ["--data", "{empty}", "blender-data"],
            "{empty}/transforms_train.json not found",
        ),
    ],
)
def test_ns_train_with_bad_data_fails_in_one_line_and_writes_nothing(method, args, reason, tmp_path):
    """The real command: exit status 2, the last stderr line is ``error: …`` naming the path, no
    traceback, and nothing (no ``outputs/``) in the working directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty"}
    out = subprocess.run(
        [str(BIN / "ns-train"), method, *[a.format(**paths) for a in args]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), out.stderr[-3000:]
    assert reason.format(**paths) in lines[-1], lines[-1]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert list(cwd.iterdir()) == []
    assert sorted(tmp_path.iterdir()) == sorted([cwd, tmp_path / "empty"])
