"""Soft Actor-Critic, the original algorithm (SAC v1) with a state-value network, in one file.

Follows "Soft Actor-Critic: Off-Policy Maximum Entropy Deep Reinforcement Learning with a Stochastic Actor"
(Haarnoja et al., arXiv 1801.01290), Algorithm 1 and the hyperparameters of its Appendix D: a state-value
network V_psi with a Polyak-averaged target V_psi_bar, twin soft Q-functions Q_theta1, Q_theta2 (no Q
targets: the Q target bootstraps from V_psi_bar), and a tanh-squashed Gaussian policy pi_phi.

The temperature is fixed through the reward scale, as in the paper: rewards are multiplied by
--reward-scale and alpha = 1. Scaling the rewards by c with alpha = 1 has the same optimal policy as
unscaled rewards with alpha = 1/c (every soft value is then c times larger), so the default scale 5
is a temperature of 0.2. Learning differs: from the same initial weights and learning rates, the networks
must reach values c times larger. --autotune learns alpha instead, as SAC v2 (arXiv 1812.05905) does, with the
rewards unscaled unless --reward-scale is given.

The policy always acts in [-1, 1]^|A|; each environment's action space is mapped onto that cube at the
environment boundary (gymnasium's RescaleAction), so the networks never see the env's own bounds.

Run:  python sac_v1_value.py --env-id Hopper-v5 --seed 1      (all flags: --help)
      python sac_v1_value.py --env-id dm_control/cartpole-swingup-v0   (DeepMind Control, through Shimmy)
      The first updates wait for torch.compile (20-60 s, printed); --no-compile runs the same update eagerly.
Logs: TensorBoard under runs/{env_id}__{exp_name}__{seed}__{time}/ (tensorboard --logdir runs):
      charts/ (episodic return and length of every finished episode, SPS), eval/ (deterministic policy),
      losses/ (value, critic and actor losses, V and Q values, and alpha), written every 100 environment steps, in
      the unscaled problem's units: values divided by c, squared losses by c^2, alpha is the temperature in effect,
      alpha / c (0.2 at the default scale).
"""

import difflib
import functools
import gc
import importlib
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
import warnings
import zlib
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter


# The flags. Each field's help is what --help prints; one longer than a line is one string in parentheses (its pieces
# join into one), since a docstring's line breaks would be printed as they are.
@dataclass
class Algorithm:
    """SAC's hyperparameters, and the environment and budget it learns on"""

    env_id: str = "Hopper-v5"
    (
        "gymnasium id of an environment with a bounded Box action space: MuJoCo (Hopper-v5, ...), classic control "
        "(Pendulum-v1, MountainCarContinuous-v0), DeepMind Control through Shimmy (dm_control/cartpole-swingup-v0, "
        '...), or any registered env with a vector (or dict-of-vectors) observation; "module:Id" imports module first'
    )
    total_timesteps: int = 1_000_000
    """total environment steps, counted over all sub-environments"""
    num_envs: int = 1
    """number of parallel sub-environments; --gradient-steps gradient updates are made per step of all of them"""
    buffer_size: int = 1_000_000
    """replay buffer capacity, in transitions"""
    gamma: float = 0.99
    """discount factor gamma"""
    tau: float = 0.005
    """Polyak averaging coefficient tau of the target value network"""
    batch_size: int = 256
    """minibatch size of each gradient update"""
    gradient_steps: int = 1
    (
        "gradient updates per step of all the sub-environments, each on its own minibatch (Stable-Baselines3's and "
        "SBX's gradient_steps): the update-to-data ratio with --num-envs 1, this / --num-envs with more"
    )
    learning_starts: int = 1_000
    """environment steps of uniformly random actions before learning starts"""
    policy_lr: float = 3e-4
    """learning rate of the policy (and of log-alpha with --autotune)"""
    q_lr: float = 3e-4
    """learning rate of the Q networks"""
    vf_lr: float = 3e-4
    """learning rate of the value network"""
    target_network_frequency: int = 1
    """Polyak-update the target value network every this many updates"""
    reward_scale: float | None = None
    (
        "rewards are multiplied by this (the inverse temperature, alpha = 1/scale): 5 for Hopper, Walker2d, "
        "HalfCheetah and Ant, 20 for Humanoid in the paper. Default: 5, or 1 with --autotune (a learnt alpha takes "
        "the scale's place; a scale would only multiply alpha and the losses by it)"
    )
    autotune: bool = False
    """learn alpha towards the target entropy H-bar = -|A| (SAC v2's rule) instead of fixing it at 1"""
    policy_reg: float = 0.0
    """weight of an L2 penalty on the policy's pre-squash mean and log-std (the authors' code used 1e-3)"""

    def __post_init__(self):
        if self.reward_scale is None:  # not given: its default depends on --autotune
            self.reward_scale = 1.0 if self.autotune else 5.0


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
        "number of CPU threads torch uses for the networks (2 is fastest for 256x256 networks on most CPUs). Several "
        "runs on one machine: give each cores / runs threads (--threads 1 for two runs on 2 cores); more threads than "
        "cores in all make every run crawl (docs/speed.md: Several runs on one machine)"
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
    """record the first episode of each evaluation to videos/{run_name}/"""
    save_model: bool = False
    """save the networks, log-alpha and the args to runs/{run_name}/{exp_name}.pt at the end"""
    eval_model: str | None = None
    """path of a model saved by --save-model: evaluate it (no training) and exit"""
    eval_frequency: int = 10_000
    """evaluate the deterministic policy every this many environment steps (and at the end)"""
    eval_episodes: int = 10
    """number of episodes of each evaluation"""
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
# The environment: the policy acts in [-1, 1]^|A|, mapped onto the env's own bounds here.
# ----------------------------------------------------------------------------------------------------
def make_env(env_id: str, render: bool = False) -> gym.Env:
    env = gym.make(env_id, render_mode="rgb_array" if render else None)
    if isinstance(env.observation_space, gym.spaces.Dict):
        # DeepMind Control observes a dict of arrays: the networks get them as one vector, in the Dict space's key
        # order, which is alphabetical (gymnasium sorts the keys Shimmy gives it): walker = height (1),
        # orientations (14), velocity (9). A 1,000-step episode ends in a truncation, which bootstraps.
        env = gym.wrappers.FlattenObservation(env)
    if is_dm_control(env):  # videos in real time: one frame per control step (Shimmy says 10 fps for cheetah's 100)
        env.metadata = {**env.metadata, "render_fps": round(1 / env.unwrapped._env.control_timestep())}
    if render:
        follow_the_robot(env)
    one = np.ones(env.action_space.shape, dtype=env.action_space.dtype)  # float32 (MuJoCo) or float64 (DMC)
    return gym.wrappers.RescaleAction(env, -one, one)


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


