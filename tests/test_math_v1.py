"""SAC v1's losses (sac_v1_value.py) against their definitions in arXiv 1801.01290."""

import copy

import torch
from conftest import constant_q, plain_twin_critics


def hand_built_batch(obs_dim=3, act_dim=1):
    torch.manual_seed(0)
    return (torch.randn(4, obs_dim), torch.rand(4, act_dim) * 2 - 1, torch.tensor([1.0, 0.0, -2.0, 0.5]),
            torch.randn(4, obs_dim), torch.tensor([0.0, 0.0, 1.0, 0.0]))  # fmt: skip


def constant_v(v1, value, obs_dim=3):
    """A value network whose output is `value` everywhere (last layer: zero weights)."""
    vf = v1.ValueNetwork(obs_dim)
    with torch.no_grad():
        vf.net[-1].weight.zero_()
        vf.net[-1].bias.fill_(value)
    return vf


def one_update(v1, nets, batch, lr=0.0, **args):
    """update() once with a fresh Adam (lr 0: the losses at these parameters, nothing moves); (losses, alpha)."""
    actor, qf, vf, vf_target, log_alpha = nets
    args = v1.Args(**args)
    groups = {name: (net.parameters(), lr) for name, net in [("vf", vf), ("qf", qf), ("actor", actor)]}
    groups |= {"log_alpha": ([log_alpha], lr)} if args.autotune else {}
    agent = v1.Agent(actor, qf, vf, vf_target, log_alpha, v1.Adam(**groups), target_entropy=-1.0)
    torch.manual_seed(7)  # the noise eps of the fresh action a~
    losses = v1.update(v1.Batch(*batch), agent, args, update_targets=False)
    return losses, losses["alpha"]


def test_value_target_on_hand_built_values(v1):
    q1, q2, log_pi = torch.tensor([3.0, -1.0, 2.0]), torch.tensor([4.0, -2.0, 2.0]), torch.tensor([-1.0, 0.5, 0.0])
    # by hand: min(Q1, Q2) - alpha log pi
    torch.testing.assert_close(v1.soft_value_target(q1, q2, log_pi, 0.5), torch.tensor([3.5, -2.25, 2.0]))


def test_q_target_on_a_hand_built_batch(v1):
    rewards, terminations, next_v = (
        torch.tensor([1.0, 2.0, -1.0]),
        torch.tensor([0.0, 1.0, 0.0]),
        torch.tensor([10.0, 5.0, 3.0]),
    )
    y = v1.soft_q_target(rewards, terminations, next_v, reward_scale=5.0, gamma=0.9)
    # by hand: c r + gamma V_bar(s'), and c r alone where the episode terminated
    torch.testing.assert_close(y, torch.tensor([5 + 0.9 * 10, 10.0, -5 + 0.9 * 3]))


def test_update_regresses_v_and_both_q_on_their_targets(v1):
    obs, actions, rewards, next_obs, terminations = batch = hand_built_batch()
    actor, qf = v1.Actor(3, 1), constant_q(v1, 2.0, -1.0)
    log_alpha = torch.zeros(1, requires_grad=True)
    nets = (actor, qf, constant_v(v1, 0.5), constant_v(v1, 4.0), log_alpha)
    losses, alpha = one_update(v1, nets, batch, reward_scale=5.0, gamma=0.9)
    torch.manual_seed(7)
    with torch.no_grad():
        _, log_pi, _ = actor.sample(obs)  # the same fresh action as inside the update
    # (Logged in the unscaled problem's units: values over c = 5, squared losses over c^2; see the next test.)
    # J_V: V (0.5) regresses to min(Q1, Q2) - alpha log pi = -1 - log pi, with alpha = 1 (reward scaling)
    torch.testing.assert_close(losses["vf_loss"], 0.5 * ((0.5 - (-1.0 - log_pi)) ** 2).mean() / 25)
    torch.testing.assert_close(losses["vf_values"], torch.tensor(0.5 / 5))
    # J_Q: both Q regress to c r + gamma (1 - d) V_bar(s'), V_bar = 4, c = 5
    y = 5.0 * rewards + 0.9 * (1 - terminations) * 4.0
    torch.testing.assert_close(losses["qf1_loss"], 0.5 * ((2.0 - y) ** 2).mean() / 25)
    torch.testing.assert_close(losses["qf2_loss"], 0.5 * ((-1.0 - y) ** 2).mean() / 25)
    torch.testing.assert_close(losses["qf_loss"], losses["qf1_loss"] + losses["qf2_loss"])
    torch.testing.assert_close(losses["qf1_values"], torch.tensor(2.0 / 5))
    # No --autotune: alpha stays 1 (log_alpha did not move); logged is the temperature in effect, 1/c.
    assert log_alpha.item() == 0.0 and "alpha_loss" not in losses
    torch.testing.assert_close(alpha, torch.tensor([1 / 5]))


