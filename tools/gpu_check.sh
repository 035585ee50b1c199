#!/usr/bin/env bash
# Every GPU check in one call, for a session that is lent a GPU (its device
# time is short): the CUDA tests, the GPU benchmark sweep (BLIP-large at
# 512 px, bf16; batch 1 8 32 64; P = 21 49 171), P = 21 at batch 64 with
# compile=dict(mode='reduce-overhead') (CUDA graphs), and the whole-dataset run
# (tools/test.py's path over 1,449 generated VOC-sized JPEGs), each with its
# own time limit, everything written under OUT (default work_dirs/gpu_check):
#
#     bash tools/gpu_check.sh [OUT]
#
# OUT/summary.txt lists each step's exit status and seconds; the logs and
# the benchmarks' JSON/Markdown sit beside it. A step that fails or runs out
# of time does not stop the others. About 8 minutes on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-work_dirs/gpu_check}"
PYTHON="${PYTHON:-python}"
mkdir -p "$OUT"
: > "$OUT/summary.txt"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "$name rc=$rc seconds=$(( $(date +%s) - start ))" | tee -a "$OUT/summary.txt"
}

step test_cuda 100 "$PYTHON" -m pytest -q tests/test_cuda.py
step sweep 180 "$PYTHON" tools/benchmark.py --device cuda --amp bf16 \
    --vlm large --size 512 --prompts 21 49 171 --batch 1 8 32 64 \
    --modes attention --repeat 3 --out "$OUT/sweep"
step compiled 100 "$PYTHON" tools/benchmark.py --device cuda --amp bf16 \
    --compile reduce-overhead --vlm large --size 512 --prompts 21 \
    --batch 64 --modes attention --repeat 3 --out "$OUT/compiled"
step dataset 100 "$PYTHON" tools/benchmark.py --dataset --device cuda \
    --amp bf16 --vlm large --num-images 1449 --batch 32 --workers 8 \
    --repeat 3 --out "$OUT/dataset"