def step_envs(envs: gym.vector.VectorEnv, actions: np.ndarray) -> EnvStep:
    """Step all sub-envs."""
    next_obs, rewards, terminations, truncations, infos = envs.step(actions)
    real_next_obs = next_obs.copy()
    for i in np.flatnonzero(infos.get("_final_obs", ())):
        real_next_obs[i] = infos["final_obs"][i]
    return EnvStep(next_obs, rewards, terminations, truncations, real_next_obs)


# ----------------------------------------------------------------------------------------------------
# The replay buffer D: preallocated tensors on the training device, sampled there.
# ----------------------------------------------------------------------------------------------------
class Batch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


class ReplayBuffer:
    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.capacity, self.device, self.pos, self.size = capacity, device, 0, 0
        self.obs = torch.zeros((capacity, obs_dim), device=device)
        self.actions = torch.zeros((capacity, act_dim), device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.next_obs = torch.zeros((capacity, obs_dim), device=device)
        self.terminations = torch.zeros(capacity, device=device)

    def add(self, obs, actions, rewards, next_obs, terminations) -> None:
        """Store one transition per sub-env (tensors or arrays), overwriting the oldest when full."""
        n = len(rewards)
        idx = torch.arange(self.pos, self.pos + n, device=self.device) % self.capacity
        for store, value in zip(
            (self.obs, self.actions, self.rewards, self.next_obs, self.terminations),
            (obs, actions, rewards, next_obs, terminations),
            strict=True,
        ):
            store[idx] = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        idx = torch.randint(0, self.size, (batch_size,), device=self.device)
        return Batch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminations[idx])

    def state_dict(self) -> dict:
        """For a checkpoint: the filled part only (see filled_part)."""
        return {"pos": self.pos, "size": self.size, **{name: filled_part(getattr(self, name), self.size)
                                                       for name in Batch._fields}}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.size = state["pos"], state["size"]
        for name in Batch._fields:
            getattr(self, name)[: self.size] = state[name].to(self.device)


# ----------------------------------------------------------------------------------------------------
# The networks: the state value V_psi(s), soft Q-functions Q_theta(s, a), the tanh-Gaussian policy pi_phi(a|s).
# ----------------------------------------------------------------------------------------------------
def stacked_linear(fan_in: int, fan_out: int, n: int) -> tuple[nn.Parameter, nn.Parameter]:
    """n linear layers as one weight (n, fan_in, fan_out) and one bias (n, 1, fan_out), each initialised as
    nn.Linear initialises its own."""
    with torch.no_grad():
        layers = [nn.Linear(fan_in, fan_out) for _ in range(n)]
        weight = torch.stack([layer.weight.T for layer in layers])
        bias = torch.stack([layer.bias.unsqueeze(0) for layer in layers])
    return nn.Parameter(weight), nn.Parameter(bias)


