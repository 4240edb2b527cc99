#!/usr/bin/env bash
# SAC v2 (sac_continuous_action.py) on DeepMind Control Suite tasks from their state vectors, through Shimmy:
# cartpole swingup, reacher hard, cheetah run, walker run and humanoid walk, 3 seeds of 500,000 steps each (the
# state-based SAC rows of the pixel-RL papers are at 100,000 and 500,000 steps).
#   ENVS="dm_control/cartpole-swingup-v0" SEEDS="1 2 3" STEPS=100000 benchmark/sac_dmc.sh
# The arguments go to benchmark/launch.py (--dry-run, --out DIR, --slurm, ...).
exec python "$(dirname "$0")/launch.py" sac_continuous_action.py \
    --envs dm_control/cartpole-swingup-v0 dm_control/reacher-hard-v0 dm_control/cheetah-run-v0 \
           dm_control/walker-run-v0 dm_control/humanoid-walk-v0 \
    --seeds 1 2 3 --steps 500000 "$@"