def test_policy_loss_uses_the_twin_minimum(v1):
    batch = hand_built_batch()
    torch.manual_seed(1)
    actor, qf = v1.Actor(3, 1), v1.SoftQNetworks(3, 1)
    with torch.no_grad():
        qf.b3[0] += 1.0  # Q1 > Q2 everywhere: the minimum is Q2
    qf1, qf2 = plain_twin_critics(qf)
    losses, _ = one_update(v1, (actor, qf, v1.ValueNetwork(3), v1.ValueNetwork(3), torch.zeros(1)), batch)
    torch.manual_seed(7)
    with torch.no_grad():
        actions, log_pi, _ = actor.sample(batch[0])
        x = torch.cat([batch[0], actions], 1)
        q1, q2 = qf1(x).squeeze(1), qf2(x).squeeze(1)
    assert not torch.allclose(q1, q2)
    # (logged over the default reward scale c = 5)
    torch.testing.assert_close(5 * losses["actor_loss"], (log_pi - torch.min(q1, q2)).mean())
    assert not torch.allclose(5 * losses["actor_loss"], (log_pi - q1).mean())  # not Q1 alone, as the authors' code


def test_reward_scale_enters_only_the_q_target(v1):
    torch.manual_seed(2)
    nets = (v1.Actor(3, 1), v1.SoftQNetworks(3, 1), v1.ValueNetwork(3), v1.ValueNetwork(3), torch.zeros(1))
    scaled_nets = copy.deepcopy(nets)
    losses, _ = one_update(v1, nets, hand_built_batch(), lr=0.1, reward_scale=1.0)
    scaled, _ = one_update(v1, scaled_nets, hand_built_batch(), lr=0.1, reward_scale=5.0)
    for name, power in [("vf_loss", 2), ("vf_values", 1), ("actor_loss", 1), ("qf1_values", 1)]:  # logged over c^power
        torch.testing.assert_close(scaled[name] * 5**power, losses[name], msg=name)
    assert scaled["qf1_loss"] != losses["qf1_loss"]
    for i, (net, scaled_net) in enumerate(zip(nets[:3], scaled_nets[:3], strict=True)):
        same = all(torch.equal(p, q) for p, q in zip(net.parameters(), scaled_net.parameters(), strict=True))
        assert same == (i != 1), type(net).__name__  # after one step, only the Q networks differ


def test_the_losses_are_logged_in_the_units_of_the_unscaled_problem(v1):
    """At c = 5 the networks hold c times the unscaled values (Q 10 and -5, V 2.5, V_bar 20); at c = 1 the unscaled
    ones (Q 2 and -1, V 0.5, V_bar 4). Both log the same Q and V values and Q losses; the V and policy losses at c = 5
    are those of the unscaled problem at its temperature 1/c = 0.2, and alpha is that temperature."""
    obs, actions, rewards, next_obs, terminations = batch = hand_built_batch()
    torch.manual_seed(5)
    actor = v1.Actor(3, 1)
    logged = {}
    for c in (1.0, 5.0):
        nets = (copy.deepcopy(actor), constant_q(v1, 2.0 * c, -1.0 * c), constant_v(v1, 0.5 * c),
                constant_v(v1, 4.0 * c), torch.zeros(1))  # fmt: skip
        logged[c], _ = one_update(v1, nets, batch, reward_scale=c, gamma=0.9)
    for name in ["qf1_values", "qf2_values", "vf_values", "qf1_loss", "qf2_loss", "qf_loss"]:
        torch.testing.assert_close(logged[5.0][name], logged[1.0][name], msg=name)
    torch.manual_seed(7)
    with torch.no_grad():
        _, log_pi, _ = actor.sample(obs)  # the update's fresh action
    for c in (1.0, 5.0):  # the unscaled problem: V 0.5 regressed on min Q - (1/c) log pi = -1 - log pi / c
        torch.testing.assert_close(logged[c]["vf_loss"], 0.5 * ((0.5 - (-1.0 - log_pi / c)) ** 2).mean())
        torch.testing.assert_close(logged[c]["actor_loss"], (log_pi / c - (-1.0)).mean())
        torch.testing.assert_close(logged[c]["alpha"], torch.tensor([1 / c]))


def test_policy_regulariser_adds_the_l2_penalty_of_mean_and_log_std(v1):
    torch.manual_seed(3)
    nets = (v1.Actor(3, 1), v1.SoftQNetworks(3, 1), v1.ValueNetwork(3), v1.ValueNetwork(3), torch.zeros(1))
    plain, _ = one_update(v1, nets, hand_built_batch())
    regularised, _ = one_update(v1, nets, hand_built_batch(), policy_reg=1e-3)
    with torch.no_grad():
        mean, log_std = nets[0](hand_built_batch()[0])
    penalty = 1e-3 * 0.5 * (mean.pow(2).mean() + log_std.pow(2).mean())
    # (logged over the default reward scale c = 5, the penalty with the rest of J_pi)
    torch.testing.assert_close(5 * (regularised["actor_loss"] - plain["actor_loss"]), penalty)