class SoftQNetworks(nn.Module):
    """The twin soft Q-functions Q_theta1 and Q_theta2: two MLPs (s, a) -> 256 -> 256 -> 1 with their own
    weights, stored stacked so that each layer of both is one batched matmul (torch.baddbmm): half the ops of
    two separate networks, the same numbers (tests/test_math.py checks it against two plain nn.Sequential).
    forward returns shape (2, batch): row i is Q_theta_i(s, a), so `q1, q2 = qf(obs, actions)` unpacks it."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, n_critics: int = 2):
        super().__init__()
        self.w1, self.b1 = stacked_linear(obs_dim + act_dim, hidden, n_critics)
        self.w2, self.b2 = stacked_linear(hidden, hidden, n_critics)
        self.w3, self.b3 = stacked_linear(hidden, 1, n_critics)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, actions], dim=1).expand(len(self.w1), -1, -1)  # the same (s, a) for every critic
        h = F.relu(torch.baddbmm(self.b1, x, self.w1))  # baddbmm(b, x, W) = x @ W + b, critic by critic
        h = F.relu(torch.baddbmm(self.b2, h, self.w2))
        return torch.baddbmm(self.b3, h, self.w3).squeeze(2)


class ValueNetwork(nn.Module):
    """The soft state-value function V_psi: an MLP s -> 256 -> 256 -> 1; forward returns shape (batch,)."""

    def __init__(self, obs_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))  # fmt: skip

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(1)


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def squashed_gaussian_log_prob(u: torch.Tensor, eps: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) of a = tanh(u), u = mean + std * eps, by the change of variables (Appendix C):
    log pi(a|s) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)."""
    gaussian = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(1)  # (u - mean) / std = eps
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)): exact, and finite even where tanh(u) rounds to +-1
    log_det_jacobian = (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(1)
    return gaussian - log_det_jacobian


class Actor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, act_dim)
        self.log_std = nn.Linear(hidden, act_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(obs)
        # squash log-std smoothly into [LOG_STD_MIN, LOG_STD_MAX]; a hard clip would zero its gradient
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(self.log_std(h)) + 1)
        return self.mean(h), log_std

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """a = tanh(mean + std * eps), eps ~ N(0, I): the reparameterisation a = f_phi(eps; s) (Eq. 11).
        Returns a, log pi(a|s), and the Gaussian's (mean, log_std), which the optional regulariser penalises."""
        mean, log_std = self(obs)
        eps = torch.randn_like(mean)
        u = mean + log_std.exp() * eps
        return torch.tanh(u), squashed_gaussian_log_prob(u, eps, log_std), (mean, log_std)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action: the mode of the Gaussian, squashed, tanh(mean)."""
        return torch.tanh(self(obs)[0])


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
# The losses and the update (equation numbers of arXiv 1801.01290).
# ----------------------------------------------------------------------------------------------------
def soft_value_target(q1_pi, q2_pi, log_pi, alpha) -> torch.Tensor:
    """The target of V_psi(s): E_{a~pi}[ min_i Q_theta_i(s, a) - alpha log pi(a|s) ], estimated with one fresh
    action a ~ pi_phi(.|s) (Eqs. 5-6; the paper writes alpha = 1 and uses the twin minimum, Section 4.2)."""
    return torch.min(q1_pi, q2_pi) - alpha * log_pi


def soft_q_target(rewards, terminations, next_v, reward_scale, gamma) -> torch.Tensor:
    """Q-hat(s, a) = c r(s, a) + gamma (1 - d) V_psi_bar(s')  (Eq. 8), with the reward scale c. The scale
    enters here only: it is the inverse temperature. d is 1 only for a true termination: a time-limit
    truncation bootstraps like any other step."""
    return reward_scale * rewards + gamma * (1.0 - terminations) * next_v


def alpha_loss_fn(log_alpha, log_pi, target_entropy) -> torch.Tensor:
    """--autotune only: J(alpha) = E_{a~pi}[ -alpha log pi(a|s) - alpha H-bar ]  (Eq. 18 of arXiv 1812.05905),
    with alpha = exp(log_alpha) > 0. Its gradient lowers alpha while the policy's entropy -log pi is above H-bar
    and raises it below."""
    return (-log_alpha.exp() * (log_pi.detach() + target_entropy)).mean()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """psi_bar <- tau psi + (1 - tau) psi_bar, in one fused op over all parameters."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


@dataclass
class Agent:
    """What SAC v1 learns: the policy pi_phi, the critics Q_theta1,2, the value network V_psi and its target V_psi_bar,
    log alpha (learnt with --autotune only), and one Adam with a parameter group per network."""

    actor: Actor
    qf: SoftQNetworks
    vf: ValueNetwork
    vf_target: ValueNetwork
    log_alpha: torch.Tensor  # alpha = exp(log_alpha): 1 (rewards scaled instead), or learnt with --autotune
    optimizer: Adam  # groups psi, theta, phi (and log_alpha), each with its own loss and learning rate
    target_entropy: float  # H-bar = -|A|, for --autotune

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


def update(batch: Batch, agent: Agent, args: Args, update_targets: bool) -> dict:
    """One gradient step of Algorithm 1 on J_V(psi), J_Q(theta_1), J_Q(theta_2) and J_pi(phi) (and J(alpha) with
    --autotune), all taken at the current parameters, as the authors' implementation does; then, when due, the target
    value network's update. With --compile, the whole of it is one compiled graph. Returns the losses and alpha, as
    tensors (reading them would sync the device)."""
    alpha = agent.log_alpha.detach().exp()
    # One fresh action a~ = f_phi(eps; s) ~ pi_phi(.|s) per state, reparameterised (Eq. 11): J_V uses it as a
    # constant, J_pi differentiates through it.
    actions_pi, log_pi, (mean, log_std) = agent.actor.sample(batch.obs)
    q1_pi, q2_pi = agent.qf(batch.obs, actions_pi)

    # J_V(psi) = E_s[ 1/2 (V_psi(s) - (min_i Q_theta_i(s, a~) - alpha log pi(a~|s)))^2 ]  (Eq. 5)
    vf_values = agent.vf(batch.obs)
    vf_loss = 0.5 * F.mse_loss(vf_values, soft_value_target(q1_pi, q2_pi, log_pi, alpha).detach())

    # J_Q(theta_i) = E_D[ 1/2 (Q_theta_i(s, a) - Q-hat(s, a))^2 ]  (Eq. 7), the target from V_psi_bar (Eq. 8)
    with torch.no_grad():
        next_v = agent.vf_target(batch.next_obs)
        y = soft_q_target(batch.rewards, batch.terminations, next_v, args.reward_scale, args.gamma)
    qf1_values, qf2_values = agent.qf(batch.obs, batch.actions)
    qf1_loss = 0.5 * F.mse_loss(qf1_values, y)
    qf2_loss = 0.5 * F.mse_loss(qf2_values, y)

    # J_pi(phi) = E_{s, eps}[ alpha log pi_phi(f_phi(eps; s)|s) - Q(s, f_phi(eps; s)) ]  (Eq. 12), with
    # Q = min_i Q_theta_i as the paper's Section 4.2 says (the authors' code used Q_theta1 alone here).
    actor_loss = (alpha * log_pi - torch.min(q1_pi, q2_pi)).mean()
    if args.policy_reg > 0:  # the authors' optional L2 penalty on the Gaussian's mean and log-std
        actor_loss = actor_loss + args.policy_reg * 0.5 * (mean.pow(2).mean() + log_std.pow(2).mean())

    # Each network descends its own loss, every gradient taken at the current parameters: psi J_V, theta J_Q,
    # phi J_pi (through dQ/da only: J_pi gives the Q weights no gradient) and, with --autotune, log_alpha J(alpha).
    if args.autotune:
        alpha_loss = alpha_loss_fn(agent.log_alpha, log_pi, agent.target_entropy)
        agent.optimizer.step(vf=vf_loss, qf=qf1_loss + qf2_loss, actor=actor_loss, log_alpha=alpha_loss)
    else:
        agent.optimizer.step(vf=vf_loss, qf=qf1_loss + qf2_loss, actor=actor_loss)
    if update_targets:
        polyak_update(agent.vf_target, agent.vf, args.tau)
    # Logged in the units of the unscaled problem, so that a v1 curve reads beside SAC v2's: rewards scaled by c with
    # alpha are unscaled rewards with temperature alpha / c, and every soft value, V, Q and J_pi (and J(alpha)) is
    # c times the unscaled one, the squared losses c^2 times (c = 1 with --autotune: nothing changes).
    c = args.reward_scale
    losses = {"vf_loss": vf_loss.detach() / c**2, "vf_values": vf_values.detach().mean() / c,
              "qf1_values": qf1_values.detach().mean() / c, "qf2_values": qf2_values.detach().mean() / c,
              "qf1_loss": qf1_loss.detach() / c**2, "qf2_loss": qf2_loss.detach() / c**2,
              "qf_loss": (qf1_loss + qf2_loss).detach() / c**2, "actor_loss": actor_loss.detach() / c,
              "alpha": agent.log_alpha.detach().exp() / c}  # fmt: skip
    if args.autotune:
        losses["alpha_loss"] = alpha_loss.detach() / c
    return losses


def make_agent(args: Args, obs_dim: int, act_dim: int, device: torch.device) -> Agent:
    """The networks at their initial weights, psi_bar = psi, alpha = 1, the Adam."""
    actor = Actor(obs_dim, act_dim).to(device)
    qf = SoftQNetworks(obs_dim, act_dim).to(device)
    vf, vf_target = ValueNetwork(obs_dim).to(device), ValueNetwork(obs_dim).to(device)
    vf_target.load_state_dict(vf.state_dict())  # psi_bar <- psi
    # Temperature: alpha = 1 with rewards scaled by --reward-scale; with --autotune, alpha = exp(log_alpha) is
    # learnt from 1 (exp keeps it > 0 for any gradient step on log_alpha).
    log_alpha = torch.zeros(1, device=device, requires_grad=args.autotune)
    # One Adam, a parameter group per network at its own learning rate: the same steps as one optimizer each.
    groups = {"vf": (vf.parameters(), args.vf_lr), "qf": (qf.parameters(), args.q_lr),
              "actor": (actor.parameters(), args.policy_lr)}  # fmt: skip
    if args.autotune:
        groups["log_alpha"] = ([log_alpha], args.policy_lr)
    return Agent(actor, qf, vf, vf_target, log_alpha, optimizer=Adam(**groups), target_entropy=-float(act_dim))


# ----------------------------------------------------------------------------------------------------
# Training: Algorithm 1 of arXiv 1801.01290.
# ----------------------------------------------------------------------------------------------------
@dataclass
class TrainState:
    """What the loop carries from step to step; with the replay buffer and the environments, all a checkpoint holds."""

    agent: Agent
    obs: torch.Tensor  # s_t of each sub-env
    global_step: int = 0  # environment steps so far, over all sub-envs
    n_updates: int = 0  # gradient updates so far
    losses: dict = field(default_factory=dict)  # the last update's losses and alpha, as tensors
    last_eval: "Evaluation | None" = None

    def state_dict(self) -> dict:
        return {"agent": self.agent.state_dict(), "obs": self.obs.cpu(), "global_step": self.global_step,
                "n_updates": self.n_updates, "losses": {name: value.cpu() for name, value in self.losses.items()},
                "last_eval": tuple(self.last_eval) if self.last_eval else None}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.obs = state["obs"].to(self.obs.device)
        self.global_step, self.n_updates = state["global_step"], state["n_updates"]
        self.losses = {name: value.to(self.obs.device) for name, value in state["losses"].items()}
        self.last_eval = Evaluation(*state["last_eval"]) if state["last_eval"] else None


def train(args: Args, checkpoint: dict | None = None) -> None:
    run = Run(args, checkpoint)  # the plumbing: seeds, device, run directory, TensorBoard, evaluation, signals
    envs = make_vector_env(args)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    agent = make_agent(args, obs_dim, act_dim, run.device)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, run.device)
    obs, _ = envs.reset(seed=args.seed)
    state = TrainState(agent, obs=torch.as_tensor(obs, dtype=torch.float32, device=run.device))
    if checkpoint:  # every network, optimizer, random generator and environment as the checkpoint left them
        restore_checkpoint(checkpoint, run, state, rb, envs)
    sac_update = compiled_update(args, agent)  # update(batch, agent, args, ...), compiled unless --no-compile
    quiet_garbage_collector()

    while not run.finished(state):
        state.global_step += args.num_envs
        # Act: uniformly random actions for the first learning_starts steps, then a_t ~ pi_phi(a_t|s_t).
        if state.global_step <= args.learning_starts:
            actions = torch.rand((args.num_envs, act_dim), device=run.device) * 2 - 1
        else:
            with torch.no_grad():
                actions = agent.actor.sample(state.obs)[0]
        step = step_envs(envs, actions.cpu().numpy())
        run.record(step, state.global_step)  # logs finished episodes; a non-finite observation or reward stops

        # Store (s_t, a_t, r_t, s_{t+1}, terminated) in D. Where an episode ended, s_{t+1} is its real last
        # observation, not the first one of the next episode that next_obs holds; only a termination ends
        # the bootstrap (a truncation is stored with terminated = 0).
        rb.add(state.obs, actions, step.rewards, step.real_next_obs, step.terminations)
        state.obs = torch.as_tensor(step.next_obs, dtype=torch.float32, device=run.device)

        # Learn: a gradient step on V, both Q and pi (and alpha), then the target value network's update;
        # --gradient-steps of them per env step.
        if state.global_step > args.learning_starts:
            for _ in range(args.gradient_steps):
                state.n_updates += 1
                targets_due = state.n_updates % args.target_network_frequency == 0
                state.losses |= sac_update(rb.sample(args.batch_size), update_targets=targets_due)

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


