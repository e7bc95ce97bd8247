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
#   5. long: NeRF to convergence at the *cpu* profile (issue 28; lego 100², 25 views, 512 rays,
#      6×128 relu_pe), 10,000 iterations or until the last 2,000 gain < 0.2 dB, test curves every
#      500 iterations on all 10 test views; with LONG_PROFILE=gpu the same curves at the *gpu*
#      profile (MUON_NERF_LEGO's lego 200², 1024 rays, 6×256), 20,000 iterations, curves every
#      1,000; LONG_ITERATIONS overrides either plan; LONG_METHODS (default "relu_pe:adam relu_pe:muon";
#      also ngp:adam, ngp:muon, nerfacto:adam) over LONG_SEEDS (default "0 1"), and with
#      LONG_WIDE=1 ngp with a 6×128 position MLP (seed 0); one bench_nerf.py process per run,
#      all side by side on the one GPU (one CPU thread each), each stopped after LONG_TIME_LIMIT
#      (default 350 s) of training. Processes share the GPU by time slices: the more of them, the
#      slower each (docs/results/nerf_gpu_h200_long says how much), so a lease holds few. Then
#      one table each (--table-only --merge) in OUT_DIR/long and OUT_DIR/long_wide, packed with
#      every run's log and partial curves into OUT_DIR/long.tgz
#   6. tune: the NeRF lr grid (scripts/tune_nerf.py; issue 28) at the *cpu* profile on the tuning
#      scene (lego 100², training views 2, 6, …, scored on 10 val views), TUNE_ARCHS (default
#      "relu_pe siren finer ngp"), TUNE_ITERATIONS per trial (default the profile's 2000, the
#      tables' budget: docs/nerf.md says why a 500-iteration proxy misled; with --mps the whole
#      grid at 2000 should take ≈ 7 min), TUNE_SHARDS (default 11, a count that no number of archs
#      up to 10 divides, so every shard gets some of each arch's trials) processes side by side,
#      all stopped after LIMIT_TUNE (default 540 s); every finished trial is kept. OUT_DIR/tune
#      holds one sweep.json per arch (scripts/tuned_lrs.py --sweeps reads them), packed with the
#      shards' logs into OUT_DIR/tune.tgz
#   7. table: the 2000-iteration NeRF table at the tuned lrs (issue 28) at the *cpu* profile on
#      lego 100²: first the tuned table is remade from TABLE_SWEEPS (folders; default OUT_DIR/tune
#      when the tune part runs in the same call, else the committed sweeps: one table mixes no
#      budgets) into OUT_DIR/table (the runs train at it through --tuned-table; the package's table
#      stays as it is; an arch of TABLE_ARCHS without a NeRF row there skips the part), then
#      TABLE_ARCHS (default "ngp siren finer relu_pe") × Adam/Muon × TABLE_SEEDS (default "0 1 2")
#      as TABLE_PROCS (default 12) processes side by side, seed by seed, curves every 500
#      iterations on the 10 test views, all stopped after LIMIT_TABLE (default 300 s); one merged
#      table in OUT_DIR/table, packed with every run into OUT_DIR/table.tgz
# Results land as JSON directly in OUT_DIR (default outputs/gpu_check; the NeRF part's in
# OUT_DIR/nerf and OUT_DIR/ngp), with one log, gpu_check.log. Each part has its own time limit and a failing part
# is logged and skipped, so a short device lease always brings back whatever finished (the NeRF
# benchmark rewrites its results after every run). The exit status is the number of failed parts.
#
#   scripts/gpu_check.sh [--dry-run] [--mps] [--only speed,image,nerf,ngp,long,tune,table] [OUT_DIR]
#
# --dry-run runs every part at toy size on the CPU (the bundled image, a few steps, a toy NeRF
# scene), so the script itself is tested where no GPU is. --only runs the named parts.
# --mps starts a CUDA MPS control daemon for this call (pipe and log folders in a temporary folder,
# quit at exit) so that the many small processes of long, tune and table run their kernels side by
# side instead of taking turns in time slices; when no daemon starts or a CUDA client cannot reach
# it, the script exits 3 before any part (the caller falls back to a call without --mps). It
# changes no setting of the card. With LONG_BESIDE=1 the long part runs in the background beside
# the other parts (its processes then share the GPU with theirs).
# MUON_NERF_DATA overrides ../shared/data (speed, image). The NeRF part needs nerfstudio: where it
# is not importable and MUON_NERF_WHEELS (default .whl, from scripts/gpu_wheels.sh) holds wheels,
# they are installed with pip --no-index --no-deps --target into a temporary folder put on
# PYTHONPATH, plus a stub `fpsample` module (source-only on the registry; nerfstudio imports it
# only for splatfacto's camera sampling). MUON_NERF_LEGO (default .devdata/lego200, from
# `python -m muon_nerf.nerf.data subset --out .devdata/lego200 --stride 4 --size 200
# --eval-views 10`), NERF_ARCHS (default "relu_pe siren finer"), NERF_ITERATIONS (default: the
# gpu profile's 2000), LIMIT_NERF (default 420 s) and LIMIT_NGP (default 240 s) adjust it. The
# GPU run, carrying the wheels and the data: scripts/gpu_check.sh --only nerf,ngp. The long part
# reads MUON_NERF_LEGO100 (default .devdata/lego100: the same subset command with --size 100;
# MUON_NERF_LEGO with LONG_PROFILE=gpu) and LIMIT_LONG (default 480 s for all its runs). The tune
# part reads MUON_NERF_LEGO100V2 (default .devdata/lego100v2: the subset command with --size 100
# --offset 2).
set -uo pipefail
DRY=0
MPS=0
ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --mps) MPS=1; shift ;;
    *) break ;;
  esac
