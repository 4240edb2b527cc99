"""Soft Actor-Critic for discrete actions (SAC-Discrete) on Atari, in one file.

Follows "Soft Actor-Critic for Discrete Action Settings" (Christodoulou, arXiv 1910.07207), which carries
SAC v2 (arXiv 1812.05905) over to a finite action set: a categorical policy pi_phi(.|s) over the |A| actions,
twin soft Q-functions Q_theta1, Q_theta2 that output Q(s, .) for every action at once, with target copies,
and an automatically tuned temperature alpha. Because the action set is finite, every expectation over
actions is computed exactly, as a sum weighted by pi(.|s), instead of from a sampled action.

Each network reads the last 4 frames (84x84 grayscale) through its own Nature-DQN CNN encoder (Mnih et al.
2015). The Atari preprocessing is the standard one (Machado et al., arXiv 1709.06009, lists it): no-op starts,
max-and-skip 4, a lost life ends a training episode, FIRE at the start where the game needs it, rewards
clipped to [-1, 1] for training. The logged returns are real game scores: whole games, all lives, unclipped.

The replay buffer stores each 84x84 frame once (uint8, ~7 KB per transition) and rebuilds the stacks of 4
when it samples, so 1,000,000 transitions fit in ~7.1 GB instead of the ~53 GB of stored stacks.

Run:  python sac_discrete_atari.py --env-id BeamRiderNoFrameskip-v4 --seed 1      (all flags: --help)
      The first updates wait for torch.compile (20-60 s, printed); --no-compile runs the same update eagerly.
Logs: TensorBoard under runs/{env_id}__{exp_name}__{seed}__{time}/ (tensorboard --logdir runs):
      charts/ (score and length of every finished game, SPS), eval/ (whole games, greedy with 1% random actions),
      losses/ (critic and actor losses, Q values, alpha, policy entropy), written every 100 environment steps.
"""

import functools
import gc
import importlib.metadata
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zlib
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import ale_py
import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter

gym.register_envs(ale_py)  # the ALE ids (BreakoutNoFrameskip-v4, ALE/Breakout-v5, ...); ale-py ships the ROMs
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Warning)  # no banner from each new emulator; warnings still show


# The flags. Each field's help is what --help prints; one longer than a line is one string in parentheses (its pieces
# join into one), since a docstring's line breaks would be printed as they are.
@dataclass
class Algorithm:
    """SAC's hyperparameters, and the environment and budget it learns on"""

    env_id: str = "BeamRiderNoFrameskip-v4"
    """gymnasium id of an Atari game: *NoFrameskip-v4 (no sticky actions) or ALE/*-v5 (sticky actions)"""
    total_timesteps: int = 5_000_000
    """total environment steps (agent steps of 4 frames), counted over all sub-environments"""
    num_envs: int = 1
    """number of parallel sub-environments"""
    buffer_size: int = 1_000_000
    """replay buffer capacity, in frames: one per transition, plus one for the last frame of each episode"""
    gamma: float = 0.99
    """discount factor gamma"""
    tau: float = 1.0
    """target networks: theta_bar <- tau theta + (1 - tau) theta_bar (1.0: a hard copy)"""
    batch_size: int = 64
    """minibatch size of each gradient update"""
    learning_starts: int = 20_000
    """environment steps of uniformly random actions before learning starts"""
    policy_lr: float = 3e-4
    """learning rate of the policy"""
    q_lr: float = 3e-4
    """learning rate of the Q networks and of log-alpha"""
    adam_eps: float = 1e-4
    """epsilon of the Adam optimizers"""
    update_frequency: int = 4
    """make one gradient update every this many environment steps"""
    target_network_frequency: int = 8_000
    """update the target networks every this many environment steps"""
    alpha: float = 0.2
    """the fixed temperature alpha when --no-autotune (with --autotune, alpha starts at 1)"""
    autotune: bool = True
    """tune alpha automatically towards the target entropy H-bar = target_entropy_scale * log|A|"""
    target_entropy_scale: float = 0.89
    """H-bar as a fraction of log|A|, the entropy of the uniform policy (the paper's 0.98 is often unreachable)"""