def check_inputs(args: Args, given: set[str] | None = None) -> tuple[int, int]:
    """Validate the flags and the environment's spaces; return (obs_dim, act_dim). `given`: the flags on the command
    line (a --compile given where compiling cannot work is refused; the default one becomes --no-compile)."""
    positive = ["total_timesteps", "num_envs", "buffer_size", "batch_size", "gradient_steps",
                "target_network_frequency", "eval_frequency", "eval_episodes", "threads"]  # fmt: skip
    for name in positive:
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ["policy_lr", "q_lr", "vf_lr", "reward_scale"]:
        if not getattr(args, name) > 0 or not math.isfinite(getattr(args, name)):
            fail(f"--{name.replace('_', '-')} must be a positive number, got {getattr(args, name)}")
    if not 0 <= args.policy_reg < math.inf:
        fail(f"--policy-reg must be a non-negative number, got {args.policy_reg}")
    if not 0 <= args.gamma < 1:
        fail(f"--gamma must be in [0, 1), got {args.gamma}")
    if args.checkpoint_frequency < 0:
        fail(f"--checkpoint-frequency must be 0 (off) or positive, got {args.checkpoint_frequency}")
    if not 0 < args.tau <= 1:
        fail(f"--tau must be in (0, 1], got {args.tau}")
    if args.batch_size > args.buffer_size:
        fail(f"--batch-size ({args.batch_size}) must not exceed --buffer-size ({args.buffer_size})")
    if args.learning_starts < args.batch_size:
        fail(f"--learning-starts ({args.learning_starts}) must be at least --batch-size ({args.batch_size})")
    last_step = args.total_timesteps // args.num_envs * args.num_envs  # the loop's last global_step
    if args.learning_starts >= last_step:
        fail(f"--learning-starts ({args.learning_starts}) must be below --total-timesteps "
             f"({args.total_timesteps}, a multiple of --num-envs {args.num_envs}), or nothing is learned")  # fmt: skip
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
    env = make_raw_env_or_fail(args.env_id)  # the env's own spaces, before any wrapper of ours
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if isinstance(act_space, gym.spaces.Discrete):
        fail(f"--env-id {args.env_id} has a discrete action space ({act_space}); use sac_discrete_atari.py")
    if not isinstance(act_space, gym.spaces.Box) or len(act_space.shape) != 1:
        fail(f"--env-id {args.env_id}: the action space must be a 1-D Box, got {act_space}")
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        fail(f"--env-id {args.env_id}: the action space {act_space} is unbounded; SAC needs finite bounds")
    if not np.all(act_space.low < act_space.high):
        fail(f"--env-id {args.env_id}: the action space {act_space} has a dimension with low >= high")
    if isinstance(obs_space, gym.spaces.Dict) and all(isinstance(s, gym.spaces.Box) for s in obs_space.values()):
        obs_space = gym.spaces.flatten_space(obs_space)  # as make_env flattens it (DeepMind Control)
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        fail(f"--env-id {args.env_id}: the observation space must be a 1-D Box (a vector), got {obs_space}")
    return obs_space.shape[0], act_space.shape[0]


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


