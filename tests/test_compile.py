"""--compile: the compiled update steps compute what the eager ones do (on the CPU, inductor's C++ kernels)."""

import copy

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


def test_compiled_updates_equal_eager_updates(sac, monkeypatch):
    # inductor draws its own random numbers unless told to use eager's generator: with it, the same noise eps
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    torch.manual_seed(0)
    actor, qf = sac.Actor(5, 2), sac.SoftQNetworks(5, 2)
    nets = (actor, qf, copy.deepcopy(qf), torch.zeros(1, requires_grad=True))
    batches = [sac.Batch(obs=torch.randn(64, 5), actions=torch.rand(64, 2) * 2 - 1, rewards=torch.randn(64),
                         next_obs=torch.randn(64, 5), terminations=(torch.rand(64) < 0.2).float())
               for _ in range(3)]  # fmt: skip

    eager_updates = sac.compiled_updates(sac.Args())
    compiled_updates = sac.compiled_updates(sac.Args(compile=True))
    assert list(eager_updates) == [sac.update_critics, sac.update_actor_and_alpha]
    assert all(compiled is not eager for compiled, eager in zip(compiled_updates, eager_updates, strict=True))
    eager_losses, eager_params = train_a_little(sac, *eager_updates, copy.deepcopy(nets), batches)
    compiled_losses, compiled_params = train_a_little(sac, *compiled_updates, copy.deepcopy(nets), batches)

    assert [set(losses) for losses in compiled_losses] == [set(losses) for losses in eager_losses]
    for compiled, eager in zip(compiled_losses, eager_losses, strict=True):
        for name in eager:
            torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-5, msg=name)
    for compiled, eager in zip(compiled_params, eager_params, strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    assert not torch.equal(eager_params[-1], torch.ones(1))  # alpha moved: the runs compared did learn
