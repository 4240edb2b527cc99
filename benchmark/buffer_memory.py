"""The memory of sac_discrete_atari.py's replay buffer: bytes per transition, and the peak memory of a process that
holds the script's networks, optimizer and environments and a buffer of --buffer-size transitions, filled.

    python benchmark/buffer_memory.py --buffer-size 1000000 [--checkpoint-dir DIR]

The buffer is filled with a real Breakout rollout through its own add() for --real-steps steps; the rest of it is then
written slot by slot in large blocks (every byte touched, as a full buffer would be), and the process's peak
resident memory (ru_maxrss) is read before and after. With --checkpoint-dir, the script's own save_checkpoint then
writes the full buffer, networks and optimizer there, and load_checkpoint and restore_checkpoint read it back into the
same buffer: each is timed, with the peak memory after each (a checkpoint should cost no second buffer's memory).
"""

import argparse
import importlib
import os
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB


def resident_gb() -> float:
    """The process's resident memory now (the peak above may come from an earlier moment)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def anonymous_gb() -> float:
    """The process's own memory now, less the files it maps (a checkpoint read through a memory map is the kernel's
    page cache: it counts as resident, but the kernel can drop it at any time)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) * 1024 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buffer-size", type=int, default=1_000_000)
    parser.add_argument("--real-steps", type=int, default=5_000)
    parser.add_argument("--env-id", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--checkpoint-dir", help="also time writing and reading a checkpoint of the full buffer here")
    args = parser.parse_args()
    atari = importlib.import_module("sac_discrete_atari")
    atari.check_memory(args.buffer_size)
    torch.set_num_threads(1)
    envs = atari.make_vector_env(atari.Args(env_id=args.env_id))
    n_actions = envs.single_action_space.n
    agent = atari.make_agent(atari.Args(env_id=args.env_id), n_actions, torch.device("cpu"))  # Adam's moments too
    rb = atari.FrameReplayBuffer(args.buffer_size, 1, torch.device("cpu"))
    print(f"before the buffer is written: resident {resident_gb():.2f} GB (torch, the networks, the envs)")

    start, rng = time.time(), np.random.default_rng(0)
    obs, _ = envs.reset(seed=0)
    rb.reset(obs)
    for _ in range(args.real_steps):
        actions = rng.integers(n_actions, size=1)
        step = atari.step_envs(envs, actions)
        rb.add(actions, step.rewards, step.terminations, step.real_next_obs, step.next_obs,
               step.terminations | step.truncations)  # fmt: skip
        obs = step.next_obs
    # The rest of the rings, written as add() would write them: a frame, an action, a reward, a flag per slot.
    block = 50_000
    for first in range(rb.written, rb.slots, block):
        last = min(first + block, rb.slots)
        rb.frames[0, first:last] = torch.from_numpy(obs[0, -1]).expand(last - first, -1, -1)
        for store in (rb.actions, rb.rewards, rb.terminations, rb.age, rb.starts):
            store[0, first:last] = 1
    rb.written = rb.slots
    batch = rb.sample(64)
    assert batch.obs.shape == (64, 4, 84, 84)
    stored = sum(t.nbytes for t in (rb.frames, rb.actions, rb.rewards, rb.terminations, rb.age, rb.starts))
    print(f"buffer of {args.buffer_size:,} transitions: {stored / args.buffer_size:,.0f} bytes per transition, "
          f"{stored / 1e9:.2f} GB; filled in {time.time() - start:.0f} s")  # fmt: skip
    print(
        f"with the buffer full: resident {resident_gb():.2f} GB, peak resident memory of the process {peak_gb():.2f} GB"
    )
    stacks = args.buffer_size * 2 * 4 * 84 * 84
    print(
        f"(storing obs and next_obs as stacks of 4, CleanRL's layout, would need {stacks / 1e9:.1f} GB for the frames)"
    )
    if args.checkpoint_dir:
        time_checkpoint(atari, args, agent, rb, envs, obs)


def time_checkpoint(atari, args, agent, rb, envs, obs) -> None:
    from torch.utils.tensorboard import SummaryWriter

    # What save_checkpoint and restore_checkpoint read of a Run, without a run directory of its own under runs/.
    writer = SummaryWriter(args.checkpoint_dir)
    run = SimpleNamespace(args=atari.Args(env_id=args.env_id, buffer_size=args.buffer_size, checkpoint_frequency=1),
                          name="buffer_memory", dir=args.checkpoint_dir, device=torch.device("cpu"), writer=writer,
                          log=atari.RunLog(writer))  # fmt: skip
    state = atari.TrainState(agent, obs, global_step=1)
    start = time.time()
    atari.save_checkpoint(run, state, rb, envs)
    size = os.path.getsize(os.path.join(args.checkpoint_dir, "checkpoint.pt"))
    print(f"checkpoint of the full buffer: {size / 1e9:.2f} GB written and synced in {time.time() - start:.1f} s; "
          f"peak resident memory now {peak_gb():.2f} GB")  # fmt: skip
    start, before = time.time(), anonymous_gb()
    _, checkpoint = atari.load_checkpoint(atari.Args(resume=args.checkpoint_dir))
    loaded = time.time()
    atari.restore_checkpoint(checkpoint, run, state, rb, envs)
    restored = time.time()
    print(f"resume: loaded and checked in {loaded - start:.1f} s, restored into the buffer in {restored - loaded:.1f} "
          f"s; the process's own (anonymous) memory {before:.2f} GB before, {anonymous_gb():.2f} GB after")  # fmt: skip


if __name__ == "__main__":
    main()
