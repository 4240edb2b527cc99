"""SAC-Discrete's losses, networks and update in sac_discrete_atari.py, against their definitions (arXiv 1910.07207)."""

import copy
import math

import torch
import torch.nn.functional as F

B, N_ACTIONS = 5, 4


def hand_built(seed=0):
    g = torch.Generator().manual_seed(seed)
    log_pi = F.log_softmax(torch.randn(B, N_ACTIONS, generator=g) * 2, dim=1)
    q1, q2 = torch.randn(B, N_ACTIONS, generator=g), torch.randn(B, N_ACTIONS, generator=g)
    return log_pi, q1, q2


def test_soft_q_target_is_the_exact_expectation_over_actions(atari):
    next_log_pi, next_q1, next_q2 = hand_built()
    rewards, terminations = torch.tensor([1.0, -1.0, 0.0, 1.0, 0.5]), torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0])
    alpha, gamma = torch.tensor(0.3), 0.99
    y = atari.soft_q_target(rewards, terminations, next_q1, next_q2, next_log_pi, alpha, gamma)
    for i in range(B):  # y = r + gamma (1 - d) sum_a' pi(a'|s') [min_i Q_i(s', a') - alpha log pi(a'|s')]
        v = sum(math.exp(next_log_pi[i, a]) * (min(next_q1[i, a], next_q2[i, a]) - 0.3 * next_log_pi[i, a])
                for a in range(N_ACTIONS))  # fmt: skip
        expected = rewards[i] + gamma * (1 - terminations[i]) * v
        assert abs(y[i].item() - float(expected)) < 1e-5
    assert y[1] == rewards[1] and y[4] == rewards[4]  # a termination does not bootstrap


def test_actor_loss_sums_over_actions_and_treats_q_as_a_constant(atari):
    log_pi, q1, q2 = hand_built()
    per_state = [sum(math.exp(log_pi[i, a]) * (0.2 * log_pi[i, a] - min(q1[i, a], q2[i, a])) for a in range(N_ACTIONS))
                 for i in range(B)]  # fmt: skip
    log_pi.requires_grad_(True)
    q1.requires_grad_(True)
    loss = atari.actor_loss_fn(log_pi, q1, q2, torch.tensor(0.2))
    assert abs(loss.item() - float(sum(per_state) / B)) < 1e-5  # a sum over actions, a mean over states
    loss.backward()
    assert q1.grad is None and log_pi.grad is not None


def test_alpha_loss_matches_its_definition_and_pushes_entropy_towards_the_target(atari):
    log_pi, _, _ = hand_built()
    target_entropy = 0.89 * math.log(N_ACTIONS)
    log_alpha = torch.tensor([math.log(0.5)], requires_grad=True)
    loss = atari.alpha_loss_fn(log_alpha, log_pi, target_entropy)
    pi = log_pi.exp()
    expected = (-0.5 * (pi * (log_pi + target_entropy)).sum(1)).mean()  # E_s[ pi^T (-alpha (log pi + H-bar)) ]
    assert torch.allclose(loss, expected)
    loss.backward()
    entropy = -(pi * log_pi).sum(1).mean()
    # d/d(log alpha) = alpha (H - H-bar): positive (gradient descent lowers alpha) when the entropy is above H-bar.
    assert torch.allclose(log_alpha.grad, 0.5 * (entropy - target_entropy))


def test_log_probabilities_stay_finite_where_probabilities_underflow(atari):
    actor = atari.Actor(N_ACTIONS)
    with torch.no_grad():
        actor.net[1].weight.zero_()
        actor.net[1].bias.copy_(torch.tensor([0.0, 200.0, -200.0, 0.0]))  # exp(-200) underflows float32
    log_pi = actor(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
    assert torch.isfinite(log_pi).all() and log_pi[0, 2] < -399
    assert torch.allclose(log_pi.exp().sum(1), torch.ones(2))
    assert (actor.act_greedy(torch.zeros(3, 4, 84, 84, dtype=torch.uint8)) == 1).all()


def test_every_network_scales_its_uint8_input_to_unit_range(atari):
    torch.manual_seed(0)
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    actor, qf = atari.Actor(N_ACTIONS), atari.SoftQNetwork(N_ACTIONS)
    torch.testing.assert_close(actor(obs), F.log_softmax(actor.net(obs.float() / 255), dim=1))
    torch.testing.assert_close(qf(obs), qf.net(obs.float() / 255))
    assert actor(obs).shape == qf(obs).shape == (3, N_ACTIONS)
    # Kaiming-normal weights (std sqrt(2 / fan_in)) and zero biases; the encoders are not shared
    conv1 = qf.net[0][0]
    assert (conv1.bias == 0).all() and abs(conv1.weight.std().item() - math.sqrt(2 / (4 * 8 * 8))) < 0.01
    assert actor.net[0][0].weight.data_ptr() != conv1.weight.data_ptr()


def test_hard_target_update_copies_exactly_and_soft_one_interpolates(atari):
    source, target = atari.SoftQNetwork(N_ACTIONS), atari.SoftQNetwork(N_ACTIONS)
    before = [p.clone() for p in target.parameters()]
    atari.polyak_update(target, source, 0.25)
    for p_target, p_before, p_source in zip(target.parameters(), before, source.parameters(), strict=True):
        assert torch.allclose(p_target, 0.75 * p_before + 0.25 * p_source, atol=1e-7)
    atari.polyak_update(target, source, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), source.parameters(), strict=True))