def make_raw_env_or_fail(env_id: str) -> gym.Env:
    """gym.make, with an unknown id or a missing extra turned into a one-line error. As in gym.make, an id may name
    the module that registers it first: "my_package.envs:MyEnv-v0"."""
    module, _, name = env_id.rpartition(":")
    if name.startswith("dm_control/"):
        register_dm_control()
    try:
        if module:
            importlib.import_module(module)
        gym.spec(name)
    except ImportError as e:
        fail(f"--env-id {env_id}: cannot import {module} ({e})")
    except gym.error.Error:
        close = difflib.get_close_matches(name, gym.registry, n=1)  # dm_control/cheetah-run: dm_control/cheetah-run-v0
        hint = f"did you mean {close[0]!r}? " if close else ""
        registers = ", shimmy; gymnasium.register_envs(shimmy)" if name.startswith("dm_control/") else ""
        fail(f"--env-id {env_id!r} is not a registered gymnasium environment; {hint}list the ids with: "
             f"python -c \"import gymnasium{registers}; gymnasium.pprint_registry()\"")  # fmt: skip
    try:
        return gym.make(env_id)
    except gym.error.DependencyNotInstalled as e:
        fail(f"--env-id {env_id}: {e}")
    except Exception as e:  # the env's own constructor failed: one line, not its traceback
        fail(f"--env-id {env_id}: gymnasium cannot make it: {(str(e).splitlines() or [type(e).__name__])[0]}")


