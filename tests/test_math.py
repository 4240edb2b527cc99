"""The losses, the squashed-Gaussian density and the target update, against their definitions: the parts both
continuous scripts share (each_sac: once per script) and SAC v2's own losses (sac)."""

import copy
import importlib
import math

import numpy as np
import pytest
import torch
from conftest import constant_q, plain_twin_critics
from torch.distributions import Normal, TanhTransform, TransformedDistribution


def log_prob_at(sac, a, mean, log_std):
    """The script's log pi(a|s) at a given action a (via u = atanh a), in float64."""
    u = torch.atanh(a)
    return sac.squashed_gaussian_log_prob(u[:, None], ((u - mean) / math.exp(log_std))[:, None],
                                          torch.full((len(a), 1), log_std, dtype=torch.float64))  # fmt: skip


def test_squashed_density_integrates_to_one(each_sac):
    # A wrong Jacobian term would not integrate to 1 over the action interval (-1, 1).
    for mean, log_std in [(0.7, -0.3), (-0.4, -1.0), (0.0, 0.0)]:
        a = torch.linspace(-1, 1, 400_001, dtype=torch.float64)[1:-1]
        density = log_prob_at(each_sac, a, mean, log_std).exp()
        assert abs(torch.trapezoid(density, a).item() - 1.0) < 1e-4, (mean, log_std)


def test_squashed_density_matches_change_of_variables(each_sac):
    # p_A(a) = p_U(atanh a) / (1 - a^2), written naively and with torch's own TanhTransform.
    torch.manual_seed(0)
    mean, log_std = torch.randn(64, 3, dtype=torch.float64), torch.rand(64, 3, dtype=torch.float64) - 1
    eps = torch.randn(64, 3, dtype=torch.float64)
    u = mean + log_std.exp() * eps
    ours = each_sac.squashed_gaussian_log_prob(u, eps, log_std)
    naive = (Normal(mean, log_std.exp()).log_prob(u) - torch.log1p(-(torch.tanh(u) ** 2))).sum(1)
    tanh_normal = TransformedDistribution(Normal(mean, log_std.exp()), TanhTransform()).log_prob(torch.tanh(u)).sum(1)
    torch.testing.assert_close(ours, naive, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ours, tanh_normal, rtol=1e-6, atol=1e-6)


def test_squashed_density_is_finite_where_tanh_rounds_to_one(each_sac):
    # At |u| = 20 or 50, tanh(u) is exactly +-1 in float32, so log(1 - tanh(u)^2) would be -inf.
    u = torch.tensor([[20.0, -20.0, 50.0, -50.0]])
    eps, log_std = torch.zeros_like(u), torch.zeros_like(u)
    assert torch.tanh(u).abs().eq(1).all()
    ours = each_sac.squashed_gaussian_log_prob(u, eps, log_std)
    u64 = u.double()
    # log(1 - tanh(u)^2) = log(sech(u)^2) = log 4 - 2 log(e^u + e^-u), exact in float64
    expected = (-0.5 * math.log(2 * math.pi) - (math.log(4) - 2 * torch.logaddexp(u64, -u64))).sum(1)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours.double(), expected, rtol=1e-6, atol=1e-3)


def test_actor_samples_inside_the_box_and_acts_deterministically(each_sac):
    torch.manual_seed(0)
    actor = each_sac.Actor(3, 2)
    with torch.no_grad():
        actor.mean.bias.fill_(30.0)  # a policy pushed hard against the bound: a = tanh(u) is exactly 1
        obs = torch.randn(128, 3)
        actions, log_pi = actor.sample(obs)[:2]  # (sac_v1_value.py's sample also returns the Gaussian)
        mean, log_std = actor(obs)
    assert torch.isfinite(log_pi).all() and actions.abs().le(1).all()
    assert log_std.ge(each_sac.LOG_STD_MIN).all() and log_std.le(each_sac.LOG_STD_MAX).all()
    torch.testing.assert_close(actor.act_deterministic(obs), torch.tanh(mean))


