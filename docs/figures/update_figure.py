"""Draw what one update of each script does: which network is trained on which loss, what is held fixed, and where
the target networks come in. One PNG per script, for its docs page.

    python docs/figures/update_figure.py [--out docs/figures]

Each figure is a row of boxes: the minibatch from the replay buffer on the left, then the losses in the order the
update takes them. A network drawn in a loss's box is either trained by it (solid, filled) or read by it as a constant
(dashed, "held fixed"); the last box is how the target networks follow.
"""

import argparse
from pathlib import Path

# For each script: its losses, in the order the update takes them. Each loss: its name, its equation, the networks it
# trains, the networks (or values) it only reads, and a note.
UPDATES = {
    "sac_continuous_action": [
        (
            "J_Q: the critics",
            "Eq. 5",
            ["Q_theta1, Q_theta2"],
            ["targets Q_theta_bar", "pi_phi: a' ~ pi(.|s')", "alpha"],
            "y = r + gamma (1-d) [min_i Q_bar_i(s',a') - alpha log pi(a'|s')]",
        ),
        (
            "J_pi: the policy",
            "Eqs. 7-9",
            ["pi_phi"],
            ["Q_theta1,2 after their step", "alpha"],
            "every 2nd update, twice (TD3's delay); the gradient flows through a = tanh(mu + sigma eps)",
        ),
        (
            "J(alpha): temperature",
            "Eq. 18",
            ["log alpha"],
            ["log pi of J_pi's sample"],
            "alpha moves the entropy towards H_bar = -|A|",
        ),
        (
            "the targets",
            "Polyak averaging",
            ["Q_theta_bar"],
            ["Q_theta1, Q_theta2"],
            "theta_bar <- tau theta + (1 - tau) theta_bar, tau = 0.005",
        ),
    ],
    "sac_v1_value": [
        (
            "J_V: the value",
            "Eq. 5",
            ["V_psi"],
            ["Q_theta1, Q_theta2", "pi_phi: a~ ~ pi(.|s)"],
            "V's target: min_i Q_i(s,a~) - alpha log pi(a~|s)",
        ),
        (
            "J_Q: the critics",
            "Eqs. 7-8",
            ["Q_theta1, Q_theta2"],
            ["target V_psi_bar"],
            "y = c r + gamma (1-d) V_bar(s'), c the reward scale",
        ),
        (
            "J_pi: the policy",
            "Eq. 12",
            ["pi_phi"],
            ["Q_theta1, Q_theta2"],
            "through the same a~; all three losses at the same parameters",
        ),
        ("the target", "Polyak averaging", ["V_psi_bar"], ["V_psi"], "psi_bar <- tau psi + (1 - tau) psi_bar"),
    ],
    "sac_discrete_atari": [
        (
            "J_Q: the critics",
            "Eqs. 2, 10",
            ["Q_theta1, Q_theta2"],
            ["targets Q_theta_bar", "pi_phi(.|s')", "alpha"],
            "y = r + gamma (1-d) pi(.|s')^T [min_i Q_bar_i(s',.) - alpha log pi(.|s')]",
        ),
        (
            "J_pi: the policy",
            "Eq. 12",
            ["pi_phi"],
            ["Q_theta1,2 after their step", "alpha"],
            "an exact sum over the actions, weighted by pi(.|s)",
        ),
        ("J(alpha): temperature", "Eq. 11", ["log alpha"], ["pi(.|s)"], "towards H_bar = 0.89 log |A|"),
        ("the targets", "a hard copy", ["Q_theta_bar"], ["Q_theta1, Q_theta2"], "every 8,000 env steps, in train()"),
    ],
}
TITLES = {  # how the losses follow each other
    "sac_continuous_action": "one after the other, left to right",
    "sac_v1_value": "every gradient taken at the same parameters, then the target",
    "sac_discrete_atari": "one after the other, left to right",
}
TRAINED, FIXED = "#cfe3f7", "#ffffff"


def draw(script: str, path: Path) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    boxes = [
        ("minibatch from D", "uniform samples", [], ["(s, a, r, s', d)"], "d = 1 only where an episode terminated")
    ]
    boxes += UPDATES[script]
    fig, ax = plt.subplots(figsize=(2.6 * len(boxes), 3.6), dpi=100)
    ax.set(xlim=(0, len(boxes)), ylim=(0, 1))
    ax.axis("off")
    for i, (title, equation, trained, fixed, note) in enumerate(boxes):
        x = i + 0.05
        ax.add_patch(FancyBboxPatch((x, 0.04), 0.90, 0.90, boxstyle="round,pad=0.01", fc="#f4f4f4", ec="#777777"))
        ax.text(x + 0.45, 0.90, title, ha="center", va="top", fontsize=9, weight="bold")
        ax.text(x + 0.45, 0.83, equation, ha="center", va="top", fontsize=7.5, color="#555555")
        y = 0.74
        for name, kind in [(name, "trained") for name in trained] + [(name, "fixed") for name in fixed]:
            label = f"trains {name}" if kind == "trained" else name
            style = {"fc": TRAINED, "ec": "#1f5f99", "lw": 1.2} if kind == "trained" else {"fc": FIXED, "ec": "#999999",
                                                                                           "ls": "--"}  # fmt: skip
            ax.add_patch(FancyBboxPatch((x + 0.05, y - 0.075), 0.80, 0.075, boxstyle="round,pad=0.01", **style))
            ax.text(x + 0.45, y - 0.0375, label, ha="center", va="center", fontsize=7.2)
            y -= 0.105
        ax.text(x + 0.45, 0.08, textwrap.fill(note, 34), ha="center", va="bottom", fontsize=6.8, color="#333333")
        if i:
            ax.add_patch(FancyArrowPatch((i - 0.03, 0.55), (i + 0.07, 0.55), arrowstyle="-|>", mutation_scale=10))
    trained = plt.Rectangle((0, 0), 1, 1, fc=TRAINED, ec="#1f5f99")
    fixed = plt.Rectangle((0, 0), 1, 1, fc=FIXED, ec="#999999", ls="--")
    ax.legend([trained, fixed], ["trained by this loss: its gradient step", "read as a constant: held fixed"],
              loc="lower center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)  # fmt: skip
    ax.set_title(f"One update of {script}.py: {TITLES[script]}", fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where the PNGs go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for script in UPDATES:
        draw(script, args.out / f"update_{script}.png")
        print(args.out / f"update_{script}.png")


if __name__ == "__main__":
    main()