def register_dm_control() -> None:
    """Shimmy registers the dm_control/... ids. dm_control renders through EGL when there is no display (importing it
    would otherwise warn that GLFW has none). Importing dm_control.composer tells the whole process to print every
    DeprecationWarning (some 14 of torch.compile's own would then fill a run's log): the filters are put back."""
    use_headless_rendering()
    try:
        with warnings.catch_warnings():  # restores warnings.filters on exit
            import dm_control  # noqa: F401
            import shimmy
    except ImportError:
        fail("the dm_control/... ids need Shimmy and dm_control: pip install 'shimmy[dm-control]'")
    gym.register_envs(shimmy)


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
        if args.capture_video:
            use_headless_rendering()
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
        self.log, self.progress = RunLog(self.writer, args.num_envs), Progress(args.total_timesteps)
        first_step = checkpoint["state"]["global_step"] if checkpoint else 0
        self.provenance = Provenance(self.dir, args, self.device, first_step)
        self.eval_env = make_env(args.env_id, render=args.capture_video)
        self.stop = StopSignals()
        self.last_step = args.total_timesteps // args.num_envs * args.num_envs

    def finished(self, state: "TrainState") -> bool:
        """The last step is done, or a stop was asked for (SIGINT, SIGTERM)."""
        return state.global_step >= self.last_step or self.stop.requested is not None

    def record(self, step: EnvStep, global_step: int) -> None:
        """What the envs returned: a NaN or an infinity stops the run; the episodes that ended are logged."""
        self.log.check_finite(global_step, observation=step.real_next_obs, reward=step.rewards)
        self.log.episodes(step.rewards, step.terminations | step.truncations, global_step)

    def end_of_step(self, state: "TrainState", rb: ReplayBuffer, envs: gym.vector.VectorEnv) -> None:
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
        began = time.time()
        returns, lengths = evaluate(actor, self.eval_env, self.args.eval_episodes, self.args.seed, video)
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
            print(f"final evaluation at step {state.global_step}: return {state.last_eval.mean:.1f} +- "
                  f"{state.last_eval.std:.1f} over {self.args.eval_episodes} episodes")  # fmt: skip
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


def use_headless_rendering() -> None:
    """MuJoCo renders through GLFW by default, which needs a display; without one, use EGL."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")


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
    nodes), so it scanned the whole heap several times per step (~10% of the time). Objects made before training
    are frozen out of its scans, and it runs every 50,000 new objects instead."""
    gc.freeze()
    gc.set_threshold(50_000)


def crossings(global_step: int, step_size: int, every: int) -> int:
    """How many multiples of `every` the last step (of step_size env steps, up to global_step) reached: 0 or 1 when
    every >= step_size, more when a step of many sub-envs passes several."""
    return global_step // every - (global_step - step_size) // every


class RunLog:
    """What the loop writes to TensorBoard: every finished episode of every sub-env, and every 100 env
    steps the losses (the loop's only device->host reads) and the env steps per second since last time."""

    def __init__(self, writer: SummaryWriter, num_envs: int):
        self.writer, self.num_envs = writer, num_envs
        self.returns, self.lengths = np.zeros(num_envs), np.zeros(num_envs, dtype=int)
        self.recent = deque(maxlen=10)  # the last 10 episode returns, for the console
        self.sps_time, self.sps_step = time.time(), 0

    def episodes(self, rewards: np.ndarray, dones: np.ndarray, global_step: int) -> None:
        self.returns += rewards
        self.lengths += 1
        for i in np.flatnonzero(dones):
            self.writer.add_scalar("charts/episodic_return", self.returns[i], global_step)
            self.writer.add_scalar("charts/episodic_length", self.lengths[i], global_step)
            self.recent.append(self.returns[i])
            self.returns[i], self.lengths[i] = 0.0, 0

    def recent_return(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def state_dict(self) -> dict:
        """The episodes in progress and the recent returns, for a checkpoint."""
        return {"returns": torch.from_numpy(self.returns.copy()), "lengths": torch.from_numpy(self.lengths.copy()),
                "recent": [float(r) for r in self.recent], "sps_step": self.sps_step}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.returns, self.lengths = state["returns"].numpy().copy(), state["lengths"].numpy().copy()
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
    mean: float  # the mean return over --eval-episodes episodes
    std: float


def evaluate(actor: Actor, env: gym.Env, episodes: int, seed: int, video: str | None = None):
    """Run the deterministic policy tanh(mean) for whole episodes; return (returns, lengths). The first episode is
    recorded to `video` ({directory}/{file name prefix}), if given.
    Every evaluation of a run (and --eval-model with the run's --seed) resets the env with the same seed,
    seed + 10_000 (apart from the training envs' seeds), so it meets the same initial states each time."""
    device, returns, lengths, frames = next(actor.parameters()).device, [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + 10_000 if episode == 0 else None)
        done, episode_return, length = False, 0.0, 0
        while not done:
            if video and episode == 0:
                frames.append(env.render())
            with torch.no_grad():
                action = actor.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])
            obs, reward, terminated, truncated, _ = env.step(action[0].cpu().numpy())
            episode_return, length, done = episode_return + float(reward), length + 1, terminated or truncated
        returns.append(episode_return)
        lengths.append(length)
    if frames:
        from gymnasium.utils.save_video import save_video

        video_dir, name = os.path.split(video)
        save_video(frames, video_dir, fps=env.metadata.get("render_fps", 30), name_prefix=name, save_logger=None)
    return np.array(returns), np.array(lengths)


