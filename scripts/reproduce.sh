#!/usr/bin/env bash
# Regenerates every figure and number quoted in README.md, report.md and PERF.md from the code
# at HEAD, and says which commit, build and CPU produced them.
#
#   scripts/reproduce.sh [STAGE...]     stages: info scan train hessian curvature perf scaling copy
#                                       (default: all of them, in that order)
#
# Environment:
#   OUT=DIR            where runs, logs and summary.md go (default: target/reproduce)
#   FERROGRAD_DATA=DIR a folder holding mnist/ (and optionally fashion-mnist/, cifar10/); see
#                      README "Datasets". Fashion-MNIST is also found in /usr/share/datasets.
#   SCAN_DATASETS, SCAN_LRS, SCAN_BATCHES, SCAN_WDS, SCAN_SEEDS: the grid of the defaults scan
#                      (report.md §3), chosen on validation accuracy only.
#   NO_BUILD=1         use the binaries a previous run built (target/release/ferrograd-*).
#
# Needs: libopenblas-dev, python3 (to read the JSON results), GNU time (/usr/bin/time).
# Took about 70 minutes on the 2-core development machine (AMD EPYC): `scan` 45, the rest 23.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-target/reproduce}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGES=${*:-info scan train hessian curvature perf scaling copy}
BLAS=target/release/ferrograd-openblas
PURE=target/release/ferrograd-matrixmultiply

log() { printf '\n== %s ==\n' "$*" | tee -a "$OUT/summary.md"; }
# Runs a command, keeping its output in $OUT/logs/<name>.log and its time and peak memory.
run() {
  local name=$1
  shift
  mkdir -p "$OUT/logs"
  echo "\$ $*" | tee -a "$OUT/summary.md"
  local status=0
  /usr/bin/time -f "%e s elapsed, %M KB peak" -o "$OUT/logs/$name.time" "$@" \
    > "$OUT/logs/$name.log" 2> "$OUT/logs/$name.err" || status=$?
  echo "  ($(tr '\n' ' ' < "$OUT/logs/$name.time"))" | tee -a "$OUT/summary.md"
  return $status
}

build() {
  cargo build --release --features openblas
  cp target/release/ferrograd "$BLAS"
  cargo build --release
  cp target/release/ferrograd "$PURE"
}

stage_info() {
  log "machine and build"
  {
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . || echo ' (with uncommitted changes)')"
    echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
    echo "cpu id: family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 -E '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes timings noisy)"
  } | tee -a "$OUT/summary.md"
  "$BLAS" info | tee -a "$OUT/summary.md"
  "$PURE" info | grep -E '^(features|blas)' | sed 's/^/matrixmultiply build: /' | tee -a "$OUT/summary.md" || true
}