def test_soft_q_target_on_a_hand_built_batch(sac):
    rewards, terminations = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.0, 1.0, 0.0])
    next_q1, next_q2 = torch.tensor([10.0, 5.0, 3.0]), torch.tensor([8.0, 6.0, 4.0])
    next_log_pi, alpha, gamma = torch.tensor([-1.0, 0.5, 2.0]), 0.2, 0.9
    y = sac.soft_q_target(rewards, terminations, next_q1, next_q2, next_log_pi, alpha, gamma)
    # by hand: r + gamma * (min(Q1', Q2') - alpha * log pi'), and r alone where the episode terminated
    expected = torch.tensor([1 + 0.9 * (8 - 0.2 * -1), 2.0, -1 + 0.9 * (3 - 0.2 * 2)])
    torch.testing.assert_close(y, expected)


def test_stacked_twin_critics_equal_two_plain_networks(each_sac):
    # The batched network against its plain definition: outputs, and the gradients of one loss on both.
    torch.manual_seed(0)
    qf = each_sac.SoftQNetworks(5, 2)
    qf1, qf2 = plain_twin_critics(qf)
    obs, actions, y = torch.randn(64, 5), torch.rand(64, 2) * 2 - 1, torch.randn(64)
    q1, q2 = qf(obs, actions)
    x = torch.cat([obs, actions], 1)
    torch.testing.assert_close(q1, qf1(x).squeeze(1))
    torch.testing.assert_close(q2, qf2(x).squeeze(1))
    assert not torch.allclose(q1, q2)  # two critics, initialised independently
    ((q1 - y) ** 2 + (q2 - y) ** 2).mean().backward()
    ((qf1(x).squeeze(1) - y) ** 2 + (qf2(x).squeeze(1) - y) ** 2).mean().backward()
    for i, plain in enumerate((qf1, qf2)):
        for w, b, layer in zip((qf.w1, qf.w2, qf.w3), (qf.b1, qf.b2, qf.b3), plain[::2], strict=True):
            torch.testing.assert_close(w.grad[i].T, layer.weight.grad)
            torch.testing.assert_close(b.grad[i, 0], layer.bias.grad)


def test_critic_loss_regresses_both_critics_on_the_target_networks(sac):
    torch.manual_seed(0)
    batch = sac.Batch(obs=torch.randn(4, 3), actions=torch.rand(4, 1) * 2 - 1,
                      rewards=torch.tensor([1.0, 0.0, -2.0, 0.5]), next_obs=torch.randn(4, 3),
                      terminations=torch.tensor([0.0, 0.0, 1.0, 0.0]))  # fmt: skip
    qf, qf_target = constant_q(sac, 1.0, -3.0), constant_q(sac, 7.0, 5.0)  # min over the targets: 5
    actor, log_alpha = sac.Actor(3, 1), torch.tensor([-math.inf])  # alpha = 0, no entropy term: y = r + gamma (1 - d) 5
    agent = sac.Agent(actor, qf, qf_target, log_alpha, sac.Adam(qf=(qf.parameters(), 0.0)),
                      sac.Adam(actor=(actor.parameters(), 0.0)), target_entropy=-1.0)  # fmt: skip
    losses = sac.update_critics(batch, agent, 0.9)
    y = batch.rewards + 0.9 * (1 - batch.terminations) * 5.0
    torch.testing.assert_close(losses["qf1_loss"], 0.5 * ((1.0 - y) ** 2).mean())
    torch.testing.assert_close(losses["qf2_loss"], 0.5 * ((-3.0 - y) ** 2).mean())
    torch.testing.assert_close(losses["qf_loss"], losses["qf1_loss"] + losses["qf2_loss"])
    torch.testing.assert_close(losses["qf1_values"], torch.tensor(1.0))


