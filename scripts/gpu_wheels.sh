#!/usr/bin/env bash
# Wheels for the NeRF part of the GPU check: nerfstudio 1.1.5 and exactly the packages that the
# `ns-train muon-nerf` / `ns-eval` import path needs and the GPU machine lacks
# (../shared/gpu-machine.md lists what it has: torch, numpy 2, matplotlib, rich, scikit-image,
# jaxtyping, opencv, imageio, tensorboard, …). Run it here, where pip reaches a registry; the GPU
# machine has none. gpu_check.sh installs the folder with
#   python3 -m pip install --no-index --no-deps --target DIR .whl/*.whl   (+ PYTHONPATH=DIR)
#
#   scripts/gpu_wheels.sh [--python-version 3.12] [DIR]      (DIR defaults to .whl in the repo)
#
# Binary packages come as cp312 manylinux x86-64 wheels built against NumPy 2 (the GPU machine
# has NumPy 2.x); pure-Python ones as py3-none-any. Total must stay ≤ 60 MiB (about 22 MiB now).
# --python-version 3.11 fetches the same versions for this machine's python 3.11, to check the set
# here: a venv with only the GPU machine's packages (torch, numpy 2, …; no nerfstudio), then
#   PATH=VENV/bin:$PATH MUON_NERF_WHEELS=DIR scripts/gpu_check.sh --dry-run --only nerf OUT
# installs DIR as the GPU run does and runs bench_nerf.py end to end on it.
#
# Left out on purpose:
#   fpsample   only source on the registry; imported at module level by nerfstudio's
#              full_images_datamanager (reached through `ns-train`'s method list), used only by
#              splatfacto's "fps" camera sampling. gpu_check.sh writes a stub module that raises
#              if it is ever called; our VanillaDataManager never calls it.
#   viser's and nerfstudio's other requirements (trimesh, open3d, wandb, comet-ml, av, timm, …):
#              not imported on the train/eval path; installed with --no-deps, so never pulled in.
set -euo pipefail
PYVER=3.12
if [[ "${1:-}" == "--python-version" ]]; then PYVER=$2; shift 2; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/.whl}
LIMIT_MIB=60

PACKAGES=(
  nerfstudio==1.1.5
  tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1  # configs, CLIs (typeguard: lazily)
  viser==0.2.7 msgspec==0.22.0 websockets==17.4   # trainer.py imports the viewer at module level
  nerfacc==0.5.2                                  # ray_samplers, renderers (JIT CUDA, lazy)
  gsplat==1.4.0 pytorch-msssim==1.0.0             # splatfacto, which the viewer modules import
  tensorly==0.10.0                                # lib_bilagrid (splatfacto)
  rawpy==0.28.0 appdirs==1.4.4                    # process_data utils (reached by dataparsers)
  pyquaternion==0.9.9                             # nuscenes dataparser (method list)
  splines==0.3.0                                  # viewer render panel
  pathos==0.3.5 multiprocess==0.70.19 dill==0.4.1 ppft==1.7.8 pox==0.3.7  # parallel datamanager
)

TAG=${PYVER/./}
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --abi "cp$TAG" --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$DEST" "${PACKAGES[@]}" 2> >(grep -v "^WARNING: Location" >&2)

total=0
for whl in "$DEST"/*.whl; do
  size=$(stat -c %s "$whl")
  total=$((total + size))
  awk -v s="$size" -v n="$(basename "$whl")" 'BEGIN { printf "%9.2f MiB  %s\n", s / 1048576, n }'
done
count=$(ls "$DEST"/*.whl | wc -l)
awk -v s="$total" -v c="$count" -v d="$DEST" -v p="$PYVER" \
  'BEGIN { printf "%9.2f MiB  total, %d wheels in %s (python %s)\n", s / 1048576, c, d, p }'
if ((total > LIMIT_MIB * 1048576)); then
  echo "error: wheels exceed ${LIMIT_MIB} MiB" >&2
  exit 1
fi