done
LONG_PROFILE=${LONG_PROFILE:-cpu}
[[ $LONG_PROFILE =~ ^(cpu|gpu)$ ]] || { echo "error: LONG_PROFILE takes cpu or gpu; got $LONG_PROFILE" >&2; exit 2; }
[[ ${LONG_ITERATIONS:-1} =~ ^[1-9][0-9]*$ ]] \
  || { echo "error: LONG_ITERATIONS takes a positive whole number; got $LONG_ITERATIONS" >&2; exit 2; }
for p in ${ONLY//,/ }; do
  [[ $p =~ ^(speed|image|nerf|ngp|long|tune|table)$ ]] \
    || { echo "error: --only takes speed, image, nerf, ngp, long, tune, table; got $p" >&2; exit 2; }
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
  LONG_ARGS=(--dry-run --iterations 4 --curve-every 1 --curve-views 2 --stop-gain 0.2 --stop-window 2)
  LONG_SEEDS="0"; LIMIT_LONG=600; LONG_TIME_LIMIT=300
  LONG_METHODS=${LONG_METHODS:-"relu_pe:adam relu_pe:muon"}; LONG_WIDE=${LONG_WIDE:-0}
  TUNE_ARGS=(--dry-run --archs relu_pe --adam-lrs 1e-3 --muon-lrs 0.05 --muon-adam-lrs 1e-3)
  TUNE_SHARDS=2; LIMIT_TUNE=300
  TABLE_ARGS=(--dry-run --curve-every 1 --curve-views 2); TABLE_ARCHS=${TABLE_ARCHS:-"relu_pe"}; TABLE_SEEDS=${TABLE_SEEDS:-"0"}
  TABLE_PROCS=2; LIMIT_TABLE=300; TABLE_SWEEPS=("$OUT/tune")  # never the committed sweeps' maximin
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
  if [[ $LONG_PROFILE == gpu ]]; then
    LONG_ARGS=(--profile gpu --data "${MUON_NERF_LEGO:-$ROOT/.devdata/lego200}" --iterations "${LONG_ITERATIONS:-20000}"
               --curve-every 1000)
  else
    LONG_ARGS=(--profile cpu --data "${MUON_NERF_LEGO100:-$ROOT/.devdata/lego100}" --iterations "${LONG_ITERATIONS:-10000}"
               --curve-every 500)
  fi
  LONG_ARGS+=(--curve-views 10 --stop-gain 0.2 --stop-window 2000)
  LONG_SEEDS=${LONG_SEEDS:-"0 1"}; LIMIT_LONG=${LIMIT_LONG:-480}; LONG_TIME_LIMIT=${LONG_TIME_LIMIT:-350}
  LONG_METHODS=${LONG_METHODS:-"relu_pe:adam relu_pe:muon"}; LONG_WIDE=${LONG_WIDE:-0}
  read -ra tune_archs <<< "${TUNE_ARCHS:-relu_pe siren finer ngp}"
  TUNE_ARGS=(--profile cpu --data "${MUON_NERF_LEGO100V2:-$ROOT/.devdata/lego100v2}" --archs "${tune_archs[@]}"
             ${TUNE_ITERATIONS:+--iterations "$TUNE_ITERATIONS"})
  TUNE_SHARDS=${TUNE_SHARDS:-11}; LIMIT_TUNE=${LIMIT_TUNE:-540}
  TABLE_ARGS=(--profile cpu --data "${MUON_NERF_LEGO100:-$ROOT/.devdata/lego100}" --curve-every 500 --curve-views 10)
  TABLE_ARCHS=${TABLE_ARCHS:-"ngp siren finer relu_pe"}; TABLE_SEEDS=${TABLE_SEEDS:-"0 1 2"}
  TABLE_PROCS=${TABLE_PROCS:-12}; LIMIT_TABLE=${LIMIT_TABLE:-300}
  if want tune; then sweeps="$OUT/tune"; else sweeps="$ROOT/docs/results/sweeps"; fi
  read -ra TABLE_SWEEPS <<< "${TABLE_SWEEPS:-$sweeps}"
fi
python3 -c "import json, torch; print(json.dumps({'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', 'torch': torch.__version__}))" > "$OUT/device.json"

if [[ $MPS == 1 && $DRY == 1 ]]; then
  echo "== mps: not started (dry run: no GPU)" | tee -a "$LOG"
elif [[ $MPS == 1 ]]; then
  export CUDA_MPS_PIPE_DIRECTORY=$WORK/mps_pipe CUDA_MPS_LOG_DIRECTORY=$WORK/mps_log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  trap 'echo quit | nvidia-cuda-mps-control >/dev/null 2>&1; rm -rf "$WORK"' EXIT
  if ! nvidia-cuda-mps-control -d >>"$LOG" 2>&1 \
    || ! timeout 60 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()" >>"$LOG" 2>&1; then
    echo "error: --mps: no MPS daemon started that a CUDA client could reach (gpu_check.log says why)" | tee -a "$LOG" >&2
    exit 3
  fi
  echo "== mps: on (server pid $(echo get_server_list | nvidia-cuda-mps-control 2>&1 | tr '\n' ' '))" | tee -a "$LOG"
fi

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

long_part() {  # the convergence runs side by side, then a table each; OUT/long.tgz; fails if any part did
  install_wheels
  local before=$FAILED runs=() names=() name arch opt seed wide pids=() start=$SECONDS rc failed=0
  local wide_mlp=(--ngp-mlp 6 128)  # LONG_WIDE's position MLP for ngp: 6 linear layers × 128
  for arch_opt in $LONG_METHODS; do
    [[ $arch_opt =~ ^(relu_pe|ngp):(adam|muon)$|^nerfacto:adam$ ]] \
      || { echo "== long: failed (LONG_METHODS takes relu_pe|ngp:adam|muon, nerfacto:adam; got $arch_opt)" | tee -a "$LOG"; FAILED=$((FAILED + 1)); return; }
    for seed in $LONG_SEEDS; do runs+=("$arch_opt:$seed:"); done
  done
  if [[ $LONG_WIDE == 1 ]]; then runs+=("ngp:adam:0:wide" "ngp:muon:0:wide"); fi
  mkdir -p "$OUT/long_runs"
  echo "== long: ${#runs[@]} runs side by side at the $LONG_PROFILE profile (limit ${LIMIT_LONG}s; each stops after ${LONG_TIME_LIMIT}s of training)" \
    | tee -a "$LOG"
  for run in "${runs[@]}"; do
    IFS=: read -r arch opt seed wide <<< "$run"
    name="$arch-$opt-seed$seed${wide:+-$wide}"
    OMP_NUM_THREADS=1 timeout "$LIMIT_LONG" python3 scripts/bench_nerf.py "${LONG_ARGS[@]}" --device "$DEVICE" \
      --archs "$arch" --optimizers "$opt" --seeds "$seed" --time-limit "$LONG_TIME_LIMIT" \
      ${wide:+"${wide_mlp[@]}"} --output "$OUT/long_runs/$name" --work "$WORK/long/$name" \
      > "$OUT/long_runs/$name.log" 2>&1 &
    pids+=("$!"); names+=("$name")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; rc=$?
    echo "== long ${names[$i]}: exit $rc after $((SECONDS - start))s;$(grep -E '^ +test PSNR|^error' "$OUT/long_runs/${names[$i]}.log" | tail -1)" \
      | tee -a "$LOG"
    if [[ $rc != 0 ]]; then failed=1; fi
  done
  local base=() wide_dirs=() archs
  archs=$(for m in $LONG_METHODS; do echo "${m%%:*}"; done | awk '!seen[$0]++' | tr '\n' ' ')
  for d in "$OUT"/long_runs/*/; do
    [[ -f $d/results.json ]] || continue
    if [[ $d == *-wide/ ]]; then wide_dirs+=("$d"); else base+=("$d"); fi
  done
  if ((${#base[@]})); then
    part "long table" 120 python3 scripts/bench_nerf.py "${LONG_ARGS[@]}" --device "$DEVICE" --archs $archs \
      --seeds $LONG_SEEDS --time-limit "$LONG_TIME_LIMIT" --table-only --merge "${base[@]}" --output "$OUT/long" --work "$WORK/long/table"
  fi
  if ((${#wide_dirs[@]})); then
    part "long wide table" 120 python3 scripts/bench_nerf.py "${LONG_ARGS[@]}" --device "$DEVICE" --archs ngp --seeds 0 \
      --time-limit "$LONG_TIME_LIMIT" "${wide_mlp[@]}" --table-only --merge "${wide_dirs[@]}" --output "$OUT/long_wide" --work "$WORK/long/wide"
  fi
  tar czf "$OUT/long.tgz" -C "$OUT" --exclude=work long_runs $(cd "$OUT" && ls -d long long_wide 2>/dev/null)
  if [[ $failed != 0 ]]; then FAILED=$((FAILED + 1)); fi
  ((FAILED == before))  # the status a background long part reports
}

tune_part() {  # the NeRF lr grid, TUNE_SHARDS processes side by side; OUT/tune.tgz
  install_wheels
  local pids=() i rc failed=0 start=$SECONDS
  mkdir -p "$OUT/tune"
  echo "== tune: $TUNE_SHARDS processes side by side (limit ${LIMIT_TUNE}s): ${TUNE_ARGS[*]}" | tee -a "$LOG"
  for ((i = 0; i < TUNE_SHARDS; i++)); do
    OMP_NUM_THREADS=1 timeout "$LIMIT_TUNE" python3 scripts/tune_nerf.py "${TUNE_ARGS[@]}" --device "$DEVICE" \
      --shard "$i" "$TUNE_SHARDS" --output "$OUT/tune" --work "$WORK/tune" > "$OUT/tune/shard$i.log" 2>&1 &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; rc=$?
    echo "== tune shard $i: exit $rc after $((SECONDS - start))s; $(grep -c '^    ok' "$OUT/tune/shard$i.log") trials ok" \
      | tee -a "$LOG"
    if [[ $rc != 0 ]]; then failed=1; fi
  done
  tar czf "$OUT/tune.tgz" -C "$OUT" --exclude=work --exclude=.lock tune
  if [[ $failed != 0 ]]; then FAILED=$((FAILED + 1)); fi
}

table_run() {  # table_run ARCH OPTIMIZER SEED: one run of the table part (xargs calls it)
  local name="$1-$2-seed$3"
  OMP_NUM_THREADS=1 python3 scripts/bench_nerf.py "${TABLE_ARGS[@]}" --device "$DEVICE" --archs "$1" \
    --tuned-table "$OUT/table/tuned_lrs.json" --optimizers "$2" --seeds "$3" --output "$OUT/table_runs/$name" \
    --work "$WORK/table/$name" \
    > "$OUT/table_runs/$name.log" 2>&1
  local rc=$?
  echo "== table $name: exit $rc;$(grep -E '^ +test PSNR|^error' "$OUT/table_runs/$name.log" | tail -1)" | tee -a "$LOG"
  return "$rc"
}

table_part() {  # the tuned table remade, then every run at it, TABLE_PROCS at a time; OUT/table.tgz
  install_wheels
  mkdir -p "$OUT/table" "$OUT/table_runs"
  part "tuned table (${TABLE_SWEEPS[*]})" 120 python3 scripts/tuned_lrs.py --sweeps "${TABLE_SWEEPS[@]}" \
    --table "$OUT/table/tuned_lrs.json" --markdown "$OUT/table/tuned.md"
  [[ -f $OUT/table/tuned_lrs.json ]] || { echo "== table: skipped (no tuned table)" | tee -a "$LOG"; return; }
  local missing  # an arch without a row would train at the untuned lrs: not this part's table
  missing=$(python3 -c 'import sys; from pathlib import Path; from muon_nerf.nerf.config import NERF_TASK
from muon_nerf.runs.tuned import tuned_table; rows = tuned_table(Path(sys.argv[1]))
print(" ".join(a for a in sys.argv[2:] if (NERF_TASK, a) not in rows))' "$OUT/table/tuned_lrs.json" $TABLE_ARCHS) \
    || { echo "== table: failed (cannot read $OUT/table/tuned_lrs.json)" | tee -a "$LOG"; FAILED=$((FAILED + 1)); return; }
  if [[ -n $missing ]]; then
    echo "== table: skipped (no NeRF row for $missing in ${TABLE_SWEEPS[*]})" | tee -a "$LOG"
    FAILED=$((FAILED + 1)); return
  fi
  local jobs=() seed arch opt rc dirs=()
  for seed in $TABLE_SEEDS; do for arch in $TABLE_ARCHS; do for opt in adam muon; do
    jobs+=("$arch $opt $seed")
  done; done; done
  echo "== table: ${#jobs[@]} runs, $TABLE_PROCS at a time (limit ${LIMIT_TABLE}s)" | tee -a "$LOG"
  export -f table_run
  export DEVICE OUT WORK LOG TABLE_ARGS_STR=${TABLE_ARGS[*]@Q}  # an array cannot be exported
  printf '%s\n' "${jobs[@]}" \
    | timeout "$LIMIT_TABLE" xargs -P "$TABLE_PROCS" -L 1 bash -c \
      'eval "TABLE_ARGS=($TABLE_ARGS_STR)"; table_run "$@"' table_run
  rc=$?
  echo "== table: runs ended, exit $rc" | tee -a "$LOG"
  for d in "$OUT"/table_runs/*/; do [[ -f $d/results.json ]] && dirs+=("$d"); done
  if ((${#dirs[@]})); then
    part "table merge" 120 python3 scripts/bench_nerf.py "${TABLE_ARGS[@]}" --device "$DEVICE" --archs $TABLE_ARCHS \
      --tuned-table "$OUT/table/tuned_lrs.json" --seeds $TABLE_SEEDS --table-only --merge "${dirs[@]}" \
      --output "$OUT/table" --work "$WORK/table/merge"
  fi
  tar czf "$OUT/table.tgz" -C "$OUT" --exclude=work table table_runs
  if [[ $rc != 0 ]]; then FAILED=$((FAILED + 1)); fi
}

if want nerf; then nerf_part nerf "$LIMIT_NERF" "${NERF_ARGS[@]}"; fi
if want ngp; then nerf_part ngp "$LIMIT_NGP" "${NGP_ARGS[@]}"; fi
LONG_PID=""
if want long && [[ ${LONG_BESIDE:-0} == 1 ]]; then
  install_wheels  # once, before the parts that run beside each other
  long_part & LONG_PID=$!
elif want long; then long_part; fi
if want tune; then tune_part; fi
if want table; then table_part; fi
if [[ -n $LONG_PID ]]; then wait "$LONG_PID" || FAILED=$((FAILED + 1)); fi  # its own count is its subshell's
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' '); failed parts: $FAILED" | tee -a "$LOG"
exit "$FAILED"