# The defaults scan of report.md §3: every combination on every dataset, judged on the final
# validation accuracy only (the test set decides nothing).
stage_scan() {
  log "defaults scan on validation accuracy"
  local d lr b wd seed dir
  for d in ${SCAN_DATASETS:-mnist fashion digits}; do
    for lr in ${SCAN_LRS:-0.02 0.03 0.05 0.1}; do
      for b in ${SCAN_BATCHES:-16 32 64}; do
        for wd in ${SCAN_WDS:-0 5e-4}; do
          for seed in ${SCAN_SEEDS:-42}; do
            dir="$OUT/scan/${d}_lr${lr}_b${b}_wd${wd}_s${seed}"
            [ -f "$dir/results/results_relu_$d.json" ] || [ -f "$dir/diverged" ] && continue
            # A learning rate too large for a dataset diverges (ferrograd stops and exits 1):
            # a result of the scan, kept as such, not a reason to stop it.
            run "scan_$(basename "$dir")" "$BLAS" train --dataset "$d" --lr "$lr" \
              --batch-size "$b" --weight-decay "$wd" --seed "$seed" --out "$dir" \
              || { mkdir -p "$dir" && tail -n 1 "$OUT/logs/scan_$(basename "$dir").err" | tee "$dir/diverged"; }
          done
        done
      done
    done
  done
  python3 - "$OUT/scan" <<'EOF' | tee -a "$OUT/summary.md"
import json, pathlib, statistics, sys
from collections import defaultdict
runs = defaultdict(dict)
for f in pathlib.Path(sys.argv[1]).glob("*/results/*.json"):
    r = json.loads(f.read_text())
    c = r["config"]
    key = (c["lr"], c["batch_size"], c["weight_decay"])
    runs[key].setdefault(c["dataset"], []).append(r["epochs"][-1]["val_accuracy"])
# A diverged run counts as 0% validation accuracy: the configuration cannot be the default.
for f in pathlib.Path(sys.argv[1]).glob("*/diverged"):
    d, lr, b, wd, _ = f.parent.name.split("_")
    key = (float(lr[2:]), int(b[1:]), float(wd[2:]))
    runs[key].setdefault(d, []).append(0.0)
datasets = sorted({d for v in runs.values() for d in v})
rows = []
for key, by in runs.items():
    if set(by) != set(datasets):
        continue
    means = [statistics.mean(by[d]) for d in datasets]
    rows.append((statistics.mean(means), key, means))
rows.sort(reverse=True)
print("| lr | batch | weight decay | " + " | ".join(f"val acc {d}" for d in datasets) + " | mean |")
print("|---|---|---|" + "---|" * (len(datasets) + 1))
for mean, (lr, b, wd), means in rows:
    cells = [f"{100*m:.2f}%" if m > 0 else "diverged" for m in means]
    print(f"| {lr} | {b} | {wd} | " + " | ".join(cells) + f" | {100*mean:.2f}% |")
if rows:
    print(f"\nbest on validation accuracy: lr {rows[0][1][0]}, batch {rows[0][1][1]}, weight decay {rows[0][1][2]}")
EOF
}

# report.md §3's table and figures, README's accuracies.
stage_train() {
  log "training runs (report.md §3, README)"
  local d a
  for d in mnist fashion digits; do
    run "train_relu_$d" "$BLAS" train --dataset "$d" --epochs 20 --out "$OUT/runs"
    run "compare_$d" "$BLAS" compare --dataset "$d" --epochs 20 --out "$OUT/runs"
    run "train_sigmoid_$d" "$BLAS" train --dataset "$d" --epochs 20 --activation sigmoid \
      --out "$OUT/runs"
    # compare overwrote the ReLU run with the same settings (and the same result); the ReLU
    # model file the other stages use is this one.
  done
  run predict_relu_fashion "$BLAS" predict --model "$OUT/runs/models/model_relu_fashion.msgpack" \
    --json --out "$OUT/runs"
  run predict_mistakes_fashion "$BLAS" predict \
    --model "$OUT/runs/models/model_relu_fashion.msgpack" --mistakes --show-examples 100 \
    --out "$OUT/mistakes"
  python3 - "$OUT/runs/results" <<'EOF' | tee -a "$OUT/summary.md"
import json, pathlib, sys
print("| dataset | activation | train acc | val acc | test acc | test loss | best epoch (val) | seconds |")
print("|---|---|---|---|---|---|---|---|")
for f in sorted(pathlib.Path(sys.argv[1]).glob("results_*.json")):
    r = json.loads(f.read_text())
    c, last, fin = r["config"], r["epochs"][-1], r["final"]
    print(f"| {c['dataset']} | {c['activation']} | {100*last['train_accuracy']:.2f}% | "
          f"{100*last['val_accuracy']:.2f}% | {100*fin['test_accuracy']:.2f}% | "
          f"{fin['test_loss']:.4f} | {r['best_epoch']} | {fin['train_seconds']:.1f} |")
EOF
  "$BLAS" predict --model "$OUT/runs/models/model_relu_fashion.msgpack" --out "$OUT/runs" \
    2>/dev/null | sed -n '/per-class/,/^$/p' | tee -a "$OUT/summary.md"
  run peak_memory_mnist "$BLAS" train --dataset mnist --epochs 1 --out "$OUT/memory"
}

# report.md §4 and PERF.md's Hessian-vector product table.
stage_hessian() {
  log "Hessian spectra (report.md §4, PERF.md)"
  local a m
  for a in relu tanh sigmoid; do
    m="$OUT/runs/models/model_${a}_fashion.msgpack"
    run "hessian_topk_$a" "$BLAS" analyze hessian --model "$m" --top-k 10 --out "$OUT/runs"
    run "hessian_all_$a" "$BLAS" analyze hessian --model "$m" --top-k 10 --all --iters 300 \
      --json --out "$OUT/runs"
  done
  run hessian_mnist_relu "$BLAS" analyze hessian --model "$OUT/runs/models/model_relu_mnist.msgpack" \
    --top-k 10 --trace --out "$OUT/runs"
  cat "$OUT"/logs/hessian_topk_*.log "$OUT"/logs/hessian_mnist_relu.log | tee -a "$OUT/summary.md"
}

