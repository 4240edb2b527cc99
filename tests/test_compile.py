"""--compile: the compiled update steps compute what the eager ones do (on the CPU, inductor's C++ kernels),
in all three scripts."""

import copy
import math

import pytest
import torch
import torch._inductor.config


def train_a_little(sac, update_q, update_pi, nets, batches):
    """Three rounds of critic step, policy step (with alpha) and Polyak update; the losses and final parameters."""
    actor, qf, qf_target, log_alpha = nets
    q_optimizer = torch.optim.Adam(qf.parameters(), lr=1e-3, fused=True)
    policy_optimizer = torch.optim.Adam([{"params": actor.parameters()}, {"params": [log_alpha]}], lr=1e-3, fused=True)
    alpha, losses = log_alpha.detach().exp(), []
    for i, batch in enumerate(batches):
        torch.manual_seed(100 + i)  # the same noise in both runs
        losses.append(update_q(batch, actor, qf, qf_target, q_optimizer, alpha, 0.99))
        actor_losses, alpha = update_pi(batch.obs, actor, qf, policy_optimizer, alpha, log_alpha, -2.0, True)
        losses.append(actor_losses)
        sac.polyak_update(qf_target, qf, 0.005)
    params = [p.detach().clone() for net in (actor, qf, qf_target) for p in net.parameters()]
    return losses, params + [log_alpha.detach().clone(), alpha]


@pytest.fixture(autouse=True)
def eager_random_numbers():
    """inductor draws its own random numbers unless told to use eager's generator: with it, the same noise eps."""
    with torch._inductor.config.patch(fallback_random=True):
        yield


def random_batches(sac, n=3):
    torch.manual_seed(0)
    return [sac.Batch(obs=torch.randn(64, 5), actions=torch.rand(64, 2) * 2 - 1, rewards=torch.randn(64),
                      next_obs=torch.randn(64, 5), terminations=(torch.rand(64) < 0.2).float())
            for _ in range(n)]  # fmt: skip


def assert_same_run(compiled_losses, eager_losses, compiled_params, eager_params):
    assert [set(losses) for losses in compiled_losses] == [set(losses) for losses in eager_losses]
    for compiled, eager in zip(compiled_losses, eager_losses, strict=True):
        for name in eager:
            torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-5, msg=name)
    for compiled, eager in zip(compiled_params, eager_params, strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)


def test_compiled_updates_equal_eager_updates(sac):
    batches = random_batches(sac)
    actor, qf = sac.Actor(5, 2), sac.SoftQNetworks(5, 2)
    nets = (actor, qf, copy.deepcopy(qf), torch.zeros(1, requires_grad=True))

    eager_updates = sac.compiled_updates(sac.Args())
    compiled_updates = sac.compiled_updates(sac.Args(compile=True))
    assert list(eager_updates) == [sac.update_critics, sac.update_actor_and_alpha]
    assert all(compiled is not eager for compiled, eager in zip(compiled_updates, eager_updates, strict=True))
    eager_losses, eager_params = train_a_little(sac, *eager_updates, copy.deepcopy(nets), batches)
    compiled_losses, compiled_params = train_a_little(sac, *compiled_updates, copy.deepcopy(nets), batches)
    assert_same_run(compiled_losses, eager_losses, compiled_params, eager_params)
    assert not torch.equal(eager_params[-1], torch.ones(1))  # alpha moved: the runs compared did learn


def test_compiled_v1_update_equals_eager_update(v1):
    batches = random_batches(v1)
    nets = (
        v1.Actor(5, 2),
        v1.SoftQNetworks(5, 2),
        v1.ValueNetwork(5),
        v1.ValueNetwork(5),
        torch.zeros(1, requires_grad=True),
    )
    args = v1.Args(autotune=True, policy_reg=1e-3)
    assert v1.compiled_update(args) is v1.update

    def train_a_little(update, nets):
        actor, qf, vf, vf_target, log_alpha = nets
        groups = [{"params": net.parameters()} for net in (vf, qf, actor)] + [{"params": [log_alpha]}]
        optimizer, alpha, losses = torch.optim.Adam(groups, lr=1e-3, fused=True), log_alpha.detach().exp(), []
        for i, batch in enumerate(batches):
            torch.manual_seed(100 + i)
            step_losses, alpha = update(batch, actor, qf, vf, vf_target, optimizer, alpha, log_alpha, -2.0, args)
            losses.append(step_losses)
            v1.polyak_update(vf_target, vf, 0.005)
        return losses, [p.detach().clone() for net in nets[:4] for p in net.parameters()] + [alpha]

    eager_losses, eager_params = train_a_little(v1.update, copy.deepcopy(nets))
    compiled = v1.compiled_update(v1.Args(compile=True))
    compiled_losses, compiled_params = train_a_little(compiled, copy.deepcopy(nets))
    assert_same_run(compiled_losses, eager_losses, compiled_params, eager_params)
    assert not torch.equal(eager_params[-1], torch.ones(1))  # alpha moved: the runs compared did learn


def test_compiled_atari_update_equals_eager_update(atari):
    torch.manual_seed(0)
    n_actions, args = 4, atari.Args(batch_size=8)
    frames = lambda: torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8)  # noqa: E731
    batches = [atari.Batch(frames(), torch.randint(0, n_actions, (8,)), torch.randn(8), frames(),
                           (torch.rand(8) < 0.2).float()) for _ in range(2)]  # fmt: skip
    nets = (
        atari.Actor(n_actions),
        *(atari.SoftQNetwork(n_actions) for _ in range(4)),
        torch.zeros(1, requires_grad=True),
    )
    assert atari.compiled_update(args) is atari.update

    def train_a_little(update, nets):
        actor, qf1, qf2, qf1_target, qf2_target, log_alpha = nets
        groups = [{"params": [*qf1.parameters(), *qf2.parameters()]}, {"params": actor.parameters()},
                  {"params": [log_alpha]}]  # fmt: skip
        optimizer, alpha, losses = torch.optim.Adam(groups, lr=1e-3, eps=1e-4, fused=True), log_alpha.detach().exp(), []
        for batch in batches:
            step_losses, alpha = update(batch, *nets[:5], optimizer, alpha, log_alpha, 0.89 * math.log(n_actions), args)
            losses.append(step_losses)
            atari.polyak_update(qf1_target, qf1, 0.5)
        return losses, [p.detach().clone() for net in nets[:5] for p in net.parameters()] + [alpha]

    eager_losses, eager_params = train_a_little(atari.update, copy.deepcopy(nets))
    compiled = atari.compiled_update(atari.Args(batch_size=8, compile=True))
    compiled_losses, compiled_params = train_a_little(compiled, copy.deepcopy(nets))
    assert_same_run(compiled_losses, eager_losses, compiled_params, eager_params)
    assert not torch.equal(eager_params[-1], torch.ones(1))  # alpha moved: the runs compared did learn
