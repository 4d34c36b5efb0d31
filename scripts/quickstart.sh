#!/usr/bin/env bash
# README command 1: set up .venv, make a small dSprites replica under data/, train configs/quickstart.yaml on CPU,
# evaluate on the held-out split and print the metric table (about two minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup_env.sh
. "${DISCO_VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" WANDB_SILENT=true
DATA=data/dsprites_quick.h5
if [ ! -f "$DATA" ]; then
  echo "making the quickstart dSprites replica $DATA ..."
  disco data make dsprites --out "$DATA" --subsample scale=2 --subsample orientation=4 --subsample pos_x=2 --subsample pos_y=2
fi
disco train --config configs/quickstart.yaml --data.dataset "$DATA" --overwrite true "$@"
echo "quickstart finished in $(( $(date +%s) - start )) s"
