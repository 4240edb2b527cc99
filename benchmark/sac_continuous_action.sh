#!/usr/bin/env bash
# SAC v2 (sac_continuous_action.py) on the MuJoCo v5 tasks of arXiv 1812.05905, and InvertedPendulum: 3 seeds of
# 1,000,000 steps each, with the script's defaults (the published hyperparameters).
#   ENVS="Hopper-v5" SEEDS="1 2" STEPS=100000 WORKERS=2 EXTRA_ARGS="--checkpoint-frequency 50000" benchmark/sac_continuous_action.sh
# The arguments go to benchmark/launch.py (--dry-run, --out DIR, ...).
exec python "$(dirname "$0")/launch.py" sac_continuous_action.py \
    --envs Hopper-v5 Walker2d-v5 HalfCheetah-v5 Ant-v5 Humanoid-v5 InvertedPendulum-v5 \
    --seeds 1 2 3 --steps 1000000 "$@"
