#!/usr/bin/env bash
# One GPU check, sized to finish within ~8 minutes on one H100/H200:
#   1. paper-scale image comparison: kodim01 at full resolution, ReLU and SIREN, 5000 steps, Adam vs Muon
#   2. the speed benchmark (step split, optimizer-step ratios, fit-loop overhead) at GPU sizes
#   3. a short `ns-train muon-nerf` vs `muon-nerf-adam` run on lego, when the plugin is installed
# All results land as JSON files directly in OUT_DIR (default outputs/gpu_check).
#
#   scripts/gpu_check.sh [--dry-run] [OUT_DIR]
#
# --dry-run runs every part at toy size on the CPU (the bundled image, a few steps), so the
# script itself is tested where no GPU is.
set -euo pipefail
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-outputs/gpu_check}" && cd "${1:-outputs/gpu_check}" && pwd)
DATA=${MUON_NERF_DATA:-$ROOT/../shared/data}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"
export PYTHONUNBUFFERED=1

if [[ $DRY == 1 ]]; then
  DEVICE=cpu; IMAGE_ARGS=(--steps 5 --width 16 --eval-every 5); IMAGE=()
  SPEED_ARGS=(--sizes 256 --widths 32 --reps 2 --warmup 1 --loop-steps 5 --loop-reps 1 --ttq-steps 10 --ttq-width 16
              --ttq-image muon_nerf/assets/kodim01_96x64.png --ttq-downscale 2)
else
  python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --dry-run')"
  DEVICE=cuda; IMAGE_ARGS=(--steps 5000 --eval-every 250); IMAGE=(--image "$DATA/kodak/kodim01.png")
  SPEED_ARGS=(--sizes 65536 393216 --widths 256 512 --reps 50 --loop-steps 1000)
fi
python3 -c "import json, torch; print(json.dumps({'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', 'torch': torch.__version__}))" > "$OUT/device.json"

echo "== 1. image comparison (${IMAGE[*]:-bundled image})"
for arch in relu siren; do
  python3 scripts/fit_image.py "${IMAGE[@]}" --arch "$arch" --compare --device "$DEVICE" --no-progress \
    "${IMAGE_ARGS[@]}" --output-dir "$WORK" --run-name "$arch"
  cp "$WORK/image/$arch/comparison.json" "$OUT/image_$arch.json"
done

echo "== 2. speed benchmark"
python3 scripts/bench_speed.py --device "$DEVICE" "${SPEED_ARGS[@]}" --output "$OUT/speed.json"

echo "== 3. nerfstudio"
if python3 -c "import muon_nerf.method_configs" 2>/dev/null && command -v ns-train >/dev/null; then
  python3 scripts/gpu_check_nerf.py $([[ $DRY == 1 ]] && echo --dry-run) --data "$DATA/nerf_synthetic/lego" \
    --work "$WORK/nerf" --output "$OUT/nerf.json"
else
  echo '{"skipped": "muon_nerf.method_configs or ns-train not available"}' > "$OUT/nerf.json"
fi
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
