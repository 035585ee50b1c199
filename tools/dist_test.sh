#!/usr/bin/env bash
# Test on N processes: tools/dist_test.sh CONFIG CHECKPOINT|none N [ARGS...]
# ('none' for a training-free model). Uses torchrun; gloo on CPU, nccl on GPU.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
PORT=${PORT:-29500}
CKPT_ARG=()
[ "$CHECKPOINT" != "none" ] && CKPT_ARG=("$CHECKPOINT")
torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/test.py" "$CONFIG" "${CKPT_ARG[@]}" --launcher pytorch "${@:4}"
