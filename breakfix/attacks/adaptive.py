"""Where to spend the attack budget: a bandit over harm category x technique.

Thompson sampling: each arm's success rate has a Beta posterior, and an arm also borrows
evidence from its category and its technique (half weight each), so one break under a
technique lifts that technique everywhere at once. A floor of exploration (`explore`) sends a
share of attempts to the least-tried arms, so a cell that looked safe early is revisited.
`Uniform` is the baseline: every arm equally likely.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

Arm = tuple[str, str]  # (harm category, technique)


class Adaptive:
    def __init__(self, arms: list[Arm], seed: int, explore: float = 0.2, borrow: float = 0.5):
        self.arms = list(arms)
        self.rng = np.random.default_rng(seed)
        self.explore = explore
        self.borrow = borrow
        self.wins: Counter = Counter()
        self.pulls: Counter = Counter()

    def pick(self, n: int) -> list[Arm]:
        return [self._one() for _ in range(n)]

    def _one(self) -> Arm:
        if self.rng.random() < self.explore:
            fewest = min(self.pulls[a] for a in self.arms)
            least = [a for a in self.arms if self.pulls[a] == fewest]
            return least[self.rng.integers(len(least))]
        draws = [self._draw(arm) for arm in self.arms]
        return self.arms[int(np.argmax(draws))]

    def _draw(self, arm: Arm) -> float:
        category, technique = ("c", arm[0]), ("t", arm[1])
        wins = self.wins[arm] + self.borrow * (self.wins[category] + self.wins[technique])
        losses = (self.pulls[arm] - self.wins[arm]) + self.borrow * (
            self.pulls[category] - self.wins[category] + self.pulls[technique] - self.wins[technique])
        return self.rng.beta(1 + wins, 1 + losses)

    def update(self, arm: Arm, success: bool) -> None:
        for key in (arm, ("c", arm[0]), ("t", arm[1])):
            self.pulls[key] += 1
            self.wins[key] += int(success)


class Uniform(Adaptive):
    def pick(self, n: int) -> list[Arm]:
        return [self.arms[i] for i in self.rng.integers(len(self.arms), size=n)]


SCHEDULERS = {"adaptive": Adaptive, "uniform": Uniform}
