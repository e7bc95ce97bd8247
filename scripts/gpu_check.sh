#!/usr/bin/env bash
# One GPU check, sized to finish within ~8 minutes on one H100/H200:
#   1. the speed benchmark (step split, optimizer-step ratios incl. compiled/CUDA-graph chains,
#      back-to-back stream ratio, fit-loop overhead, time to quality) at GPU sizes
#   2. paper-scale image comparison: kodim01 at full resolution, ReLU and SIREN, 5000 steps,
#      Adam vs Muon (TF32 matmuls, recorded in the JSON)
#   3. nerf: `scripts/bench_nerf.py --profile gpu` on the compact lego (FINER protocol: 25 views
#      at 200×200, 10 test views): relu_pe Adam vs Muon first, then siren and finer as time allows
#   4. ngp: the same benchmark for `muon-ngp` vs `muon-ngp-adam` (hash grid, proposal sampling):
#      test PSNR, it/s and the Muon step's share of training time
# Results land as JSON directly in OUT_DIR (default outputs/gpu_check; the NeRF part's in
# OUT_DIR/nerf and OUT_DIR/ngp), with one log, gpu_check.log. Each part has its own time limit and a failing part
# is logged and skipped, so a short device lease always brings back whatever finished (the NeRF
# benchmark rewrites its results after every run). The exit status is the number of failed parts.
#
#   scripts/gpu_check.sh [--dry-run] [--only speed,image,nerf,ngp] [OUT_DIR]
#
# --dry-run runs every part at toy size on the CPU (the bundled image, a few steps, a toy NeRF
# scene), so the script itself is tested where no GPU is. --only runs the named parts.
# MUON_NERF_DATA overrides ../shared/data (speed, image). The NeRF part needs nerfstudio: where it
# is not importable and MUON_NERF_WHEELS (default .whl, from scripts/gpu_wheels.sh) holds wheels,
# they are installed with pip --no-index --no-deps --target into a temporary folder put on
# PYTHONPATH, plus a stub `fpsample` module (source-only on the registry; nerfstudio imports it
# only for splatfacto's camera sampling). MUON_NERF_LEGO (default .devdata/lego200, from
# `python -m muon_nerf.nerf.data subset --out .devdata/lego200 --stride 4 --size 200
# --eval-views 10`), NERF_ARCHS (default "relu_pe siren finer"), NERF_ITERATIONS (default: the
# gpu profile's 2000), LIMIT_NERF (default 420 s) and LIMIT_NGP (default 240 s) adjust it. The
# GPU run, carrying the wheels and the data: scripts/gpu_check.sh --only nerf,ngp
set -uo pipefail
DRY=0
ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    *) break ;;
  esac
done
for p in ${ONLY//,/ }; do
  [[ $p =~ ^(speed|image|nerf|ngp)$ ]] || { echo "error: --only takes speed, image, nerf, ngp; got $p" >&2; exit 2; }
done
want() { [[ -z $ONLY || ",$ONLY," == *",$1,"* ]]; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-outputs/gpu_check}" && cd "${1:-outputs/gpu_check}" && pwd)
DATA=${MUON_NERF_DATA:-$ROOT/../shared/data}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"
export PYTHONUNBUFFERED=1
LOG="$OUT/gpu_check.log"
: > "$LOG"

if [[ $DRY == 1 ]]; then
  DEVICE=cpu; IMAGE_ARGS=(--steps 5 --width 16 --eval-every 5); IMAGE=()
  SPEED_ARGS=(--sizes 256 --widths 32 --reps 2 --warmup 1 --stream-steps 2 --loop-steps 5 --loop-reps 1
              --ttq-steps 10 --ttq-width 16 --ttq-image muon_nerf/assets/kodim01_96x64.png --ttq-downscale 2)
  LIMIT_SPEED=300; LIMIT_IMAGE=300; LIMIT_NERF=300; LIMIT_NGP=300
  NERF_ARGS=(--dry-run --archs relu_pe); NGP_ARGS=(--dry-run --archs ngp)
else
  python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --dry-run')" \
    || exit 1
  DEVICE=cuda; IMAGE_ARGS=(--steps 5000 --eval-every 100 --tf32); IMAGE=(--image "$DATA/kodak/kodim01.png")
  SPEED_ARGS=(--sizes 65536 393216 --widths 256 --reps 40 --loop-steps 1000
              --ttq-image "$DATA/kodak/kodim01.png" --ttq-downscale 2 --ttq-width 150 --ttq-steps 2000)
  LIMIT_SPEED=${LIMIT_SPEED:-150}; LIMIT_IMAGE=${LIMIT_IMAGE:-180}; LIMIT_NERF=${LIMIT_NERF:-420}
  LIMIT_NGP=${LIMIT_NGP:-240}
  read -ra archs <<< "${NERF_ARCHS:-relu_pe siren finer}"
  NERF_ARGS=(--profile gpu --data "${MUON_NERF_LEGO:-$ROOT/.devdata/lego200}" --archs "${archs[@]}"
             ${NERF_ITERATIONS:+--iterations "$NERF_ITERATIONS"})
  NGP_ARGS=(--profile gpu --data "${MUON_NERF_LEGO:-$ROOT/.devdata/lego200}" --archs ngp
            ${NERF_ITERATIONS:+--iterations "$NERF_ITERATIONS"})
fi
python3 -c "import json, torch; print(json.dumps({'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', 'torch': torch.__version__}))" > "$OUT/device.json"

FAILED=0
part() {  # part NAME SECONDS CMD...: run one part under a time limit, log it, never stop the script
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start))s" | tee -a "$LOG"
  if [[ $rc != 0 ]]; then FAILED=$((FAILED + 1)); fi
  return 0
}

