"""On a CUDA device only (skipped elsewhere; benchmark/gpu_check.sh runs them on a GPU): samples whose copies to the GPU
are still waiting keep their frames, and a short real run of each script with --compile and with --cudagraphs trains
and logs. tests/test_compile.py holds the CUDA cases of the compiled update's numbers."""

import math

import numpy as np
import pytest
import torch
from conftest import read_scalars, run, run_dir

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (benchmark/gpu_check.sh, on a GPU)")


def test_atari_samples_whose_copies_still_wait_keep_their_frames(atari):
    """Several samples in one loop step (--num-envs above --update-frequency), none waited for: each must get its own
    pinned block while the copy out of another is still queued on the GPU."""
    envs = atari.make_vector_env(atari.Args(env_id="BreakoutNoFrameskip-v4", num_envs=2))
    rb = atari.FrameReplayBuffer(400, 2, torch.device("cuda"))
    obs, _ = envs.reset(seed=0)
    rb.reset(obs)
    rng = np.random.default_rng(0)
    for _ in range(150):
        actions = rng.integers(4, size=2)
        next_obs, rewards, terminations, truncations, real_next_obs, _ = atari.step_envs(envs, actions)
        rb.add(actions, rewards, terminations, real_next_obs, next_obs, terminations | truncations)
    on_cpu = atari.FrameReplayBuffer(400, 2, torch.device("cpu"))
    on_cpu.load_state_dict(rb.state_dict())
    draws = [rb.sample_slots(64) for _ in range(4)]
    torch.cuda._sleep(2_000_000_000)  # about a second of GPU clock: the copies below queue behind it
    batches = [rb.gather(*draw) for draw in draws]
    torch.cuda.synchronize()
    for draw, batch in zip(draws, batches, strict=True):
        for got, expected in zip(batch, on_cpu.gather(*draw), strict=True):
            assert torch.equal(got.cpu(), expected)
    assert len(rb.pinned) == 4  # one block per sample in flight


# Hopper-v5 2,000 steps (learning from 1,000); Breakout 3,000 (learning from 2,000, 8 sub-envs: 2 updates per loop step)
RUNS = {
    "sac_continuous_action": ["--env-id", "Hopper-v5", "--total-timesteps", "2000", "--learning-starts", "1000"],
    "sac_v1_value": ["--env-id", "Hopper-v5", "--total-timesteps", "2000", "--learning-starts", "1000"],
    "sac_discrete_atari": ["--env-id", "BreakoutNoFrameskip-v4", "--total-timesteps", "3000", "--learning-starts",
                           "2000", "--num-envs", "8", "--buffer-size", "20000"],
}  # fmt: skip


@pytest.mark.parametrize("mode", ["--compile", "--cudagraphs"])
def test_a_short_run_on_cuda_trains_and_logs(any_script, mode, tmp_path):
    flags = [*RUNS[any_script], "--eval-frequency", "1000", "--eval-episodes", "2", "--cuda", "--threads", "2", mode]
    result = run(any_script, *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " on cuda " in result.stdout and " compiled in " in result.stdout
    assert "is not one graph" not in result.stdout and "runs eagerly" not in result.stdout
    scalars = read_scalars(run_dir(tmp_path))
    last = int(RUNS[any_script][3])
    assert scalars["losses/qf_loss"][-1][0] == last
    assert all(math.isfinite(value) for tag in ["losses/qf_loss", "losses/actor_loss"] for _, value in scalars[tag])
    assert scalars["eval/episodic_return"][-1][0] == last and len(scalars["charts/SPS"]) >= 10
