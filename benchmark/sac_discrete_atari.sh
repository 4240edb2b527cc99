#!/usr/bin/env bash
# SAC-Discrete (sac_discrete_atari.py, arXiv 1910.07207) on Pong, Breakout and BeamRider (no sticky actions):
# 3 seeds of 5,000,000 steps each (the script's defaults; the paper's own budget was 100,000).
#   ENVS="BreakoutNoFrameskip-v4" SEEDS="1" STEPS=100000 benchmark/sac_discrete_atari.sh
# The arguments go to benchmark/launch.py (--dry-run, --out DIR, ...).
exec python "$(dirname "$0")/launch.py" sac_discrete_atari.py \
    --envs PongNoFrameskip-v4 BreakoutNoFrameskip-v4 BeamRiderNoFrameskip-v4 \
    --seeds 1 2 3 --steps 5000000 "$@"