def test_actor_loss_uses_the_twin_minimum_and_leaves_q_weights_alone(sac):
    torch.manual_seed(0)
    actor, qf = sac.Actor(3, 1), sac.SoftQNetworks(3, 1)
    qf1, qf2 = plain_twin_critics(qf)
    obs, alpha = torch.randn(32, 3), torch.tensor(0.3)
    torch.manual_seed(1)
    with torch.no_grad():
        actions, log_pi = actor.sample(obs)
        x = torch.cat([obs, actions], 1)
        expected = (alpha * log_pi - torch.min(qf1(x), qf2(x)).squeeze(1)).mean()
    log_alpha = alpha.log().reshape(1)
    agent = sac.Agent(actor, qf, copy.deepcopy(qf), log_alpha, sac.Adam(qf=(qf.parameters(), 1e-3)),
                      sac.Adam(actor=(actor.parameters(), 1e-3)), target_entropy=-1.0)  # fmt: skip
    actor_before, q_before = copy.deepcopy(actor), copy.deepcopy(qf)
    torch.manual_seed(1)  # the same noise eps inside the update
    losses = sac.update_actor_and_alpha(obs, agent, autotune=False)
    torch.testing.assert_close(losses["actor_loss"], expected)
    assert "alpha_loss" not in losses and torch.equal(agent.log_alpha, alpha.log().reshape(1))  # fixed alpha: untouched
    for p, before in zip(actor.parameters(), actor_before.parameters(), strict=True):
        assert not torch.equal(p, before)  # phi took its step
    for p, before in zip(qf.parameters(), q_before.parameters(), strict=True):
        assert torch.equal(p, before) and p.grad is None and p.requires_grad  # theta: no step, no gradient


def test_alpha_moves_towards_the_target_entropy(each_sac):
    target_entropy = -1.0  # H-bar = -|A| for |A| = 1
    for log_pi_value, direction in [(-3.0, -1), (3.0, +1)]:  # entropy 3 > H-bar: alpha falls; -3 < H-bar: rises
        log_alpha = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([log_alpha], lr=0.1)
        loss = each_sac.alpha_loss_fn(log_alpha, torch.full((16,), log_pi_value), target_entropy)
        loss.backward()
        optimizer.step()
        assert np.sign(log_alpha.exp().item() - 1.0) == direction, log_pi_value


def test_one_policy_step_equals_separate_actor_and_alpha_steps(sac):
    # The script steps phi and log_alpha with one backward pass and one Adam; the plain definition has an
    # optimizer each, J_pi stepped first with the old alpha, then J(alpha) on the same log pi.
    torch.manual_seed(0)
    actor, qf, obs = sac.Actor(3, 2), sac.SoftQNetworks(3, 2), torch.randn(32, 3)
    plain_actor, plain_log_alpha = copy.deepcopy(actor), torch.full((1,), 0.5, requires_grad=True)
    log_alpha = torch.full((1,), 0.5, requires_grad=True)
    agent = sac.Agent(actor, qf, copy.deepcopy(qf), log_alpha, sac.Adam(qf=(qf.parameters(), 0.01)),
                      sac.Adam(actor=(actor.parameters(), 0.01), log_alpha=([log_alpha], 0.01)),
                      target_entropy=-2.0)  # fmt: skip
    actor_optimizer = torch.optim.Adam(plain_actor.parameters(), lr=0.01)
    alpha_optimizer = torch.optim.Adam([plain_log_alpha], lr=0.01)
    plain_alpha = plain_log_alpha.detach().exp()
    for step in range(3):
        torch.manual_seed(10 + step)
        losses = sac.update_actor_and_alpha(obs, agent, autotune=True)
        torch.manual_seed(10 + step)
        actions, log_pi = plain_actor.sample(obs)
        actor_loss = (plain_alpha * log_pi - torch.min(*qf(obs, actions))).mean()
        actor_optimizer.zero_grad()
        actor_loss.backward()
        actor_optimizer.step()
        alpha_loss = (-plain_log_alpha.exp() * (log_pi.detach() - 2.0)).mean()
        alpha_optimizer.zero_grad()
        alpha_loss.backward()
        alpha_optimizer.step()
        plain_alpha = plain_log_alpha.detach().exp()
        torch.testing.assert_close(losses["actor_loss"], actor_loss.detach())
        torch.testing.assert_close(losses["alpha_loss"], alpha_loss.detach())
    torch.testing.assert_close(log_alpha.detach().exp(), plain_alpha)
    assert log_alpha.item() != 0.5
    for p, plain in zip(actor.parameters(), plain_actor.parameters(), strict=True):
        torch.testing.assert_close(p, plain)


