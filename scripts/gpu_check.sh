#!/usr/bin/env bash
# One GPU check, sized to finish within ~8 minutes on one H100/H200:
#   1. the speed benchmark (step split, optimizer-step ratios incl. compiled/CUDA-graph chains,
#      back-to-back stream ratio, fit-loop overhead, time to quality) at GPU sizes
#   2. paper-scale image comparison: kodim01 at full resolution, ReLU and SIREN, 5000 steps,
#      Adam vs Muon (TF32 matmuls, recorded in the JSON)
#   3. a short `ns-train muon-nerf` vs `muon-nerf-adam` run on lego, when nerfstudio is installed
# Results land as JSON directly in OUT_DIR (default outputs/gpu_check), with one log, gpu_check.log.
# Each part has its own time limit and a failing part is logged and skipped, so a short device
# lease always brings back whatever finished. The exit status is the number of failed parts.
#
#   scripts/gpu_check.sh [--dry-run] [OUT_DIR]
#
# --dry-run runs every part at toy size on the CPU (the bundled image, a few steps), so the
# script itself is tested where no GPU is. MUON_NERF_DATA overrides ../shared/data.
set -uo pipefail
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
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
  LIMIT_SPEED=300; LIMIT_IMAGE=300; LIMIT_NERF=300
else
  python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --dry-run')" \
    || exit 1
  DEVICE=cuda; IMAGE_ARGS=(--steps 5000 --eval-every 100 --tf32); IMAGE=(--image "$DATA/kodak/kodim01.png")
  SPEED_ARGS=(--sizes 65536 393216 --widths 256 --reps 40 --loop-steps 1000
              --ttq-image "$DATA/kodak/kodim01.png" --ttq-downscale 2 --ttq-width 150 --ttq-steps 2000)
  LIMIT_SPEED=${LIMIT_SPEED:-150}; LIMIT_IMAGE=${LIMIT_IMAGE:-180}; LIMIT_NERF=${LIMIT_NERF:-120}
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

part speed "$LIMIT_SPEED" python3 scripts/bench_speed.py --device "$DEVICE" "${SPEED_ARGS[@]}" --output "$OUT/speed.json"

for arch in relu siren; do
  part "image $arch (${IMAGE[*]:-bundled image})" "$LIMIT_IMAGE" python3 scripts/fit_image.py "${IMAGE[@]}" \
    --arch "$arch" --compare --device "$DEVICE" --no-progress "${IMAGE_ARGS[@]}" --output-dir "$WORK" --run-name "$arch"
  if [[ -f "$WORK/image/$arch/comparison.json" ]]; then
    cp "$WORK/image/$arch/comparison.json" "$OUT/image_$arch.json"
  fi
done
if [[ -f "$WORK/image/relu/compare.png" ]]; then cp "$WORK/image/relu/compare.png" "$OUT/image_relu.png"; fi

if python3 -c "import muon_nerf.method_configs" 2>/dev/null && command -v ns-train >/dev/null; then
  part nerfstudio "$LIMIT_NERF" python3 scripts/gpu_check_nerf.py $([[ $DRY == 1 ]] && echo --dry-run) \
    --data "$DATA/nerf_synthetic/lego" --work "$WORK/nerf" --output "$OUT/nerf.json"
else
  echo "== nerfstudio: skipped (muon_nerf.method_configs or ns-train not available)" | tee -a "$LOG"
  echo '{"skipped": "muon_nerf.method_configs or ns-train not available"}' > "$OUT/nerf.json"
fi
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' '); failed parts: $FAILED" | tee -a "$LOG"
exit "$FAILED"
