#!/usr/bin/env bash
# Produces the ART results table: seeds 0-2 of each model given (default: all), one run at a time on
# one CPU thread, then the table (results/art/table.md). Finished runs are skipped.
# Epoch budgets:
#   STPN and m-STPN: at most 20 epochs, early stopping after 5 epochs without a better val accuracy;
#   LSTM and RNN: at most 50 epochs, early stopping after 10 epochs without a better val accuracy.
# Usage (repository root):  nohup results/art/run_all.sh [MODEL ...] > results/art/run_all.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
MSTPN=${MSTPN:-.venv/bin/mstpn}
declare -A EPOCHS=([stpn]=20 [mstpn]=20 [lstm]=50 [rnn]=50)
declare -A PATIENCE=([stpn]=5 [mstpn]=5 [lstm]=10 [rnn]=10)
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(stpn mstpn lstm rnn)
for model in "${models[@]}"; do
    for seed in 0 1 2; do
        out="results/art/${model}_seed${seed}.json"
        if [ -f "$out" ] && grep -q '"stopped_early": true\|"epochs_run": '"${EPOCHS[$model]}"',' "$out"; then
            echo "skip $out (finished)"; continue
        fi
        "$MSTPN" art --model "$model" --epochs "${EPOCHS[$model]}" --patience "${PATIENCE[$model]}" \
            --seed "$seed" --threads 1 --no-progress --json "$out"
    done
done
"$MSTPN" art-table results/art --out results/art/table.md