if want speed; then
  part speed "$LIMIT_SPEED" python3 scripts/bench_speed.py --device "$DEVICE" "${SPEED_ARGS[@]}" --output "$OUT/speed.json"
fi

if want image; then
  for arch in relu siren; do
    part "image $arch (${IMAGE[*]:-bundled image})" "$LIMIT_IMAGE" python3 scripts/fit_image.py "${IMAGE[@]}" \
      --arch "$arch" --compare --device "$DEVICE" --no-progress "${IMAGE_ARGS[@]}" --output-dir "$WORK" --run-name "$arch"
    if [[ -f "$WORK/image/$arch/comparison.json" ]]; then
      cp "$WORK/image/$arch/comparison.json" "$OUT/image_$arch.json"
    fi
  done
  if [[ -f "$WORK/image/relu/compare.png" ]]; then cp "$WORK/image/relu/compare.png" "$OUT/image_relu.png"; fi
fi

WHEELS_INSTALLED=0
install_wheels() {  # nerfstudio & co. from MUON_NERF_WHEELS into $WORK/site, put on PYTHONPATH
  local wheels=${MUON_NERF_WHEELS:-$ROOT/.whl} site=$WORK/site
  if python3 -c "import nerfstudio" 2>/dev/null || ! compgen -G "$wheels/*.whl" >/dev/null; then return 0; fi
  part "wheels ($(ls "$wheels"/*.whl | wc -l) from $wheels)" 180 \
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl
  export PYTHONPATH="$site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  WHEELS_INSTALLED=1
  if ! python3 -c "import fpsample" 2>/dev/null; then
    # fpsample has no wheel (source only). nerfstudio's full_images_datamanager imports it at
    # module level (reached through ns-train's method list) and calls it only for splatfacto's
    # "fps" camera sampling; muon-nerf's VanillaDataManager never does.
    cat > "$site/fpsample.py" <<'PY'
"""Stub written by scripts/gpu_check.sh: the real fpsample has no wheel to carry."""


def bucket_fps_kdline_sampling(*args, **kwargs):
    raise NotImplementedError("fpsample is a stub here (scripts/gpu_check.sh): splatfacto's fps sampling is unavailable")
PY
  fi
}

nerf_part() {  # nerf_part NAME LIMIT ARGS...: bench_nerf.py into OUT/NAME once nerfstudio imports
  local name=$1 limit=$2
  shift 2
  mkdir -p "$OUT/$name"
  install_wheels
  local check="import nerfstudio.engine.trainer, muon_nerf.nerf.model" why
  if python3 -c "$check" 2>/dev/null; then
    part "$name (bench_nerf.py $*)" "$limit" python3 scripts/bench_nerf.py "$@" \
      --device "$DEVICE" --output "$OUT/$name" --work "$WORK/$name"
  else
    why=$(python3 -c "$check" 2>&1 | tail -1)
    if [[ $WHEELS_INSTALLED == 1 ]]; then  # the carried wheels do not make the import path work
      echo "== $name: failed (import with the installed wheels: $why)" | tee -a "$LOG"
      FAILED=$((FAILED + 1))
    else
      echo "== $name: skipped (nerfstudio not importable and no wheels: $why)" | tee -a "$LOG"
    fi
    python3 -c "import json, sys; print(json.dumps({'skipped': sys.argv[1]}))" "$why" > "$OUT/$name/results.json"
  fi
}

if want nerf; then nerf_part nerf "$LIMIT_NERF" "${NERF_ARGS[@]}"; fi
if want ngp; then nerf_part ngp "$LIMIT_NGP" "${NGP_ARGS[@]}"; fi
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' '); failed parts: $FAILED" | tee -a "$LOG"
exit "$FAILED"