def test_one_update_equals_separate_steps_of_each_loss(v1):
    # The script takes every step with one Adam, a group per network, each group on its own loss; the plain definition
    # differentiates each loss with respect to its own network only and steps that with its own torch.optim.Adam. A
    # leak (a target that is not a constant) would add gradient in the script's losses: they would differ.
    obs, actions, rewards, next_obs, terminations = batch = hand_built_batch(obs_dim=3, act_dim=2)
    torch.manual_seed(4)
    plain = (v1.Actor(3, 2), v1.SoftQNetworks(3, 2), v1.ValueNetwork(3), v1.ValueNetwork(3),
             torch.full((1,), 0.3, requires_grad=True))  # fmt: skip
    actor, qf, vf, vf_target, log_alpha = copy.deepcopy(plain)
    p_actor, p_qf, p_vf, p_vf_target, p_log_alpha = plain
    args = v1.Args(autotune=True, policy_reg=1e-3, reward_scale=3.0, gamma=0.9)
    rates = [0.03, 0.02, 0.01, 0.01]  # V, Q, pi, alpha
    groups = [list(vf.parameters()), list(qf.parameters()), list(actor.parameters()), [log_alpha]]
    optimizer = v1.Adam(**dict(zip(["vf", "qf", "actor", "log_alpha"], zip(groups, rates, strict=True), strict=True)))
    agent = v1.Agent(actor, qf, vf, vf_target, log_alpha, optimizer, target_entropy=-2.0)
    own_params = [list(p_vf.parameters()), list(p_qf.parameters()), list(p_actor.parameters()), [p_log_alpha]]
    plain_optimizers = [torch.optim.Adam(params, lr=lr) for params, lr in zip(own_params, rates, strict=True)]
    p_alpha = log_alpha.detach().exp()
    for step in range(3):
        torch.manual_seed(10 + step)
        losses = v1.update(v1.Batch(*batch), agent, args, update_targets=False)
        torch.manual_seed(10 + step)
        a, log_pi, (mean, log_std) = p_actor.sample(obs)
        q1_pi, q2_pi = p_qf(obs, a)
        vf_loss = 0.5 * ((p_vf(obs) - (torch.min(q1_pi, q2_pi) - p_alpha * log_pi).detach()) ** 2).mean()
        y = 3.0 * rewards + 0.9 * (1 - terminations) * p_vf_target(next_obs).detach()
        q1, q2 = p_qf(obs, actions)
        qf_loss = 0.5 * ((q1 - y) ** 2).mean() + 0.5 * ((q2 - y) ** 2).mean()
        reg = 1e-3 * 0.5 * (mean.pow(2).mean() + log_std.pow(2).mean())
        actor_loss = (p_alpha * log_pi - torch.min(q1_pi, q2_pi)).mean() + reg
        alpha_loss = (-p_log_alpha.exp() * (log_pi.detach() - 2.0)).mean()
        losses_and_params = zip([vf_loss, qf_loss, actor_loss, alpha_loss], own_params, strict=True)
        grads = [torch.autograd.grad(loss, params, retain_graph=True) for loss, params in losses_and_params]
        for params, param_grads, plain_optimizer in zip(own_params, grads, plain_optimizers, strict=True):
            for param, grad in zip(params, param_grads, strict=True):
                param.grad = grad
            plain_optimizer.step()  # after every gradient is taken: all at the same parameters
        p_alpha = p_log_alpha.detach().exp()
        for name, value, power in [("vf_loss", vf_loss, 2), ("qf_loss", qf_loss, 2), ("actor_loss", actor_loss, 1),
                                   ("alpha_loss", alpha_loss, 1)]:  # fmt: skip
            torch.testing.assert_close(losses[name], value.detach() / 3.0**power, msg=name)  # logged over c^power
        v1.polyak_update(vf_target, vf, 0.5)
        v1.polyak_update(p_vf_target, p_vf, 0.5)
    torch.testing.assert_close(log_alpha.detach().exp(), p_alpha)
    assert log_alpha.item() != 0.3 and not losses["alpha"].requires_grad
    torch.testing.assert_close(losses["alpha"], log_alpha.detach().exp() / 3.0)  # learnt alpha over the scale c = 3
    for net, plain_net in [(actor, p_actor), (qf, p_qf), (vf, p_vf), (vf_target, p_vf_target)]:
        for p, q in zip(net.parameters(), plain_net.parameters(), strict=True):
            torch.testing.assert_close(p, q)