def test_polyak_update(each_sac):
    torch.manual_seed(0)
    source, target = each_sac.SoftQNetworks(3, 1), each_sac.SoftQNetworks(3, 1)
    before = [p.detach().clone() for p in target.parameters()]
    each_sac.polyak_update(target, source, 0.1)
    for old, new, src in zip(before, target.parameters(), source.parameters(), strict=True):
        torch.testing.assert_close(new, 0.1 * src + 0.9 * old)
    each_sac.polyak_update(target, source, 1.0)  # tau = 1: a hard copy
    for new, src in zip(target.parameters(), source.parameters(), strict=True):
        torch.testing.assert_close(new, src)


def test_adam_takes_the_steps_of_torch_optim_adam(any_script):
    """Each script's Adam, written out so that the update compiles as one graph, against torch.optim.Adam: two groups at
    their own learning rates, each stepped on its own loss, for several steps (the bias corrections change)."""
    module = importlib.import_module(any_script)
    torch.manual_seed(0)
    nets = [torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)]
    plain = copy.deepcopy(nets)
    adam = module.Adam(first=(nets[0].parameters(), 0.01), second=(nets[1].parameters(), 0.003), eps=1e-4)
    reference = torch.optim.Adam([{"params": plain[0].parameters(), "lr": 0.01},
                                  {"params": plain[1].parameters(), "lr": 0.003}], eps=1e-4)  # fmt: skip
    for step in range(5):
        x, h = torch.randn(8, 3), torch.randn(8, 4)
        adam.step(second=nets[1](h).sin().sum(), first=nets[0](x).pow(2).mean())  # by name, in any order
        reference.zero_grad()
        (plain[0](x).pow(2).mean() + plain[1](h).sin().sum()).backward()  # the groups share no parameter
        reference.step()
        for p, q in zip([*nets[0].parameters(), *nets[1].parameters()], [*plain[0].parameters(),
                        *plain[1].parameters()], strict=True):  # fmt: skip
            torch.testing.assert_close(p, q, msg=f"step {step}")
    assert int(adam.state_dict()["t"]) == 5


def test_adam_refuses_a_loss_for_no_group_and_a_group_without_its_loss(any_script):
    """Losses are paired with the groups by name: a wrong pairing fails loudly at the call, before anything moves."""
    module = importlib.import_module(any_script)
    net = torch.nn.Linear(3, 1)
    adam = module.Adam(actor=(net.parameters(), 0.01), log_alpha=([torch.zeros(1, requires_grad=True)], 0.01))
    before = [p.clone() for p in net.parameters()]
    loss = net(torch.randn(4, 3)).sum()
    for losses in [{"actor": loss}, {"actor": loss, "log_alpha": loss, "qf": loss}, {"qf": loss, "log_alpha": loss}]:
        with pytest.raises(TypeError, match=r"Adam.step: losses for .*, but the groups are \['actor', 'log_alpha'\]"):
            adam.step(**losses)
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True)) and int(adam.t) == 0


def test_adam_gives_the_foreach_ops_scalars_of_the_parameters_dtype(any_script, monkeypatch):
    """CUDA's _foreach_div/_foreach_mul take their fused path (one kernel for the list) only with a Tensor scalar of
    the list's dtype: the bias corrections, float64 for their digits, go to them in the parameters' dtype."""
    module = importlib.import_module(any_script)
    seen = []

    def spy(original):
        def foreach(tensors, other, *rest):
            if isinstance(other, torch.Tensor):
                seen.append((other.dtype, tensors[0].dtype))
            return original(tensors, other, *rest)

        return foreach

    for name in ["_foreach_div", "_foreach_div_", "_foreach_mul", "_foreach_mul_"]:
        monkeypatch.setattr(torch, name, spy(getattr(torch, name)))
    net = torch.nn.Linear(3, 1)
    adam = module.Adam(net=(net.parameters(), 0.01))
    adam.step(net=net(torch.randn(4, 3)).sum())
    assert seen == [(torch.float32, torch.float32)] * 2  # 1 / sqrt(1 - beta2^t) and -lr / (1 - beta1^t)
