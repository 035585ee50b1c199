#!/usr/bin/env bash
# Train on N processes: tools/dist_train.sh CONFIG N [ARGS...]
# Runs torch.distributed.run (torchrun) with $PYTHON (default: python),
# so no torchrun on PATH is needed: PYTHON=.venv/bin/python works from a
# virtual environment that is not activated.
set -euo pipefail
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
"${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