# report.md §4b: λ_max through training (full-batch GD at three learning rates and an SGD
# contrast, on the first 5,000 MNIST images), and the Hessian against its Gauss–Newton part on
# the trained MNIST model of stage train.
stage_curvature() {
  log "curvature through training (report.md §4b)"
  local lr common
  common=(--dataset mnist --train-samples 5000 --val-fraction 0 --momentum 0 --weight-decay 0
    --schedule constant --curvature-every-steps 20 --curvature-samples 5000)
  for lr in 0.1 0.2 0.4; do
    run "eos_gd_$lr" "$BLAS" train "${common[@]}" --batch-size 5000 --lr "$lr" --epochs 1000 \
      --out "$OUT/eos/gd_$lr"
  done
  run eos_sgd32_0.1 "$BLAS" train "${common[@]}" --batch-size 32 --lr 0.1 --epochs 7 \
    --out "$OUT/eos/sgd32_0.1"
  python3 - "$OUT/eos" <<'EOF2' | tee -a "$OUT/summary.md"
import json, pathlib, sys
print("| run | 2/η | λ_max at start | first ≥ 0.9·2/η | peak (step) | λ_max, steps 220–500 | last λ_max (step) | final train loss | test acc. | points | products per point (median) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for d in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    r = json.loads(next((d / "results").glob("*.json")).read_text())
    pts, lr = r["curvature"], r["config"]["lr"]
    limit = 2 / lr
    lam = [(p["step"], p["lambda_max"]) for p in pts]
    first = next((s for s, l in lam if l >= 0.9 * limit), None)
    peak = max(lam, key=lambda x: x[1])
    mid = [l for s, l in lam if 220 <= s <= 500]
    its = sorted(p["hvps"] for p in pts)
    edge = f"{min(mid):.1f}–{max(mid):.1f}" if mid else "—"
    print(f"| {d.name} | {limit:g} | {lam[0][1]:.2f} | step {first} | {peak[1]:.1f} ({peak[0]}) | "
          f"{edge} | {lam[-1][1]:.2f} ({lam[-1][0]}) | "
          f"{r['epochs'][-1]['train_loss']:.4f} | {100 * r['final']['test_accuracy']:.2f}% | "
          f"{len(pts)} | {its[len(its) // 2]} |")
EOF2
  run hessian_ggn_mnist "$BLAS" analyze hessian --model "$OUT/runs/models/model_relu_mnist.msgpack" \
    --ggn --top-k 20 --samples 2000 --out "$OUT/ggn"
  cat "$OUT/logs/hessian_ggn_mnist.log" | tee -a "$OUT/summary.md"
}

# PERF.md and README's speed figures.
stage_perf() {
  log "analyze performance (PERF.md, README)"
  local b
  for b in 32 64 128 256 512; do
    run "performance_b$b" "$BLAS" analyze performance --dataset fashion --batch-size "$b" \
      --epochs 20 --json
  done
  run performance_matrixmultiply "$PURE" analyze performance --dataset fashion --batch-size 128 \
    --epochs 20 --json
  python3 - "$OUT/logs" <<'EOF2' | tee -a "$OUT/summary.md"
import json, pathlib, statistics, sys
logs = pathlib.Path(sys.argv[1])
print("| build | batch | autograd epoch | hand-written epoch | GEMM floor | floor ratio (epochs' IQR) | hand-written / floor | autograd / hand-written | floor GFLOP/s (share of peak) | core |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name in ["performance_b32", "performance_b64", "performance_b128", "performance_b256",
             "performance_b512", "performance_matrixmultiply"]:
    r = json.loads((logs / f"{name}.log").read_text())
    fr = sorted(a / f for a, f in zip(r["epoch_seconds"], r["gemm_floor_epoch_seconds"]))
    q = statistics.quantiles(fr, n=4)
    hf = statistics.median(h / f for h, f in zip(r["handwritten_epoch_seconds"], r["gemm_floor_epoch_seconds"]))
    c = r["blas_core"]
    print(f"| {r['blas']} | {r['batch_size']} | {r['epoch_seconds_median']:.3f} s | "
          f"{r['handwritten_epoch_seconds_median']:.3f} s | {r['gemm_floor_seconds']:.3f} s | "
          f"**{r['floor_ratio']:.3f}** ({q[0]:.2f}–{q[2]:.2f}) | {hf:.3f} | {r['ratio']:.3f} | "
          f"{r['floor_gflops']:.1f} ({100 * r['floor_fraction_of_peak']:.0f}% of {r['cpu_peak']['gflops']:.1f}) | "
          f"{c['core']} ({c['source']}) |")
r = json.loads((logs / "performance_b128.log").read_text())
print("\nbatch 128, phases (median s/epoch):", {k: round(v, 4) for k, v in r["phases"].items()})
print("batch 128, ops of one profiled epoch:")
for o in r["ops"]:
    print(f"  {o['op']}: {o['calls']} calls, {o['seconds']:.4f} s")
print("batch 128, GEMM rates (in training / plain):")
for g in r["gemm"]:
    print(f"  {g['shape']}: {g['calls']} calls, {g['gflops_in_training']:.1f} / {g['gflops_plain_gemm']:.1f} GFLOP/s")
EOF2
  log "criterion benches (PERF.md, README 'Parallel threshold')"
  cargo bench --bench ops -- kernels 2>&1 | tee "$OUT/logs/bench_ops.log" | grep -E "time:" \
    | tee -a "$OUT/summary.md" || true
  cargo bench --features openblas --bench training 2>&1 | tee "$OUT/logs/bench_training.log" \
    | grep -E "time:|alloc" | tee -a "$OUT/summary.md" || true
}

stage_scaling() {
  log "analyze scaling (PERF.md, report.md)"
  run scaling_openblas "$BLAS" analyze scaling --out "$OUT/runs"
  run scaling_matrixmultiply "$PURE" analyze scaling --out "$OUT/runs"
  grep -h "α" "$OUT"/logs/scaling_*.log | tee -a "$OUT/summary.md" || true
}

# The figures the documents show, from this run, into artifacts/report/.
stage_copy() {
  log "figures copied into artifacts/report/"
  local f
  for f in loss_curves_relu_mnist accuracy_curves_relu_mnist lr_schedule_relu_mnist \
    compare_val_accuracy_mnist compare_val_accuracy_fashion compare_train_loss_fashion \
    overfitting_gap_relu_fashion hessian_density_relu_fashion hessian_density_tanh_fashion \
    hessian_top_k_relu_fashion hessian_top_k_tanh_fashion hessian_extremes_relu_fashion \
    hessian_extremes_tanh_fashion scaling_batch_openblas scaling_width_openblas \
    scaling_depth_openblas scaling_batch_matrixmultiply scaling_width_matrixmultiply \
    scaling_depth_matrixmultiply; do
    cp -v "$OUT/runs/plots/$f.png" artifacts/report/ | tee -a "$OUT/summary.md"
  done
  for f in sample_predictions_relu_fashion sample_predictions_relu_mnist; do
    cp -v "$OUT/runs/predicted_images/$f.png" artifacts/report/ | tee -a "$OUT/summary.md"
  done
  cp -v "$OUT"/runs/results/scaling_*.json artifacts/report/ | tee -a "$OUT/summary.md"
  cp -v "$OUT/ggn/plots/hessian_top_k_relu_mnist.png" artifacts/report/hessian_vs_ggn_top_k_relu_mnist.png \
    | tee -a "$OUT/summary.md"
  for f in gd_0.1 gd_0.2 gd_0.4 sgd32_0.1; do
    cp -v "$OUT/eos/$f/plots/sharpness_relu_mnist.png" "artifacts/report/eos_sharpness_$f.png" \
      | tee -a "$OUT/summary.md"
  done
}

[ "${NO_BUILD:-}" = 1 ] || build
for s in $STAGES; do
  "stage_$s"
done
echo
echo "summary: $OUT/summary.md (commit $(git rev-parse --short=12 HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
