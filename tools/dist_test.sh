#!/usr/bin/env bash
# Test on N processes: tools/dist_test.sh CONFIG CHECKPOINT|none N [ARGS...]
# ('none' for a training-free model). Runs torch.distributed.run (torchrun)
# with this Python (PYTHON overrides; no torchrun on PATH needed); gloo on
# CPU, nccl on GPU.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
PORT=${PORT:-29500}
CKPT_ARG=()
[ "$CHECKPOINT" != "none" ] && CKPT_ARG=("$CHECKPOINT")
"${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/test.py" "$CONFIG" "${CKPT_ARG[@]}" --launcher pytorch "${@:4}"