def test_one_update_steps_the_critics_then_the_policy_and_alpha_against_the_stepped_critics(atari):
    """Algorithm 1's order: the critics step on J_Q; then the policy on J_pi and alpha on J(alpha), against Q(s, .) of
    the critics after their step. The plain definition, one loss and one torch.optim.Adam per network stepped in that
    order, gives the same parameters; J_pi with the critics from before their step would not."""
    torch.manual_seed(0)
    args = atari.Args(batch_size=8)
    nets = [atari.Actor(N_ACTIONS), *(atari.SoftQNetwork(N_ACTIONS) for _ in range(4))]
    actor, qf1, qf2, qf1_target, qf2_target = nets
    batch = atari.Batch(torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8), torch.randint(0, N_ACTIONS, (8,)),
                        torch.randn(8), torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8),
                        (torch.rand(8) < 0.3).float())  # fmt: skip
    target_entropy = 0.89 * math.log(N_ACTIONS)
    plain, initial = copy.deepcopy(nets), copy.deepcopy(nets[:3])
    log_alpha = torch.zeros(1, requires_grad=True)
    plain_log_alpha = log_alpha.detach().clone().requires_grad_(True)
    q_optimizer = atari.Adam(qf=([*qf1.parameters(), *qf2.parameters()], args.q_lr), eps=args.adam_eps)
    policy_optimizer = atari.Adam(actor=(actor.parameters(), args.policy_lr), log_alpha=([log_alpha], args.q_lr),
                                  eps=args.adam_eps)  # fmt: skip
    agent = atari.Agent(actor, qf1, qf2, qf1_target, qf2_target, log_alpha, q_optimizer, policy_optimizer,
                        target_entropy)  # fmt: skip
    losses = atari.update(batch, agent, args)

    p_actor, p_qf1, p_qf2, p_qf1_target, p_qf2_target = plain
    with torch.no_grad():  # the critics' target, from the parameters before any step
        y = atari.soft_q_target(
            batch.rewards,
            batch.terminations,
            p_qf1_target(batch.next_obs),
            p_qf2_target(batch.next_obs),
            p_actor(batch.next_obs),
            torch.ones(1),
            args.gamma,
        )
        q_before = p_qf1(batch.obs), p_qf2(batch.obs)
    for critic in (p_qf1, p_qf2):  # the critics first
        opt = torch.optim.Adam(critic.parameters(), lr=args.q_lr, eps=args.adam_eps)
        loss = 0.5 * F.mse_loss(critic(batch.obs).gather(1, batch.actions[:, None])[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # then the policy, against the critics after their step
        q_after = p_qf1(batch.obs), p_qf2(batch.obs)
        log_pi = p_actor(batch.obs)
    steps = [(p_actor.parameters(), lambda: atari.actor_loss_fn(p_actor(batch.obs), *q_after, torch.ones(1))),
             ([plain_log_alpha], lambda: atari.alpha_loss_fn(plain_log_alpha, log_pi, target_entropy))]  # fmt: skip
    for (params, loss_fn), lr in zip(steps, [args.policy_lr, args.q_lr], strict=True):
        opt = torch.optim.Adam(params, lr=lr, eps=args.adam_eps)
        opt.zero_grad()
        loss_fn().backward()
        opt.step()

    for net, plain_net in zip(nets, plain, strict=True):
        for p, p_plain in zip(net.parameters(), plain_net.parameters(), strict=True):
            torch.testing.assert_close(p, p_plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(log_alpha, plain_log_alpha)
    for net, before in zip(nets[:3], initial, strict=True):  # the actor and both critics took a step
        assert not torch.equal(net.net[1].weight, before.net[1].weight)
    assert torch.allclose(losses["alpha"], log_alpha.exp())
    assert {"qf1_loss", "qf2_loss", "qf_loss", "actor_loss", "alpha_loss", "entropy"} <= set(losses)
    # The actor's loss is the one at the stepped critics, not at those before the step.
    with torch.no_grad():
        at_after = atari.actor_loss_fn(initial[0](batch.obs), *q_after, torch.ones(1))
        at_before = atari.actor_loss_fn(initial[0](batch.obs), *q_before, torch.ones(1))
    torch.testing.assert_close(losses["actor_loss"], at_after)
    assert not torch.allclose(at_after, at_before)