def save_model(args: Args, run_dir: str, agent: Agent) -> None:
    """The networks and log alpha (a checkpoint holds the Adam too)."""
    path = f"{run_dir}/{args.exp_name}.pt"
    networks = {name: part.state_dict() for name, part in vars(agent).items() if isinstance(part, nn.Module)}
    torch.save({"script": "sac_v1_value", "args": asdict(args), **networks,
                "log_alpha": agent.log_alpha.detach().cpu()}, path)  # fmt: skip
    print(f"model saved to {path}; evaluate it with: python {os.path.basename(__file__)} --eval-model {path}")


# Checkpoints: everything the run needs to go on exactly as if it had not stopped.
CHECKPOINT_FORMAT = 3  # 3: TrainState's state_dict; 2: the same parts, laid out flat; 1 (no "format"): torch.optim
RESUMABLE = {"resume", "total_timesteps", "checkpoint_frequency", "checkpoint_on_stop", "eval_frequency",
             "eval_episodes", "capture_video", "save_model", "threads", "cuda", "compile", "cudagraphs", "track",
             "wandb_project_name", "wandb_entity"}  # fmt: skip


def save_checkpoint(run: Run, state: TrainState, rb: ReplayBuffer, envs: gym.vector.VectorEnv) -> None:
    """Write {run.dir}/checkpoint.pt atomically: into a temporary file, flushed to the disk, then renamed over the
    previous checkpoint, so that a crash or a full disk mid-write leaves the previous checkpoint whole."""
    run.log.check_finite(state.global_step, **{name: value.item() for name, value in state.losses.items()})
    checkpoint = {
        "script": "sac_v1_value", "format": CHECKPOINT_FORMAT, "args": asdict(run.args), "run_name": run.name,
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
    try:  # mmap: the buffer is read from the file as it is copied, not all into memory first
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # missing, truncated, corrupted: whatever the cause, one line for the user
        fail(f"--resume {path}: cannot load it ({(str(e).splitlines() or [type(e).__name__])[0]})")
    script = checkpoint.get("script") if isinstance(checkpoint, dict) else None
    if script != "sac_v1_value" or "run_name" not in checkpoint:
        fail(f"--resume {path}: not a checkpoint of sac_v1_value.py"
             + (f" (it is {script}.py's)" if script else ""))  # fmt: skip
    if checkpoint.pop("checksum", None) != checksum(checkpoint):
        fail(f"--resume {path}: the file is corrupted (its contents do not match the checksum written with them)")
    if checkpoint.get("format", 1) != CHECKPOINT_FORMAT:
        found = checkpoint.get("format", 1)
        fail(f"--resume {path}: written by an older sac_v1_value.py (checkpoint format {found}, this one "
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


def restore_checkpoint(checkpoint: dict, run: Run, state: TrainState, rb: ReplayBuffer, envs) -> None:
    """Put the checkpoint's state back into the freshly built run; a sub-env whose own state could not be saved starts
    a new episode. The dict is emptied: with it goes its memory map of the file (the buffer's part)."""
    state.load_state_dict(checkpoint["state"])
    rb.load_state_dict(checkpoint["buffer"])
    run.log.load_state_dict(checkpoint["log"])
    for i, (env, env_saved) in enumerate(zip(envs.envs, checkpoint["envs"], strict=True)):
        if not set_env_state(env, env_saved):
            state.obs[i] = torch.as_tensor(env.reset()[0], dtype=torch.float32, device=run.device)
            run.log.returns[i], run.log.lengths[i] = 0.0, 0
            print(f"sub-env {i}: the state of {env.spec.id} cannot be restored; it starts a new episode")
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


def env_state(env: gym.Env) -> dict:
    """A sub-env's own state: its random generators, its time limit's step count and, where it can be read, the
    simulation: MuJoCo's whole integration state (mj_getState), with DeepMind Control's step count and the model
    fields its tasks set per episode, or a classic-control env's attributes."""
    base, limit = env.unwrapped, time_limit_of(env)
    state = {"elapsed_steps": limit._elapsed_steps if limit else None,
             "action_space": env.action_space.np_random.bit_generator.state}  # fmt: skip
    if is_dm_control(env):  # Shimmy's np_random is dm_control's generator, a numpy RandomState
        dm, physics = base._env, base._env.physics
        keys, *rest = base.np_random.get_state()[1:]  # MT19937: 624 keys, position, gaussian flag and value
        state["mujoco"] = mujoco_state(physics.model.ptr, physics.data.ptr)
        state["dm_control"] = {"model": {f: torch.from_numpy(getattr(physics.model, f).copy()) for f in DM_MODEL},
                               "step_count": dm._step_count, "reset_next_step": dm._reset_next_step,
                               "random": [torch.from_numpy(keys.astype(np.int64)), *rest]}  # fmt: skip
        return state
    if isinstance(base.np_random, np.random.Generator):  # (dm_control's composer envs have a RandomState)
        state["np_random"] = base.np_random.bit_generator.state
    if type(getattr(base, "data", None)).__module__.startswith("mujoco"):
        state["mujoco"] = mujoco_state(base.model, base.data)
    elif type(base).__module__.startswith("gymnasium.envs.classic_control"):
        arrays = {name: torch.from_numpy(v.copy()) for name, v in vars(base).items() if isinstance(v, np.ndarray)}
        numbers = {name: v for name, v in vars(base).items() if type(v) in (bool, int, float)}  # not numpy scalars
        state["attributes"] = {**arrays, **numbers}
    return state


def set_env_state(env: gym.Env, state: dict) -> bool:
    """Put a sub-env back in the state env_state read; False if its simulation could not be saved."""
    base, limit = env.unwrapped, time_limit_of(env)
    if "dm_control" in state:
        dm, physics, saved = base._env, base._env.physics, state["dm_control"]
        for field, value in saved["model"].items():
            getattr(physics.model, field)[...] = value.numpy()
        set_mujoco_state(physics.model.ptr, physics.data.ptr, state["mujoco"])
        physics.forward()  # dm_control steps as mj_step2 then mj_step1: it needs what mj_step1 computed last step
        dm._step_count, dm._reset_next_step = saved["step_count"], saved["reset_next_step"]
        keys, *rest = saved["random"]
        base.np_random.set_state(("MT19937", keys.numpy().astype(np.uint32), *rest))
    elif "mujoco" in state:
        set_mujoco_state(base.model, base.data, state["mujoco"])
    elif "attributes" in state:
        for name, value in state["attributes"].items():
            setattr(base, name, value.numpy() if isinstance(value, torch.Tensor) else value)
    else:
        return False
    if "np_random" in state:
        base.np_random.bit_generator.state = state["np_random"]
    env.action_space.np_random.bit_generator.state = state["action_space"]
    if limit:
        limit._elapsed_steps = state["elapsed_steps"]
    return True


def follow_the_robot(env: gym.Env) -> None:
    """Videos of gymnasium's MuJoCo tasks from the model's "track" camera, which follows the robot's center of mass:
    their default camera stands still (its tracking setting needs a camera type gymnasium does not set), and a hopper
    leaves its view within a second or two. DeepMind Control's: from the model's camera 0, the suite's own view
    (cheetah, walker: "side", which follows the body; reacher: from above), where Shimmy's default is a free camera
    that stands still, which a running cheetah leaves within a second."""
    if is_dm_control(env) and env.unwrapped._env.physics.model.ncam > 0:
        env.unwrapped.render_kwargs.setdefault("camera_id", 0)
    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    if renderer is not None:
        import mujoco

        track = mujoco.mj_name2id(renderer.model, mujoco.mjtObj.mjOBJ_CAMERA, "track")
        if track != -1:
            renderer.camera_id = track


def is_dm_control(env: gym.Env) -> bool:
    """A DeepMind Control suite task through Shimmy. (The composer-based ones, dm_control's locomotion tasks, are not
    covered: a resumed run starts them on a new episode.)"""
    base = env.unwrapped
    return type(getattr(base, "_env", None)).__module__ == "dm_control.rl.control"


# The model fields that dm_control's suite tasks set at each episode's start (targets' positions and sizes, colors,
# damping, tendon wraps, lights): a resumed episode needs them as well as the simulation's state.
DM_MODEL = ("geom_pos", "geom_size", "geom_rgba", "site_pos", "site_size", "site_rgba", "dof_damping", "wrap_prm",
            "light_pos")  # fmt: skip


def mujoco_state(model, data) -> torch.Tensor:
    import mujoco

    values = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
    mujoco.mj_getState(model, data, values, mujoco.mjtState.mjSTATE_INTEGRATION)
    return torch.from_numpy(values)


def set_mujoco_state(model, data, values: torch.Tensor) -> None:
    import mujoco

    mujoco.mj_setState(model, data, values.numpy(), mujoco.mjtState.mjSTATE_INTEGRATION)


def time_limit_of(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper) and not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env if isinstance(env, gym.wrappers.TimeLimit) else None


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
    """--eval-model PATH: load a saved actor, run --eval-episodes deterministic episodes (and a video)."""
    if args.eval_episodes <= 0:
        fail(f"--eval-episodes must be positive, got {args.eval_episodes}")
    try:
        saved = torch.load(args.eval_model, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, truncated, not a torch file: whatever the cause, one line for the user
        fail(f"--eval-model {args.eval_model}: cannot load it ({(str(e).splitlines() or [type(e).__name__])[0]})")
    if not isinstance(saved, dict) or saved.get("script") != "sac_v1_value":
        fail(f"--eval-model {args.eval_model}: not a model saved by sac_v1_value.py --save-model")
    env_id = saved["args"]["env_id"]
    torch.set_num_threads(args.threads)
    if args.capture_video:
        use_headless_rendering()
    make_raw_env_or_fail(env_id).close()
    env = make_env(env_id, render=args.capture_video)
    actor = Actor(env.observation_space.shape[0], env.action_space.shape[0])
    actor.load_state_dict(saved["actor"])
    video_dir = None
    if args.capture_video:  # videos/{env}__{exp_name}__eval__{time}/, the id's '/' and ':' written as '-'
        video_dir = f"videos/{env_id.replace('/', '-').replace(':', '-')}__{args.exp_name}__eval__{int(time.time())}"
    returns, lengths = evaluate(actor, env, args.eval_episodes, args.seed, f"{video_dir}/eval" if video_dir else None)
    env.close()
    print(f"{env_id}: return {returns.mean():.1f} +- {returns.std():.1f}, length {lengths.mean():.0f} "
          f"over {args.eval_episodes} episodes" + (f"; video in {video_dir}/" if video_dir else ""))  # fmt: skip


def parse_args(argv: list[str]) -> Args:
    """The command line as Args. --help shows the Algorithm's flags and then the RunOptions', in two groups, under a
    line that names the docs; every flag keeps its plain name (--gamma, not --algorithm.gamma)."""

    def both(algorithm: tyro.conf.OmitArgPrefixes[Algorithm], run: tyro.conf.OmitArgPrefixes[RunOptions]) -> Args:
        return Args(**asdict(algorithm), **asdict(run))

    description = (
        "SAC v1, with a state-value network (arXiv 1801.01290).\n\n"
        "Docs, every flag and the paper beside the code: docs/sac_v1_value.md"
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