@dataclass
class RunOptions:
    """how the run is made: seeds, device and speed, logging, evaluations, saved models and checkpoints"""

    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment (part of the run name)"""
    seed: int = 1
    """seed of the experiment (python, numpy, torch and the environments)"""
    torch_deterministic: bool = True
    (
        "make cuDNN choose deterministic kernels on CUDA (torch.backends.cudnn.deterministic); "
        "--no-torch-deterministic lets it take faster, nondeterministic ones"
    )
    cuda: bool = True
    """use CUDA when it is available (the CPU otherwise)"""
    threads: int = 2
    (
        "number of CPU threads torch uses for the networks. Several runs on one machine: give each cores / runs "
        "threads (--threads 1 for two runs on 2 cores); more threads than cores in all make every run crawl "
        "(docs/speed.md: Several runs on one machine)"
    )
    compile: bool = True
    (
        "torch.compile each whole update into one graph (the first updates wait for the compiler, ~20-60 s; faster "
        "from then on, see docs/speed.md); --no-compile runs the same update eagerly (to step through it in a "
        "debugger). Where it cannot compile (torch before 2.11; no C++ compiler for the CPU; on CUDA no Triton, or no "
        "C compiler for it), the update runs eagerly, with a notice; an explicit --compile is then refused"
    )
    cudagraphs: bool = False
    """on CUDA: also replay each compiled update as one CUDA graph, the optimizer steps included (implies --compile)"""
    track: bool = False
    """log the run to Weights & Biases as well (needs `pip install wandb`)"""
    wandb_project_name: str = "sac"
    """the W&B project name"""
    wandb_entity: str | None = None
    """the W&B entity (team or user)"""
    capture_video: bool = False
    """record the first game of each evaluation to videos/{run_name}/"""
    save_model: bool = False
    """save the networks, log-alpha and the args to runs/{run_name}/{exp_name}.pt at the end"""
    eval_model: str | None = None
    """path of a model saved by --save-model: evaluate it (no training) and exit"""
    eval_frequency: int = 100_000
    """evaluate the policy every this many environment steps (and at the end)"""
    eval_episodes: int = 10
    """number of whole games of each evaluation"""
    eval_greedy: bool = True
    """evaluate the greedy policy argmax_a pi(a|s); --no-eval-greedy samples a ~ pi(.|s) instead"""
    eval_epsilon: float = 0.01
    (
        "with --eval-greedy, take a uniformly random action with this probability (DQN-style evaluation): without it "
        "a greedy policy replays the same game for every equal number of no-ops at the start, and can loop forever"
    )
    checkpoint_frequency: int = 0
    """also write runs/{run_name}/checkpoint.pt every this many env steps, and at the last step (0: only on a stop)"""
    checkpoint_on_stop: bool = True
    (
        "when SIGINT (Ctrl-C) or SIGTERM stops the run, write runs/{run_name}/checkpoint.pt, from which --resume goes "
        "on exactly; a second Ctrl-C stops at once, without it"
    )
    resume: str | None = None
    """continue the run of this checkpoint (a checkpoint.pt or the run directory that holds it), exactly"""


@dataclass
class Args(RunOptions, Algorithm):
    """Every flag, as one object (args.gamma, args.seed); --help shows the two groups apart."""


# ----------------------------------------------------------------------------------------------------
# The environment: an Atari game with the standard preprocessing.
# ----------------------------------------------------------------------------------------------------
class AtariLives(gym.Wrapper):
    """Life handling. With episodic=True (training), losing a life ends the episode (terminated), and the next
    reset() continues the same game instead of starting a new one (DQN's "episodic life"): the agent learns
    that a life is worth keeping without being told the score. After a lost life, play goes on with a no-op step
    (past the frames of the loss) and, where the game needs FIRE to (re)start play, FIRE; FIRE is pressed after
    every new game's reset too (otherwise a policy trained with automatic FIRE would wait forever for a ball that
    never comes). With episodic=False (evaluation) the same automatic steps follow a lost life within step(), so
    that an evaluation game is played, and counted, as a training game is."""

    def __init__(self, env: gym.Env, episodic: bool):
        super().__init__(env)
        self.episodic, self.lives, self.game_over = episodic, 0, True
        meanings = env.unwrapped.get_action_meanings()
        self.fire = meanings.index("FIRE") if "FIRE" in meanings else None

    def reset(self, **kwargs):
        ended = None  # a game that ends inside this reset's own NOOP or FIRE step: its score goes out in the info
        if self.game_over or kwargs.get("seed") is not None:  # a seed asks for a new game, whatever came before
            obs, info = self.env.reset(**kwargs)
        else:  # a life was lost: play on with a no-op step, which also moves past the frames of the loss
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                ended, (obs, info) = info["episode"], self.env.reset(**kwargs)
        self.lives, self.game_over = self.env.unwrapped.ale.lives(), False
        if self.fire is not None:
            obs, _, terminated, truncated, info = self.env.step(self.fire)
            if terminated or truncated:
                ended, (obs, info) = info["episode"], self.env.reset(**kwargs)
        return obs, info if ended is None else {**info, "episode": ended}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        life_lost, self.lives = 0 < lives < self.lives, lives
        if life_lost and self.episodic:
            terminated = True
        elif life_lost and not self.game_over:  # evaluation: play on, with training's automatic steps
            for automatic in [0] if self.fire is None else [0, self.fire]:
                obs, more, terminated, truncated, info = self.env.step(automatic)
                reward, self.game_over = reward + more, terminated or truncated
                if self.game_over:
                    break
        return obs, reward, terminated, truncated, info


def make_env(env_id: str, train: bool = True, render: bool = False) -> gym.Env:
    """The game, 4 frames per agent step, as stacks of 4 grayscale 84x84 uint8 frames. train=True adds the
    training-only parts: a lost life ends the episode, rewards are clipped to [-1, 1]."""
    # frameskip=1: the ALE emits every frame and AtariPreprocessing skips (v5 ids skip 4 frames themselves by
    # default); v5's sticky actions (repeat_action_probability 0.25) are kept.
    env = gym.make(env_id, frameskip=1, render_mode="rgb_array" if render else None)
    # AtariPreprocessing: up to 30 no-ops at reset, repeat each action 4 frames and take the max of the last
    # two (Atari sprites flicker), then grayscale and resize to 84x84.
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
    # Placed inside the life handling, where an episode is a whole game: info["episode"] holds the game's score.
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = AtariLives(env, episodic=train)
    if train:
        env = gym.wrappers.ClipReward(env, -1.0, 1.0)
    return gym.wrappers.FrameStackObservation(env, 4, padding_type="reset")  # a new episode repeats frame 1


def make_vector_env(args: Args) -> gym.vector.VectorEnv:
    # SAME_STEP autoreset: when a sub-env's episode ends, step() already returns the first observation
    # of its next episode, and the real last observation in infos["final_obs"]. Every step is then a
    # real transition, and none spans two episodes.
    return gym.vector.SyncVectorEnv(
        [lambda: make_env(args.env_id) for _ in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


class EnvStep(NamedTuple):
    next_obs: np.ndarray  # to act on: a reset observation where an episode ended
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    real_next_obs: np.ndarray  # to store: the real last observation where an episode ended
    games: list  # the games that ended, as (sub-env, score, length)


def step_envs(envs: gym.vector.VectorEnv, actions: np.ndarray) -> EnvStep:
    """Step all sub-envs."""
    next_obs, rewards, terminations, truncations, infos = envs.step(actions)
    real_next_obs, games = next_obs.copy(), []
    for i in np.flatnonzero(infos.get("_final_obs", ())):
        real_next_obs[i] = infos["final_obs"][i]
        # A game ends in the step (not just a life: final_info), or inside the autoreset's NOOP or FIRE step after a
        # lost life (the reset's info, which infos holds for the sub-envs that were reset).
        for info in (infos["final_info"], infos):
            if info.get("_episode", np.zeros(len(rewards), bool))[i]:
                games.append((i, float(info["episode"]["r"][i]), int(info["episode"]["l"][i])))
    return EnvStep(next_obs, rewards, terminations, truncations, real_next_obs, games)


# ----------------------------------------------------------------------------------------------------
# The replay buffer D: each frame stored once, the stacks rebuilt at sample time.
# ----------------------------------------------------------------------------------------------------
class Batch(NamedTuple):
    obs: torch.Tensor  # (B, 4, 84, 84) uint8
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


class FrameReplayBuffer:
    """Each sub-env writes its own ring of `slots` frames, one frame per step: slot j holds the newest frame of
    s_t and the transition's (a_t, r_t, terminated), and slot j+1 the newest frame of s_{t+1}. Where an episode
    ends, its real last frame takes one extra slot (it starts no transition), and the next episode's first frame
    the slot after it. A stack of 4 is rebuilt from a slot and the three before it; `age` (steps since the
    episode's first frame, at most 3) says how far back it may reach: older positions repeat the episode's first
    frame, as frame stacking at reset does. So a stack never spans two episodes, and a truncated episode's last
    observation is kept for its bootstrap."""

    BYTES_PER_SLOT = 84 * 84 + 1 + 4 + 4 + 1 + 1  # frame, action, reward, termination, age, start flag
    FIELDS = ("frames", "actions", "rewards", "terminations", "age", "starts")  # the per-slot data

    def __init__(self, capacity: int, num_envs: int, device: torch.device, frame_shape=(84, 84)):
        self.slots = -(-capacity // num_envs)  # ceil: at least `capacity` frames over all sub-envs
        self.num_envs, self.device = num_envs, device
        self.frames = torch.empty((num_envs, self.slots, *frame_shape), dtype=torch.uint8)  # untouched: no RAM yet
        self.actions = torch.zeros((num_envs, self.slots), dtype=torch.uint8)  # |A| <= 18 on every Atari game
        self.rewards = torch.zeros((num_envs, self.slots))
        self.terminations = torch.zeros((num_envs, self.slots))
        self.age = torch.zeros((num_envs, self.slots), dtype=torch.int8)
        self.starts = torch.zeros((num_envs, self.slots), dtype=torch.bool)  # slot j starts a stored transition
        self.head = np.zeros(num_envs, dtype=np.int64)  # the slot of each sub-env's current observation
        self.written = 0  # slots written per sub-env so far (at most `slots` are kept)
        self.pinned = []  # on CUDA: host blocks that sampled frames are gathered into, each with its copy's event

    def _write(self, envs: np.ndarray, slots: np.ndarray, frames: np.ndarray, age) -> None:
        envs, slots = torch.as_tensor(envs), torch.as_tensor(slots % self.slots)
        self.frames[envs, slots] = torch.as_tensor(frames)
        self.age[envs, slots] = torch.as_tensor(age, dtype=torch.int8)
        # The new frame is nobody's s_t yet; and the three oldest slots after it lose the frames before them.
        for k in range(4):
            self.starts[envs, (slots + k) % self.slots] = False

    def reset(self, obs: np.ndarray) -> None:
        """The first observations (num_envs, 4, 84, 84) after envs.reset()."""
        self._write(np.arange(self.num_envs), self.head, obs[:, -1], 0)
        self.written = 1

    def add(self, actions, rewards, terminations, real_next_obs, next_obs, dones) -> None:
        """Store one step of every sub-env: s_t's slot gets (a_t, r_t, terminated), the next slot the newest frame
        of s_{t+1} (the real last one where an episode ended), and the slot after that the first frame of the
        next episode there."""
        envs, head = np.arange(self.num_envs), self.head
        self.actions[envs, head] = torch.as_tensor(actions, dtype=torch.uint8)
        self.rewards[envs, head] = torch.as_tensor(rewards, dtype=torch.float32)
        self.terminations[envs, head] = torch.as_tensor(terminations, dtype=torch.float32)
        self.starts[envs, head] = True
        self._write(envs, head + 1, real_next_obs[:, -1], torch.clamp(self.age[envs, head] + 1, max=3))
        ended = np.flatnonzero(dones)
        if len(ended):
            self._write(ended, head[ended] + 2, next_obs[ended, -1], 0)
        self.head = (head + 1 + dones) % self.slots
        self.written = min(self.written + 1 + int(dones.any()), self.slots)

    def sample(self, batch_size: int) -> Batch:
        return self.gather(*self.sample_slots(batch_size))

    def sample_slots(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniform over the stored transitions: uniform (sub-env, slot) pairs, those that start no transition
        drawn again (about 1 in 100: the episodes' last frames and the oldest few slots)."""
        envs = torch.randint(0, self.num_envs, (batch_size,))
        slots = torch.randint(0, self.written, (batch_size,))
        while not (ok := self.starts[envs, slots]).all():
            redraw = torch.nonzero(~ok).squeeze(1)
            envs[redraw] = torch.randint(0, self.num_envs, (len(redraw),))
            slots[redraw] = torch.randint(0, self.written, (len(redraw),))
        return envs, slots

    def gather(self, envs: torch.Tensor, slots: torch.Tensor) -> Batch:
        """The transitions that start at these (sub-env, slot) pairs, on the training device."""
        # The window of frames j-3 .. j+1: s_t is its first 4, s_{t+1} its last 4. Before the episode's first
        # frame (offset > age), it repeats that frame.
        age = self.age[envs, slots].unsqueeze(1)
        offsets = torch.arange(-3, 2)
        window_slots = (slots.unsqueeze(1) + torch.maximum(offsets, -age)) % self.slots
        index = (envs.unsqueeze(1) * self.slots + window_slots).view(-1)
        flat = self.frames.view(-1, *self.frames.shape[2:])  # (num_envs * slots, 84, 84)
        if self.device.type == "cuda":  # through a pinned block, so that the copy to the GPU is asynchronous
            block, copied = self.free_block(len(index), flat.shape[1:])
            window = torch.index_select(flat, 0, index, out=block).to(self.device, non_blocking=True)
            copied.record()  # done once the copy has run: until then no later sample may write into this block
        else:
            window = flat[index]
        window = window.view(len(slots), 5, *flat.shape[1:])
        actions, rewards, terminations = (
            t[envs, slots].to(self.device) for t in (self.actions, self.rewards, self.terminations)
        )
        return Batch(window[:, :4], actions.long(), rewards, window[:, 1:], terminations)

    def free_block(self, rows: int, shape) -> tuple[torch.Tensor, "torch.cuda.Event"]:
        """A pinned block of `rows` frames whose last copy to the GPU has run, and its event; a new one if none is
        free. With several samples per loop step (--num-envs above --update-frequency) a sample's copy may still be
        waiting when the next sample is gathered: it gets another block, never a wait."""
        for block, copied in self.pinned:
            if len(block) >= rows and copied.query():  # (an event never recorded counts as done)
                return block[:rows], copied
        self.pinned.append((torch.empty((rows, *shape), dtype=torch.uint8, pin_memory=True), torch.cuda.Event()))
        return self.pinned[-1]

    def state_dict(self) -> dict:
        """For a checkpoint: the frame store, not stacks, and of each sub-env's ring only the slots written so far."""
        return {"head": torch.from_numpy(self.head.copy()), "written": self.written,
                **{name: [filled_part(getattr(self, name)[i], self.written) for i in range(self.num_envs)]
                   for name in self.FIELDS}}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        for name in self.FIELDS:
            for i, part in enumerate(state[name]):
                getattr(self, name)[i, : len(part)] = part
        self.head, self.written = state["head"].numpy().copy(), state["written"]


# ----------------------------------------------------------------------------------------------------
# The networks: soft Q-functions Q_theta(s, .) and the categorical policy pi_phi(.|s).
# ----------------------------------------------------------------------------------------------------
def nature_cnn() -> nn.Sequential:
    """The Nature-DQN encoder: 4x84x84 frames -> 512 features."""
    return nn.Sequential(
        nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(),
    )  # fmt: skip


def kaiming_init(module: nn.Module) -> nn.Module:
    """Kaiming-normal weights (He et al. 2015, for ReLU layers) and zero biases in every layer; the conv weights
    laid out channels-last, as scale_frames lays out the frames."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return module.to(memory_format=torch.channels_last)


def scale_frames(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, 4, 84, 84) -> floats in [0, 1], stored channels-last (NHWC): the layout in which the
    convolutions run fastest (their backward pass ~25% faster than in NCHW on a 2-core CPU)."""
    return obs.contiguous(memory_format=torch.channels_last) * (1.0 / 255.0)


class SoftQNetwork(nn.Module):
    """Q_theta(s, .): the soft Q-values of all |A| actions of a state, from its own CNN encoder."""

    def __init__(self, n_actions: int):
        super().__init__()
        self.net = kaiming_init(nn.Sequential(nature_cnn(), nn.Linear(512, n_actions)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(scale_frames(obs))


class Actor(nn.Module):
    """pi_phi(.|s) = softmax(logits_phi(s)), from its own CNN encoder (sharing one with the critics would let
    the critics' larger gradients shape the policy's features)."""

    def __init__(self, n_actions: int):
        super().__init__()
        self.net = kaiming_init(nn.Sequential(nature_cnn(), nn.Linear(512, n_actions)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """log pi(.|s), shape (B, |A|), by log_softmax: exact, and finite where a probability underflows to 0."""
        return F.log_softmax(self.net(scale_frames(obs)), dim=1)

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """a ~ pi(.|s)."""
        return torch.multinomial(self(obs).exp(), 1).squeeze(1)

    def act_greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action argmax_a pi(a|s)."""
        return self(obs).argmax(1)


# ----------------------------------------------------------------------------------------------------
# The optimizer: Adam, written out, so that a whole update compiles into one graph.
# ----------------------------------------------------------------------------------------------------
class Adam:
    """Adam (Kingma & Ba, arXiv 1412.6980, Algorithm 1): the numbers torch.optim.Adam computes (tests/test_math.py
    compares them). torch.optim's step is a graph break for torch.compile by design; this one lets the compiler take
    a whole SAC update (losses, gradients, Adam steps, targets) as one graph. Each group has a name and is
    (parameters, learning rate): Adam(actor=(phi, lr), log_alpha=([log_alpha], lr)); step(actor=J_pi,
    log_alpha=J_alpha) moves each group down the gradient of the loss given by its name. A loss for no group, or a
    group without its loss, raises at the call."""

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, **groups):
        self.groups = {name: (list(params), lr) for name, (params, lr) in groups.items()}
        self.betas, self.eps = betas, eps
        # the steps taken: a tensor, which compiled code reads (an int would be baked into the graph), in float64 as
        # 1 - beta2^t loses digits in float32
        device = next(iter(self.groups.values()))[0][0].device
        self.t = torch.zeros((), dtype=torch.float64, device=device)
        self.m = [[torch.zeros_like(p) for p in params] for params, _ in self.groups.values()]  # first moments
        self.v = [[torch.zeros_like(p) for p in params] for params, _ in self.groups.values()]  # second raw moments

    def step(self, **losses: torch.Tensor) -> None:
        if set(losses) != set(self.groups):  # (checked while tracing: no cost in the compiled graph)
            raise TypeError(f"Adam.step: losses for {sorted(losses)}, but the groups are {sorted(self.groups)}")
        # every gradient is taken before any parameter moves, each for its own group's parameters only
        grads = [torch.autograd.grad(losses[name], params) for name, (params, _) in self.groups.items()]
        beta1, beta2 = self.betas
        with torch.no_grad():
            self.t += 1
            bias1, bias2 = 1 - beta1**self.t, 1 - beta2**self.t
            for (params, lr), g, m, v in zip(self.groups.values(), grads, self.m, self.v, strict=True):
                torch._foreach_lerp_(m, g, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
                torch._foreach_mul_(v, beta2)
                torch._foreach_addcmul_(v, g, g, 1 - beta2)  # v <- beta2 v + (1 - beta2) g^2
                # theta <- theta - lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t).
                # The bias corrections are float64 (above); the foreach ops get them in the parameters' dtype, as
                # they would cast them anyway, so that CUDA takes its fused path (one kernel, not one per tensor).
                dtype = params[0].dtype
                denominator = torch._foreach_div(torch._foreach_sqrt(v), bias2.sqrt().to(dtype))
                torch._foreach_add_(denominator, self.eps)
                steps = torch._foreach_div(m, denominator)
                torch._foreach_mul_(steps, (-lr / bias1).to(dtype))
                torch._foreach_add_(params, steps)

    def tensors(self) -> list[torch.Tensor]:
        """Its state: the step count and every moment estimate."""
        return [self.t, *(x for moments in (*self.m, *self.v) for x in moments)]

    def state_dict(self) -> dict:
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict) -> None:
        saved = [state["t"], *(x for moments in (*state["m"], *state["v"]) for x in moments)]
        with torch.no_grad():
            for tensor, value in zip(self.tensors(), saved, strict=True):
                tensor.copy_(value)


# ----------------------------------------------------------------------------------------------------
# The losses and the update (equation numbers of arXiv 1910.07207).
# ----------------------------------------------------------------------------------------------------
def soft_q_target(rewards, terminations, next_q1, next_q2, next_log_pi, alpha, gamma) -> torch.Tensor:
    """y = r + gamma (1 - d) V(s'), V(s') = pi(.|s')^T [min_i Q_theta_bar_i(s', .) - alpha log pi(.|s')]  (Eqs. 3, 10):
    the expectation over a' is the exact sum over the |A| actions. d is 1 only for a true termination (here a lost
    life, too); a time-limit truncation bootstraps like any other step."""
    next_pi = next_log_pi.exp()
    soft_value = (next_pi * (torch.min(next_q1, next_q2) - alpha * next_log_pi)).sum(1)
    return rewards + gamma * (1.0 - terminations) * soft_value


def actor_loss_fn(log_pi, q1, q2, alpha) -> torch.Tensor:
    """J_pi(phi) = E_{s~D}[ pi(.|s)^T (alpha log pi(.|s) - min_i Q_theta_i(s, .)) ]  (Eq. 12): a sum over the
    actions (an average would scale the loss by 1/|A|), Q a constant."""
    return (log_pi.exp() * (alpha * log_pi - torch.min(q1, q2).detach())).sum(1).mean()


def alpha_loss_fn(log_alpha, log_pi, target_entropy) -> torch.Tensor:
    """J(alpha) = E_{s~D}[ pi(.|s)^T (-alpha (log pi(.|s) + H-bar)) ]  (Eq. 11), with alpha = exp(log_alpha) > 0.
    Its gradient lowers alpha while the policy's entropy is above H-bar and raises it below."""
    pi, log_pi = log_pi.exp().detach(), log_pi.detach()
    return (-log_alpha.exp() * (pi * (log_pi + target_entropy)).sum(1)).mean()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta_bar <- tau theta + (1 - tau) theta_bar, in one fused op over all parameters (tau = 1: an exact copy,
    as lerp computes theta - (theta - theta_bar)(1 - tau) for tau >= 0.5)."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


@dataclass
class Agent:
    """What SAC-Discrete learns: the policy pi_phi, the critics Q_theta1,2 and their targets, log alpha, and the
    Adams."""

    actor: Actor
    qf1: SoftQNetwork
    qf2: SoftQNetwork
    qf1_target: SoftQNetwork
    qf2_target: SoftQNetwork
    log_alpha: torch.Tensor  # alpha = exp(log_alpha) stays > 0 whatever step log_alpha takes
    q_optimizer: Adam  # theta_1 and theta_2
    policy_optimizer: Adam  # phi, and log_alpha with --autotune, each with its own loss
    target_entropy: float  # H-bar, a fraction of the uniform policy's entropy

    def state_dict(self) -> dict:
        """Every network's and Adam's state, and log alpha."""
        parts = {name: part.state_dict() for name, part in vars(self).items() if hasattr(part, "state_dict")}
        return {**parts, "log_alpha": self.log_alpha.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        for name, part in vars(self).items():
            if hasattr(part, "load_state_dict"):
                part.load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])


def update(batch: Batch, agent: Agent, args: Args) -> dict:
    """One gradient step of Algorithm 1: the critics on J_Q(theta_1), J_Q(theta_2); then the policy on J_pi(phi) (and
    alpha on J(alpha), with --autotune) against the critics after their step. (The targets are copied in train(),
    every --target-network-frequency steps.) With --compile, the whole of it is one compiled graph. Returns the losses
    and alpha, as tensors (reading them would sync the device)."""
    alpha = agent.log_alpha.detach().exp()
    # J_Q(theta_i) = E_D[ 1/2 (Q_theta_i(s, a) - y)^2 ]  (Eq. 2), y from the target networks (Eq. 10)
    with torch.no_grad():
        next_log_pi = agent.actor(batch.next_obs)
        next_q1, next_q2 = agent.qf1_target(batch.next_obs), agent.qf2_target(batch.next_obs)
        y = soft_q_target(batch.rewards, batch.terminations, next_q1, next_q2, next_log_pi, alpha, args.gamma)
    q1, q2 = agent.qf1(batch.obs), agent.qf2(batch.obs)  # Q_theta_i(s, .) for all actions: (B, |A|)
    qf1_values = q1.gather(1, batch.actions.unsqueeze(1)).squeeze(1)  # Q_theta_i(s, a) of the stored action
    qf2_values = q2.gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    qf1_loss = 0.5 * F.mse_loss(qf1_values, y)
    qf2_loss = 0.5 * F.mse_loss(qf2_values, y)
    agent.q_optimizer.step(qf=qf1_loss + qf2_loss)  # theta_1 and theta_2 (separate encoders), one loss each

    # J_pi and J(alpha) at the same states, against the critics' Q(s, .) after their step, as constants.
    log_pi = agent.actor(batch.obs)
    with torch.no_grad():
        q1_pi, q2_pi = agent.qf1(batch.obs), agent.qf2(batch.obs)
    actor_loss = actor_loss_fn(log_pi, q1_pi, q2_pi, alpha)
    entropy = -(log_pi.exp() * log_pi).sum(1).mean()  # H(pi(.|s)), to compare with H-bar
    losses = {"qf1_values": qf1_values.detach().mean(), "qf2_values": qf2_values.detach().mean(),
              "qf1_loss": qf1_loss.detach(), "qf2_loss": qf2_loss.detach(), "qf_loss": (qf1_loss + qf2_loss).detach(),
              "actor_loss": actor_loss.detach(), "entropy": entropy.detach()}  # fmt: skip
    # J_pi and J(alpha) share no parameter (alpha a constant in J_pi, log pi one in J(alpha)): one Adam step moves
    # phi down J_pi and log_alpha down J(alpha).
    if args.autotune:
        alpha_loss = alpha_loss_fn(agent.log_alpha, log_pi, agent.target_entropy)
        agent.policy_optimizer.step(actor=actor_loss, log_alpha=alpha_loss)
        losses["alpha_loss"] = alpha_loss.detach()
    else:
        agent.policy_optimizer.step(actor=actor_loss)
    return {**losses, "alpha": agent.log_alpha.detach().exp()}


def make_agent(args: Args, n_actions: int, device: torch.device) -> Agent:
    """The networks at their initial weights, theta_bar_i = theta_i, alpha = 1 (--autotune) or --alpha, the Adam."""
    actor = Actor(n_actions).to(device)
    qf1, qf2 = SoftQNetwork(n_actions).to(device), SoftQNetwork(n_actions).to(device)
    qf1_target, qf2_target = SoftQNetwork(n_actions).to(device), SoftQNetwork(n_actions).to(device)
    qf1_target.load_state_dict(qf1.state_dict())  # theta_bar_i <- theta_i
    qf2_target.load_state_dict(qf2.state_dict())
    log_alpha = torch.tensor([0.0 if args.autotune else math.log(args.alpha)], device=device)
    # One Adam for phi and (with --autotune) log_alpha: Adam treats each parameter on its own, so this is the same as
    # one optimizer each, with one step call instead of two.
    policy_groups = {"actor": (actor.parameters(), args.policy_lr)}
    if args.autotune:
        log_alpha.requires_grad_(True)
        policy_groups["log_alpha"] = ([log_alpha], args.q_lr)
    q_optimizer = Adam(eps=args.adam_eps, qf=([*qf1.parameters(), *qf2.parameters()], args.q_lr))
    policy_optimizer = Adam(eps=args.adam_eps, **policy_groups)
    target_entropy = args.target_entropy_scale * math.log(n_actions)  # H-bar, a fraction of the uniform's entropy
    return Agent(actor, qf1, qf2, qf1_target, qf2_target, log_alpha, q_optimizer, policy_optimizer, target_entropy)


# ----------------------------------------------------------------------------------------------------
# Training: Algorithm 1 of arXiv 1910.07207 (DQN's schedule: an update every few steps, periodic target copies).
# ----------------------------------------------------------------------------------------------------
@dataclass
class TrainState:
    """What the loop carries from step to step; with the replay buffer and the environments, all a checkpoint holds."""

    agent: Agent
    obs: np.ndarray  # s_t of each sub-env: (num_envs, 4, 84, 84) uint8 frames
    global_step: int = 0  # environment steps so far, over all sub-envs
    losses: dict = field(default_factory=dict)  # the last update's losses and alpha, as tensors
    last_eval: "Evaluation | None" = None

    def state_dict(self) -> dict:
        return {"agent": self.agent.state_dict(), "obs": torch.from_numpy(self.obs.copy()),
                "global_step": self.global_step, "losses": {name: value.cpu() for name, value in self.losses.items()},
                "last_eval": tuple(self.last_eval) if self.last_eval else None}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.obs, self.global_step = state["obs"].numpy().copy(), state["global_step"]
        self.losses = {name: value.to(self.agent.log_alpha.device) for name, value in state["losses"].items()}
        self.last_eval = Evaluation(*state["last_eval"]) if state["last_eval"] else None


def train(args: Args, checkpoint: dict | None = None) -> None:
    run = Run(args, checkpoint)  # the plumbing: seeds, device, run directory, TensorBoard, evaluation, signals
    envs = make_vector_env(args)
    n_actions = envs.single_action_space.n
    agent = make_agent(args, n_actions, run.device)
    rb = FrameReplayBuffer(args.buffer_size, args.num_envs, run.device)
    obs, _ = envs.reset(seed=args.seed)
    rb.reset(obs)
    state = TrainState(agent, obs)
    if checkpoint:  # every network, optimizer, random generator, emulator and wrapper as the checkpoint left them
        restore_checkpoint(checkpoint, run, state, rb, envs)
    sac_update = compiled_update(args, agent)  # update(batch, agent, args), compiled unless --no-compile
    quiet_garbage_collector()

    while not run.finished(state):
        state.global_step += args.num_envs
        # Act: uniformly random actions for the first learning_starts steps, then a_t ~ pi_phi(.|s_t).
        if state.global_step <= args.learning_starts:
            actions = torch.randint(0, n_actions, (args.num_envs,))
        else:
            with torch.no_grad():
                actions = agent.actor.sample(torch.as_tensor(state.obs, device=run.device))
        actions = actions.cpu().numpy()
        step = step_envs(envs, actions)
        run.record(step, state.global_step)  # logs finished games; a non-finite reward stops the run

        # Store (s_t, a_t, r_t, s_{t+1}, terminated) in D: only the new frames (see FrameReplayBuffer). Where an
        # episode ended, s_{t+1} is its real last observation, not the first one of the next episode that next_obs
        # holds; only a termination ends the bootstrap (a truncation is stored with terminated = 0).
        rb.add(actions, step.rewards, step.terminations, step.real_next_obs, step.next_obs,
               step.terminations | step.truncations)  # fmt: skip
        state.obs = step.next_obs

        # Learn: one gradient step every update_frequency steps, a target network update every
        # target_network_frequency steps.
        if state.global_step > args.learning_starts:
            new_steps = min(args.num_envs, state.global_step - args.learning_starts)  # this step's steps past the start
            for _ in range(crossings(state.global_step, new_steps, args.update_frequency)):  # several with many envs
                state.losses |= sac_update(rb.sample(args.batch_size))
            for _ in range(crossings(state.global_step, new_steps, args.target_network_frequency)):
                polyak_update(agent.qf1_target, agent.qf1, args.tau)
                polyak_update(agent.qf2_target, agent.qf2, args.tau)

        run.end_of_step(state, rb, envs)  # each when due: log the losses, evaluate, show progress, checkpoint
    run.finish(state)  # the final evaluation (or how to resume a stopped run), --save-model, the logs closed
    envs.close()


# ====================================================================================================
# Plumbing: input checks, run setup, logging, evaluation, saving and loading. Nothing of SAC below.
# ====================================================================================================
def fail(message: str) -> None:
    """Stop before training with a one-line message and exit code 2 (the code argparse and tyro use)."""
    print(f"{os.path.basename(sys.argv[0]) or 'sac'}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_inputs(args: Args, given: set[str] | None = None) -> int:
    """Validate the flags and the environment; return the number of actions |A|. `given`: the flags on the command
    line (a --compile given where compiling cannot work is refused; otherwise it falls back to --no-compile)."""
    positive = ["total_timesteps", "num_envs", "buffer_size", "batch_size", "update_frequency",
                "target_network_frequency", "eval_frequency", "eval_episodes", "threads"]  # fmt: skip
    for name in positive:
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ["policy_lr", "q_lr", "adam_eps", "alpha"]:
        if not getattr(args, name) > 0 or not math.isfinite(getattr(args, name)):
            fail(f"--{name.replace('_', '-')} must be a positive number, got {getattr(args, name)}")
    if args.checkpoint_frequency < 0:
        fail(f"--checkpoint-frequency must be 0 (off) or positive, got {args.checkpoint_frequency}")
    if not 0 <= args.gamma < 1:
        fail(f"--gamma must be in [0, 1), got {args.gamma}")
    if not 0 < args.tau <= 1:
        fail(f"--tau must be in (0, 1], got {args.tau}")
    if not 0 <= args.eval_epsilon <= 1:
        fail(f"--eval-epsilon must be in [0, 1], got {args.eval_epsilon}")
    if not 0 < args.target_entropy_scale < 1:
        fail(f"--target-entropy-scale must be in (0, 1), got {args.target_entropy_scale}: H-bar = scale * log|A|, "
             "and log|A| is the entropy of the uniform policy, the most any policy has")  # fmt: skip
    if args.batch_size > args.buffer_size:
        fail(f"--batch-size ({args.batch_size}) must not exceed --buffer-size ({args.buffer_size})")
    if args.learning_starts < args.batch_size:
        fail(f"--learning-starts ({args.learning_starts}) must be at least --batch-size ({args.batch_size})")
    if args.buffer_size // args.num_envs < 16:
        fail(f"--buffer-size ({args.buffer_size}) must hold at least 16 frames per sub-env "
             f"(--num-envs {args.num_envs})")  # fmt: skip
    last_step = args.total_timesteps // args.num_envs * args.num_envs  # the loop's last global_step
    if args.learning_starts >= last_step:
        fail(f"--learning-starts ({args.learning_starts}) must be below --total-timesteps "
             f"({args.total_timesteps}, a multiple of --num-envs {args.num_envs}), or nothing is learned")  # fmt: skip
    check_memory(args.buffer_size)
    on_cuda = args.cuda and torch.cuda.is_available()
    if args.cudagraphs and not on_cuda:
        why = ": torch sees none here" if args.cuda else ", and --no-cuda was given"
        fail(f"--cudagraphs needs a CUDA device{why}")
    if (args.compile or args.cudagraphs) and (why_not := why_not_compiled(on_cuda)):
        problem, remedy = why_not
        if "compile" in (given or ()) or args.cudagraphs:
            fail(f"--{'cudagraphs' if args.cudagraphs else 'compile'}: {problem}; {remedy}, or give --no-compile")
        print(f"{problem}: the update runs eagerly (--no-compile); {remedy}")
        args.compile = False
    if args.track:
        try:
            import wandb  # noqa: F401
        except ImportError:
            fail("--track needs Weights & Biases: pip install wandb")
    return check_env(args.env_id)


def check_env(env_id: str) -> int:
    """An unknown id, a non-Atari env, a continuous action space, RAM observations: one line each."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        fail(f"--env-id {env_id!r} is not a registered gymnasium environment; Atari ids look like "
             "BreakoutNoFrameskip-v4 or ALE/Breakout-v5 (list them: python -c \"import gymnasium, ale_py; "
             "gymnasium.register_envs(ale_py); gymnasium.pprint_registry()\")")  # fmt: skip
    if not str(spec.entry_point).startswith("ale_py"):
        try:
            space = gym.make(env_id).action_space
        except Exception:  # it is not Atari either way; what fails in its constructor is beside the point
            space = None
        if isinstance(space, gym.spaces.Box):
            fail(f"--env-id {env_id} has a continuous action space ({space}); use sac_continuous_action.py")
        fail(f"--env-id {env_id} is not an Atari game (ALE); this script's CNN reads Atari frames")
    if spec.kwargs.get("obs_type", "rgb") != "rgb":
        fail(f"--env-id {env_id} observes {spec.kwargs['obs_type']!r}; this script needs the screen (obs_type 'rgb')")
    env = gym.make(env_id, frameskip=1)
    n_actions = env.action_space.n
    env.close()
    return n_actions


def check_memory(buffer_size: int) -> None:
    """The frame store fills as the run goes: say now, not hours later, if it cannot fit in this machine's RAM."""
    need = buffer_size * FrameReplayBuffer.BYTES_PER_SLOT
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        have = info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError):  # not Linux: no check
        return
    if need > have:
        fail(f"--buffer-size {buffer_size} needs {need / 1e9:.1f} GB of memory for its frames, and this machine "
             f"has {have / 1e9:.1f} GB available; lower --buffer-size")  # fmt: skip


def why_not_compiled(on_cuda: bool) -> tuple[str, str] | None:
    """What keeps torch.compile from compiling the update here, and the remedy; None if nothing does. Checked before
    training, so that the default falls back to eager at once instead of failing at the first update."""
    if not torch._dynamo.is_inductor_supported():
        return f"torch.compile does not work on this platform (Python {sys.version.split()[0]})", "use Linux or macOS"
    if not hasattr(torch._dynamo.config, "trace_autograd_ops"):  # Adam.step's torch.autograd.grad, inside the graph
        return (f"torch {torch.__version__} cannot compile torch.autograd.grad into a graph (it has no "
                "torch._dynamo.config.trace_autograd_ops)", "torch 2.11 or newer compiles the update")  # fmt: skip
    if not on_cuda:  # inductor writes C++ for the CPU
        if shutil.which(os.environ.get("CXX", "g++")) is None:
            return "no C++ compiler (g++, or the one named by $CXX) to compile the update for the CPU", "install g++"
        return None
    # On CUDA, inductor writes Triton kernels; Triton builds its launcher with a C compiler and the Python headers.
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")  # as Triton picks it
    if cc is None or shutil.which(cc) is None:
        return "no C compiler (gcc or clang, or the one named by $CC) for Triton to compile the update", "install gcc"
    headers = sysconfig.get_paths()["include"]
    if not os.path.isfile(os.path.join(headers, "Python.h")):
        return f"no Python headers (Python.h in {headers}) for Triton to compile the update", "install python3-dev"
    from torch.utils._triton import has_triton

    if not has_triton():
        return "Triton, which compiles the update for CUDA, is missing or cannot use this GPU", "pip install triton"
    return None


class Run:
    """The plumbing of a training run, out of train()'s way: the seeds, the device, the run's name and directory,
    TensorBoard (and W&B), the evaluations, the console's progress, the stop signals and when to checkpoint."""

    def __init__(self, args: Args, checkpoint: dict | None):
        """A resumed run keeps its name and directory. The run directory is checked before anything is trained."""
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        torch.backends.cudnn.deterministic = args.torch_deterministic
        torch.set_num_threads(args.threads)
        warn_if_busy(args.threads)
        self.args, self.device = args, torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
        if checkpoint:
            self.name, self.dir = checkpoint["run_name"], os.path.dirname(checkpoint["path"])
        else:
            env_name = args.env_id.replace("/", "-").replace(":", "-")  # dm_control/..., my_module:Id
            self.name = f"{env_name}__{args.exp_name}__{args.seed}__{int(time.time())}"
            self.dir = f"runs/{self.name}"
        check_writable(self.dir)
        if args.track:
            import wandb

            # The run's own id, so that a --resume or a requeued Slurm task goes on in the same W&B run.
            wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, sync_tensorboard=True,
                       config=vars(args), name=self.name, id=wandb_run_id(self.name), resume="allow",
                       save_code=True)  # fmt: skip
        if checkpoint:
            # Steps after the checkpoint that the stopped process had logged are dropped (purged) by TensorBoard:
            # the resumed run logs them again, so no step appears twice.
            resumed_at = checkpoint["state"]["global_step"]
            self.writer = SummaryWriter(self.dir, purge_step=resumed_at + 1)
            print(f"resuming run {self.name} at step {resumed_at} on {self.device}")
        else:
            self.writer = SummaryWriter(self.dir)
            table = "\n".join(f"|{key}|{value}|" for key, value in vars(args).items())
            self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")
            print(f"run {self.name} on {self.device} ({args.threads} threads); TensorBoard: tensorboard --logdir runs")
        self.log, self.progress = RunLog(self.writer), Progress(args.total_timesteps)
        first_step = checkpoint["state"]["global_step"] if checkpoint else 0
        self.provenance = Provenance(self.dir, args, self.device, first_step)
        self.eval_env = make_env(args.env_id, train=False, render=args.capture_video)
        self.stop = StopSignals()
        self.last_step = args.total_timesteps // args.num_envs * args.num_envs

    def finished(self, state: "TrainState") -> bool:
        """The last step is done, or a stop was asked for (SIGINT, SIGTERM)."""
        return state.global_step >= self.last_step or self.stop.requested is not None

    def record(self, step: EnvStep, global_step: int) -> None:
        """What the envs returned: a non-finite reward stops the run (the frames are uint8: always finite); the
        games that ended are logged."""
        self.log.check_finite(global_step, reward=step.rewards)
        self.log.games(step.games, global_step)

    def end_of_step(self, state: "TrainState", rb: FrameReplayBuffer, envs: gym.vector.VectorEnv) -> None:
        """Every 100 env steps the losses (read from the device only here) and the steps per second; an evaluation
        every --eval-frequency steps; the progress line; a checkpoint when one is due."""
        args, global_step = self.args, state.global_step
        if crossings(global_step, args.num_envs, 100):
            losses = {name: value.item() for name, value in state.losses.items()}
            self.log.check_finite(global_step, **losses)  # a NaN or an infinity in a loss stops the run
            self.log.write(losses, global_step)
        if crossings(global_step, args.num_envs, args.eval_frequency):
            state.last_eval = self.evaluation(state.agent.actor, global_step)
        self.progress.update(global_step, self.log.recent_return(), state.last_eval)
        if self.checkpoint_due(global_step):
            if self.stop.requested:  # (a large buffer makes a large file: say so before the wait)
                size = checkpoint_size(rb, state.agent)
                say(f"writing the checkpoint of step {global_step} ({size}): a second Ctrl-C stops at once, without "
                    "it (--no-checkpoint-on-stop: no checkpoint on a stop)")  # fmt: skip
            save_checkpoint(self, state, rb, envs)

    def checkpoint_due(self, global_step: int) -> bool:
        """When a stop was requested (unless --no-checkpoint-on-stop); with --checkpoint-frequency N also every N env
        steps and at the last step."""
        if self.stop.requested is not None:
            return self.args.checkpoint_on_stop
        return bool(self.args.checkpoint_frequency) and (
            global_step == self.last_step or crossings(global_step, self.args.num_envs, self.args.checkpoint_frequency)
        )

    def evaluation(self, actor: Actor, global_step: int) -> "Evaluation":
        """Evaluate the policy now (see evaluate), log it, and return it."""
        video = f"videos/{self.name}/eval-step{global_step}" if self.args.capture_video else None
        args = self.args
        began = time.time()
        returns, lengths = evaluate(actor, self.eval_env, args.eval_episodes, args.seed, args.eval_greedy,
                                    args.eval_epsilon, video)  # fmt: skip
        self.provenance.evaluated(time.time() - began, global_step)
        self.writer.add_scalar("eval/episodic_return", returns.mean(), global_step)
        self.writer.add_scalar("eval/episodic_return_std", returns.std(), global_step)  # over the episodes
        self.writer.add_scalar("eval/episodic_length", lengths.mean(), global_step)
        return Evaluation(global_step, float(returns.mean()), float(returns.std()))

    def finish(self, state: "TrainState") -> None:
        """The final evaluation (unless this step had one), or, after a stop, how to resume; then --save-model."""
        self.progress.close()
        if self.stop.requested:
            self.stop.report(self.args, self.dir, state.global_step)
        else:
            if state.last_eval is None or state.last_eval.step != state.global_step:
                state.last_eval = self.evaluation(state.agent.actor, state.global_step)
            print(f"final evaluation at step {state.global_step}: score {state.last_eval.mean:.1f} +- "
                  f"{state.last_eval.std:.1f} over {self.args.eval_episodes} games")  # fmt: skip
        if self.args.save_model:
            save_model(self.args, self.dir, state.agent)
        self.provenance.save(state.global_step)
        self.eval_env.close()
        self.writer.close()


class Provenance:
    """Where and with what the run ran, for its results to say: runs/{run_name}/provenance.json, a list with one part
    per start of the run (a resumed run appends one, so a run continued on another machine lists each): the commit of
    the code, the versions of Python and the packages, the CPU, the device, --threads, the env steps the part took and
    its wall-clock seconds, split into evaluation and the rest (training). Rewritten after each evaluation and at the
    end, so a part that crashed still says where it ran."""

    PACKAGES = ("torch", "gymnasium", "numpy", "mujoco", "dm_control", "ale_py", "shimmy")

    def __init__(self, run_dir: str, args: Args, device: torch.device, first_step: int):
        self.path, self.began, self.eval_seconds = os.path.join(run_dir, "provenance.json"), time.time(), 0.0
        try:  # the parts of the run's earlier starts (none for a new run)
            with open(self.path) as f:
                self.parts = json.load(f)
        except (OSError, ValueError):
            self.parts = []
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
        self.parts.append({"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.began)),
                           "commit": git_commit(), "python": platform.python_version(),
                           **{name: package_version(name) for name in self.PACKAGES},
                           "cpu": cpu_model(), "cores": cores, "device": gpu or "cpu", "threads": args.threads,
                           "compile": args.compile, "first_step": first_step})  # fmt: skip
        self.save(first_step)

    def evaluated(self, seconds: float, global_step: int) -> None:
        self.eval_seconds += seconds
        self.save(global_step)

    def save(self, global_step: int) -> None:
        elapsed = time.time() - self.began
        self.parts[-1].update(last_step=global_step, train_seconds=round(elapsed - self.eval_seconds, 3),
                              eval_seconds=round(self.eval_seconds, 3))  # fmt: skip
        with open(f"{self.path}.tmp", "w") as f:  # whole or not at all: a stop mid-write leaves the last one
            json.dump(self.parts, f, indent=1)
        os.replace(f"{self.path}.tmp", self.path)


def git_commit() -> str:
    """The commit of this script's checkout, with "+modified" if the script differs from it; "unknown" outside git."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        changed = subprocess.run(["git", "-C", here, "diff", "--quiet", "HEAD", "--", os.path.abspath(__file__)],
                                 capture_output=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("+modified" if changed.returncode == 1 else "")


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name and, since a virtual machine's name can be as vague as "AMD EPYC", its family and model
    numbers, as Linux's /proc/cpuinfo gives them (elsewhere what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return platform.processor() or platform.machine()
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    name = fields.get("model name", platform.processor() or platform.machine())
    return f"{name} (family {fields['cpu family']}, model {fields['model']})" if "cpu family" in fields else name


def wandb_run_id(run_name: str) -> str:
    """The W&B run id of a run: its name where W&B takes it (letters, digits, '-' and '_', 64 at most), else the name
    cut, with a checksum of the whole."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in run_name)
    return safe if len(safe) <= 64 else f"{safe[:55]}-{zlib.crc32(run_name.encode()):08x}"


def warn_if_busy(threads: int) -> None:
    """One line when other processes leave fewer idle cores than --threads: torch's threads then wait on each other at
    every step, and the run crawls (docs/speed.md). It changes nothing the run computes. Linux only, and not where the
    cores are shared by plan: a sweep's runs (launch.py sets SAC_SWEEP), a Slurm task, a share of a larger machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    if os.environ.get("SAC_SWEEP") or os.environ.get("SLURM_JOB_ID") or cores != os.cpu_count():
        return
    busy = cores
    for _ in range(4):  # the fewest processes running over 60 ms (this one is one of them)
        try:
            with open("/proc/stat") as f:
                running = next(int(line.split()[1]) for line in f if line.startswith("procs_running"))
        except (OSError, StopIteration, ValueError):
            return
        busy = min(busy, running - 1)
        time.sleep(0.02)
    if cores - busy < threads:
        say(f"this machine is busy: other processes keep {busy} of its {cores} cores running, fewer idle than "
            f"--threads {threads}, so torch's threads wait on each other and the run crawls; give --threads "
            f"{max(cores - busy, 1)}, or run fewer at once (docs/speed.md: Several runs on one machine)")  # fmt: skip


def check_writable(run_dir: str) -> None:
    """Refuse, before anything is trained, a run directory that cannot be written."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        fail(f"cannot write the run directory {run_dir}: {e.strerror or e}")


def compiled_update(args: Args, agent: Agent):
    """update() with this run's agent and args: as written with --no-compile; otherwise torch.compile'd, each kind of
    step (by its flags: update_targets, ...) one whole graph, compiled at its first call (which prints how long it
    took), and with --cudagraphs replayed as one CUDA graph (torch.compile's "reduce-overhead" mode). An update that
    does not come out as one graph on this torch runs eagerly from then on, with a notice."""
    step = functools.partial(update, agent=agent, args=args)
    if not (args.compile or args.cudagraphs):
        return step
    torch._dynamo.config.trace_autograd_ops = True  # torch.autograd.grad (in Adam.step) inside the graph, not a break
    if args.cudagraphs:  # what each step updates in place keeps its memory, so that a CUDA graph may write to it
        parts = vars(agent).values()
        networks = [p for part in parts if isinstance(part, nn.Module) for p in part.parameters()]
        optimizers = [t for part in parts if isinstance(part, Adam) for t in part.tensors()]
        for tensor in [agent.log_alpha, *networks, *optimizers]:
            torch._dynamo.mark_static_address(tensor)
    compiled = torch.compile(step, fullgraph=True, mode="reduce-overhead" if args.cudagraphs else None)
    replay, kinds_compiled = args.cudagraphs, set()

    def call(batch: Batch, when: dict) -> dict:
        if not replay:
            return compiled(batch, **when)
        torch.compiler.cudagraph_mark_step_begin()  # each call is a new step: its graph may reuse memory
        # a replay overwrites the graph's previous outputs: keep copies of what the loop holds
        return {name: value.clone() for name, value in compiled(batch, **when).items()}

    def run(batch: Batch, **when: bool) -> dict:
        nonlocal compiled, replay
        kind = ", ".join(f"{name}={value}" for name, value in when.items())
        if kind in kinds_compiled or compiled is step:  # compiled already, or eager after a failed compile
            return call(batch, when)
        if not kinds_compiled:
            say("torch.compile: compiling the update; the first updates wait for the compiler (20-60 s on a CPU)")
        kinds_compiled.add(kind)
        start = time.perf_counter()
        try:
            losses = call(batch, when)
        except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.BackendCompilerFailed) as e:
            # Raised while tracing or compiling, before the graph runs: nothing has moved, eager takes this step.
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            say(f"torch.compile: the update is not one graph on torch {torch.__version__} ({why}): it runs eagerly "
                "(--no-compile)")  # fmt: skip
            compiled, replay = step, False
            return step(batch, **when)
        say(f"torch.compile: the update{f' ({kind})' if kind else ''} compiled in {time.perf_counter() - start:.1f} s")
        return losses

    return run


def say(text: str) -> None:
    """A line of its own, also when a progress bar is being drawn on the terminal's current line."""
    print(("\n" if sys.stdout.isatty() else "") + text, flush=True)


def quiet_garbage_collector() -> None:
    """Python's cycle collector runs every 700 new objects, and one update makes hundreds (tensors, autograd
    nodes), so it scanned the whole heap several times per step. Objects made before training are frozen out
    of its scans, and it runs every 50,000 new objects instead."""
    gc.freeze()
    gc.set_threshold(50_000)


def crossings(global_step: int, step_size: int, every: int) -> int:
    """How many multiples of `every` the last step (of step_size env steps, up to global_step) reached: 0 or 1 when
    every >= step_size, more when a step of many sub-envs passes several."""
    return global_step // every - (global_step - step_size) // every


class RunLog:
    """What the loop writes to TensorBoard: every finished game of every sub-env (its real score, all lives),
    and every 100 env steps the losses (the loop's only device->host reads) and the env steps per second."""

    def __init__(self, writer: SummaryWriter):
        self.writer = writer
        self.recent = deque(maxlen=10)  # the last 10 game scores, for the console
        self.sps_time, self.sps_step = time.time(), 0

    def games(self, games: list, global_step: int) -> None:
        for _, score, length in games:
            self.writer.add_scalar("charts/episodic_return", score, global_step)
            self.writer.add_scalar("charts/episodic_length", length, global_step)
            self.recent.append(score)

    def recent_return(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def state_dict(self) -> dict:
        """The recent scores, for a checkpoint (the game in progress is RecordEpisodeStatistics's, in the env's)."""
        return {"recent": [float(r) for r in self.recent], "sps_step": self.sps_step}

    def load_state_dict(self, state: dict) -> None:
        self.recent.extend(state["recent"])
        self.sps_step = state["sps_step"]

    def write(self, losses: dict[str, float], global_step: int) -> None:
        """The losses, and the env steps per second since the last call."""
        now = time.time()
        sps = (global_step - self.sps_step) / max(now - self.sps_time, 1e-9)
        self.writer.add_scalar("charts/SPS", sps, global_step)
        self.sps_time, self.sps_step = now, global_step
        for name, value in losses.items():
            self.writer.add_scalar(f"losses/{name}", value, global_step)

    def check_finite(self, global_step: int, **values) -> None:
        """Stop the run (exit 1) at a NaN or an infinity: in what the environment returned (checked every step, on
        the host), or in a loss (checked when the losses are read, every 100 steps, and before every checkpoint)."""
        for name, value in values.items():
            if not np.all(np.isfinite(value)):
                self.writer.close()  # what was logged so far is kept
                source = "from the environment" if name in ("observation", "reward") else "in the update"
                print(f"{os.path.basename(sys.argv[0]) or 'sac'}: error: non-finite {name} {source} at step "
                      f"{global_step}; the run stops (the last checkpoint, if any, is from before it)",
                      file=sys.stderr)  # fmt: skip
                raise SystemExit(1)


class Progress:
    """A progress bar redrawn in place on a terminal. Otherwise (a log file: nohup, Slurm, CI) a plain line at every
    5% of the run, at every evaluation, and at least every `seconds` in between."""

    def __init__(self, total: int, seconds: float = 30.0):
        self.total, self.seconds, self.tty = total, seconds, sys.stdout.isatty()
        self.chunk = max(total // 20, 1)  # 5% of the run
        self.next_draw, self.next_line, self.next_time = 0.0, self.chunk, time.time() + seconds
        self.window = deque(maxlen=100)  # (time, step) of the last steps, for a current steps/s

    def update(self, step: int, recent_return: float | None, last_eval: "Evaluation | None") -> None:
        now = time.time()
        self.window.append((now, step))
        evaluated = last_eval is not None and last_eval.step == step  # an evaluation at this very step
        if self.tty and now < self.next_draw:
            return
        if not self.tty and step < self.next_line and now < self.next_time and not evaluated and step < self.total:
            return
        self.next_draw, self.next_time = now + 0.25, now + self.seconds
        self.next_line = (step // self.chunk + 1) * self.chunk
        t0, s0 = self.window[0]
        text = f"step {step:>{len(str(self.total))}}/{self.total}  {(step - s0) / max(now - t0, 1e-9):5.0f} steps/s"
        text += f"  return {recent_return:8.1f}" if recent_return is not None else "  return        -"
        text += f"  eval {last_eval.mean:8.1f} (step {last_eval.step})" if last_eval else ""
        if self.tty:
            filled = 30 * step // self.total
            print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {text}", end="", flush=True)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.tty:
            print()


class Evaluation(NamedTuple):
    step: int
    mean: float  # the mean score over --eval-episodes games
    std: float


def evaluate(actor: Actor, env: gym.Env, episodes: int, seed: int, greedy: bool = True, epsilon: float = 0.0,
             video: str | None = None):  # fmt: skip
    """Play whole games (all lives, real scores) with the greedy policy, which takes a uniformly random action with
    probability epsilon (or with the policy itself, greedy=False); return (scores, lengths). A game's score and length
    are RecordEpisodeStatistics' (make_env), as in training: every reward and every agent step of the game, the
    automatic NOOP and FIRE steps included. The first game is recorded to `video` ({directory}/{file name prefix}), if
    given. Every evaluation of a run (and --eval-model with the run's --seed) resets the env with the same seed, seed +
    10_000 (apart from the training envs' seeds), and draws epsilon's actions from a generator of that seed, so it
    plays the same games each time."""
    device, returns, lengths, frames = next(actor.parameters()).device, [], [], []
    rng = np.random.default_rng(seed + 10_000)  # epsilon's draws: the same in every evaluation of the run
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + 10_000 if episode == 0 else None)
        done = False
        while not done:
            if video and episode == 0:
                frames.append(env.render())
            with torch.no_grad():
                obs_t = torch.as_tensor(obs, device=device).unsqueeze(0)
                action = int((actor.act_greedy(obs_t) if greedy else actor.sample(obs_t))[0])
            if greedy and rng.random() < epsilon:
                action = int(rng.integers(env.action_space.n))
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        returns.append(float(info["episode"]["r"]))
        lengths.append(int(info["episode"]["l"]))
    if frames:
        from gymnasium.utils.save_video import save_video

        # The Atari 2600 draws 60 frames a second and the agent acts on every 4th: 15 video frames a second play the
        # game at its own speed (ale-py's render_fps, 30, is not the emulator's rate).
        video_dir, name = os.path.split(video)
        save_video(frames, video_dir, fps=15, name_prefix=name, save_logger=None)
    return np.array(returns), np.array(lengths)


def save_model(args: Args, run_dir: str, agent: Agent) -> None:
    """The networks and log alpha (a checkpoint holds the Adam too)."""
    path = f"{run_dir}/{args.exp_name}.pt"
    networks = {name: part.state_dict() for name, part in vars(agent).items() if isinstance(part, nn.Module)}
    torch.save({"script": "sac_discrete_atari", "args": asdict(args), **networks,
                "log_alpha": agent.log_alpha.detach().cpu()}, path)  # fmt: skip
    print(f"model saved to {path}; evaluate it with: python {os.path.basename(__file__)} --eval-model {path}")


# Checkpoints: everything the run needs to go on exactly as if it had not stopped.
CHECKPOINT_FORMAT = 4  # 4: the critics' and the policy's Adams apart; 3: one Adam; 2: laid out flat; 1: torch.optim
RESUMABLE = {"resume", "total_timesteps", "checkpoint_frequency", "checkpoint_on_stop", "eval_frequency",
             "eval_episodes", "eval_greedy", "eval_epsilon", "capture_video", "save_model", "threads", "cuda",
             "compile", "cudagraphs", "track", "wandb_project_name", "wandb_entity"}  # fmt: skip


def save_checkpoint(run: Run, state: TrainState, rb: FrameReplayBuffer, envs: gym.vector.VectorEnv) -> None:
    """Write {run.dir}/checkpoint.pt atomically: into a temporary file, flushed to the disk, then renamed over the
    previous checkpoint, so that a crash or a full disk mid-write leaves the previous checkpoint whole."""
    run.log.check_finite(state.global_step, **{name: value.item() for name, value in state.losses.items()})
    checkpoint = {
        "script": "sac_discrete_atari", "format": CHECKPOINT_FORMAT, "args": asdict(run.args), "run_name": run.name,
        "state": state.state_dict(), "buffer": rb.state_dict(), "envs": [env_state(env) for env in envs.envs],
        "log": run.log.state_dict(), "rng": rng_state(run.device),
    }  # fmt: skip
    checkpoint["checksum"] = checksum(checkpoint)
    path = os.path.join(run.dir, "checkpoint.pt")
    try:
        with open(f"{path}.tmp", "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(f"{path}.tmp", path)
    except (OSError, RuntimeError) as e:  # torch.save raises a failed write (OSError) again as a RuntimeError
        error = e.__context__ if isinstance(e.__context__, OSError) else e
        if os.path.isfile(f"{path}.tmp"):
            os.remove(f"{path}.tmp")
        run.writer.close()
        print(f"{os.path.basename(sys.argv[0]) or 'sac'}: error: cannot write the checkpoint {path} at step "
              f"{state.global_step}: {getattr(error, 'strerror', None) or error}; the previous checkpoint is unchanged",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(1) from None


def checkpoint_size(*parts) -> str:
    """About what a checkpoint of these parts (the replay buffer's filled part, the agent) takes on the disk."""
    tensors = [t for part in parts for t in torch.utils._pytree.tree_leaves(part.state_dict()) if torch.is_tensor(t)]
    size = sum(t.nbytes for t in tensors)
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def filled_part(t: torch.Tensor, n: int) -> torch.Tensor:
    """t[:n] of a contiguous tensor, as a tensor over just that slice of t's memory. torch.save writes the whole
    memory of a view (t[:n] would write the whole preallocated buffer), and t[:n].clone() could double the
    buffer's memory at each checkpoint: this writes the filled part without a copy."""
    row, start = t[0].numel() * t.element_size(), t.storage_offset() * t.element_size()
    memory = t.untyped_storage()[start : start + n * row]
    return torch.empty(0, dtype=t.dtype, device=t.device).set_(memory, 0, (n, *t.shape[1:]))


def checksum(state: dict) -> int:
    """CRC-32 of all a checkpoint holds, tensors and other values: torch.load does not check the data it reads, so
    a corrupted file would load without a word."""
    crc = 0
    for leaf in torch.utils._pytree.tree_leaves(state):
        if isinstance(leaf, torch.Tensor):
            if leaf.numel():  # an empty one holds no bytes (and may have stride 0, which view() refuses)
                crc = zlib.crc32(leaf.detach().cpu().reshape(-1).view(torch.uint8).numpy(), crc)
        else:
            crc = zlib.crc32(repr(leaf).encode(), crc)
    return crc


def load_checkpoint(args: Args, given: set[str] | None = None) -> tuple[Args, dict]:
    """--resume PATH: the checkpoint, and the run's own args. A flag given now (`given`: named on the command line,
    whatever its value; None: those that differ from the defaults) must be the run's own, except those in RESUMABLE
    (how long, how often to evaluate or checkpoint, where to run), which replace the run's."""
    path = os.path.join(args.resume, "checkpoint.pt") if os.path.isdir(args.resume) else args.resume
    try:  # mmap: the buffer's frames are read from the file as they are copied, not all into memory first
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # missing, truncated, corrupted: whatever the cause, one line for the user
        fail(f"--resume {path}: cannot load it ({(str(e).splitlines() or [type(e).__name__])[0]})")
    script = checkpoint.get("script") if isinstance(checkpoint, dict) else None
    if script != "sac_discrete_atari" or "run_name" not in checkpoint:
        fail(f"--resume {path}: not a checkpoint of sac_discrete_atari.py"
             + (f" (it is {script}.py's)" if script else ""))  # fmt: skip
    if checkpoint.pop("checksum", None) != checksum(checkpoint):
        fail(f"--resume {path}: the file is corrupted (its contents do not match the checksum written with them)")
    if checkpoint.get("format", 1) != CHECKPOINT_FORMAT:
        found = checkpoint.get("format", 1)
        fail(f"--resume {path}: written by an older sac_discrete_atari.py (checkpoint format {found}, this one "
             f"reads {CHECKPOINT_FORMAT}); resume it with that version")  # fmt: skip
    defaults, resumed = asdict(Args()), dict(checkpoint["args"])
    if given is None:
        given = {name for name, value in asdict(args).items() if value != defaults[name]}
    for name in sorted(given):
        value = getattr(args, name)
        if name in RESUMABLE:
            resumed[name] = value
        elif value != resumed.get(name):
            fail(f"--resume {path}: --{name.replace('_', '-')} {value} differs from the run's {resumed[name]}; a "
                 "resumed run keeps its settings")  # fmt: skip
    # All but the buffer (copied into the new replay buffer, then dropped) get memory of their own: what the run keeps
    # must not hold the file's memory map, nor with it the file's disk space once a new checkpoint replaces it.
    own = {key: torch.utils._pytree.tree_map_only(torch.Tensor, torch.clone, value) for key, value in checkpoint.items()
           if key != "buffer"}  # fmt: skip
    return Args(**resumed), {**checkpoint, **own, "path": path}


def flags_given(argv: list[str]) -> set[str]:
    """The Args fields named on the command line (--name VALUE, --name=VALUE, --flag, --no-flag), whatever their values:
    on --resume a flag given with its default value counts as given (--total-timesteps 1000000 extends a run to it)."""
    names = set(asdict(Args()))
    given = {token[2:].split("=")[0].replace("-", "_") for token in argv if token.startswith("--")}
    return {name[3:] if name.startswith("no_") and name[3:] in names else name for name in given} & names


def restore_checkpoint(checkpoint: dict, run: Run, state: TrainState, rb: FrameReplayBuffer, envs) -> None:
    """Put the checkpoint's state back into the freshly built run. The dict is emptied: with it goes its memory map of
    the file (the buffer's part)."""
    state.load_state_dict(checkpoint["state"])
    rb.load_state_dict(checkpoint["buffer"])
    run.log.load_state_dict(checkpoint["log"])
    for env, env_saved in zip(envs.envs, checkpoint["envs"], strict=True):
        set_env_state(env, env_saved)
    set_rng_state(checkpoint["rng"], run.device)
    checkpoint.clear()


def rng_state(device: torch.device) -> dict:
    """The random generators' states: Python's, numpy's, torch's CPU one and, on CUDA, the training GPU's alone (not
    every visible GPU's: a run resumed where fewer GPUs are visible must still find its own; and no CUDA call on a CPU
    run, which would set CUDA up for nothing)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}  # fmt: skip


def set_rng_state(state: dict, device: torch.device) -> None:
    """Put back what rng_state saved. The saved GPU generator goes to the training GPU, whichever index it has now; a
    run moved between the CPU and a GPU draws its GPU numbers afresh. (Older checkpoints hold a list, one per GPU.)"""
    random.setstate(state["python"])
    numpy_state = state["numpy"]  # its keys were saved as a tensor; numpy gets a copy (`state` is left as it is)
    keys = numpy_state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": keys}})
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"][0] if isinstance(state["cuda"], list) and state["cuda"] else state["cuda"]
    if isinstance(cuda, torch.Tensor) and device.type == "cuda":
        torch.cuda.set_rng_state(cuda, device)


# What each wrapper of make_env keeps from one step to the next (its other attributes are its settings).
WRAPPER_STATE = {
    gym.wrappers.FrameStackObservation: ("obs_queue",),
    gym.wrappers.ClipReward: (),
    AtariLives: ("lives", "game_over"),
    gym.wrappers.RecordEpisodeStatistics: ("episode_returns", "episode_lengths"),
    gym.wrappers.AtariPreprocessing: ("obs_buffer", "lives", "game_over"),
    gym.wrappers.TimeLimit: ("_elapsed_steps",),
}


def env_state(env: gym.Env) -> dict:
    """A sub-env's own state: the emulator's whole state with its random generator (sticky actions), the env's
    and its action space's random generators (no-op starts), and the state of each wrapper."""
    wrappers, layer = [], env
    while isinstance(layer, gym.Wrapper):
        wrappers.append({name: saveable(getattr(layer, name)) for name in WRAPPER_STATE.get(type(layer), ())})
        layer = layer.env
    ale = bytearray(env.unwrapped.ale.cloneState(include_rng=True).serialize())
    return {"ale": torch.frombuffer(ale, dtype=torch.uint8), "wrappers": wrappers,
            "np_random": env.unwrapped.np_random.bit_generator.state,
            "action_space": env.action_space.np_random.bit_generator.state}  # fmt: skip


def set_env_state(env: gym.Env, state: dict) -> None:
    """Put a sub-env back in the state env_state read."""
    layer = env
    for attributes in state["wrappers"]:
        for name, value in attributes.items():
            setattr(layer, name, restored(value, getattr(layer, name)))
        layer = layer.env
    env.unwrapped.ale.restoreState(ale_py.ALEState(state["ale"].numpy().tobytes()))
    env.unwrapped.np_random.bit_generator.state = state["np_random"]
    env.action_space.np_random.bit_generator.state = state["action_space"]


def saveable(value):
    """numpy arrays as tensors, numpy scalars as Python numbers, sequences as lists: what torch.load reads back
    with weights_only=True."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, deque)):
        return [saveable(item) for item in value]
    return value


def restored(value, current):
    """A value saveable made, back in the type of the attribute `current` it replaces."""
    if isinstance(value, torch.Tensor):
        return value.numpy().copy()
    if isinstance(value, list):
        items = [restored(item, None) for item in value]
        return deque(items, maxlen=current.maxlen) if isinstance(current, deque) else items
    return value


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM (what a cluster sends before it pre-empts a job) ask the loop to stop after the
    current step, write the checkpoint (unless --no-checkpoint-on-stop) and the model (with --save-model), and exit
    0. A second SIGINT stops at once, the checkpoint unwritten (the previous one, if any, stays whole)."""

    def __init__(self):
        self.requested = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.handle)

    def handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            print("\nsecond SIGINT: stopping now, without a checkpoint", file=sys.stderr, flush=True)
            os._exit(130)
        self.requested = signal.Signals(signum).name

    def report(self, args: Args, run_dir: str, global_step: int) -> None:
        resume = f"resume with: python {os.path.basename(__file__)} --resume {run_dir}"
        if args.checkpoint_on_stop:
            where = f"checkpoint {run_dir}/checkpoint.pt; {resume}"
        elif os.path.isfile(f"{run_dir}/checkpoint.pt"):
            where = f"no checkpoint of this step (--no-checkpoint-on-stop); an earlier one: {resume}"
        else:
            where = "no checkpoint (--no-checkpoint-on-stop)"
        print(f"stopped by {self.requested} at step {global_step}; {where}")


def evaluate_saved_model(args: Args) -> None:
    """--eval-model PATH: load a saved actor, play --eval-episodes whole games (and a video)."""
    if args.eval_episodes <= 0:
        fail(f"--eval-episodes must be positive, got {args.eval_episodes}")
    if not 0 <= args.eval_epsilon <= 1:
        fail(f"--eval-epsilon must be in [0, 1], got {args.eval_epsilon}")
    try:
        saved = torch.load(args.eval_model, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, truncated, not a torch file: whatever the cause, one line for the user
        fail(f"--eval-model {args.eval_model}: cannot load it ({(str(e).splitlines() or [type(e).__name__])[0]})")
    if not isinstance(saved, dict) or saved.get("script") != "sac_discrete_atari":
        fail(f"--eval-model {args.eval_model}: not a model saved by sac_discrete_atari.py --save-model")
    env_id = saved["args"]["env_id"]
    torch.set_num_threads(args.threads)
    n_actions = check_env(env_id)
    env = make_env(env_id, train=False, render=args.capture_video)
    actor = Actor(n_actions)
    actor.load_state_dict(saved["actor"])
    video_dir = None
    if args.capture_video:
        video_dir = f"videos/{env_id.replace('/', '-').replace(':', '-')}__{args.exp_name}__eval__{int(time.time())}"
    video = f"{video_dir}/eval" if video_dir else None
    torch.manual_seed(args.seed)  # --no-eval-greedy's draws from pi: the same games for the same --seed
    returns, lengths = evaluate(actor, env, args.eval_episodes, args.seed, args.eval_greedy, args.eval_epsilon, video)
    env.close()
    print(f"{env_id}: score {returns.mean():.1f} +- {returns.std():.1f}, length {lengths.mean():.0f} "
          f"over {args.eval_episodes} games" + (f"; video in {video_dir}/" if video_dir else ""))  # fmt: skip


def parse_args(argv: list[str]) -> Args:
    """The command line as Args. --help shows the Algorithm's flags and then the RunOptions', in two groups, under a
    line that names the docs; every flag keeps its plain name (--gamma, not --algorithm.gamma)."""

    def both(algorithm: tyro.conf.OmitArgPrefixes[Algorithm], run: tyro.conf.OmitArgPrefixes[RunOptions]) -> Args:
        return Args(**asdict(algorithm), **asdict(run))

    description = (
        "SAC-Discrete on Atari (arXiv 1910.07207).\n\n"
        "Docs, every flag and the paper beside the code: docs/sac_discrete_atari.md"
    )
    return tyro.cli(both, args=argv, description=description)


def main(argv: list[str]) -> None:
    """--eval-model evaluates a saved model; otherwise train, a new run or the one --resume names."""
    args, given = parse_args(argv), flags_given(argv)
    if args.eval_model:
        return evaluate_saved_model(args)
    args, checkpoint = load_checkpoint(args, given) if args.resume else (args, None)
    check_inputs(args, given)
    train(args, checkpoint)


if __name__ == "__main__":
    main(sys.argv[1:])
