"""Rollout bookkeeping: the O(1) answers (admits, wave_of, wave finished) agree with the definition, for
random sequences of outcomes, pauses, resumes and a round trip through JSON."""

from __future__ import annotations

import math
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.runtime.rollout import Rollout


def naive_finished(ro: Rollout, k: int) -> bool:
    n = math.ceil(len(ro.order) * ro.waves[k] / 100)
    return all(i in ro.converged or i in ro.failed for i in ro.order[:n])


def naive_admits(ro: Rollout, key: str) -> bool:
    if key not in ro.order:
        return True
    members = ro.order[:math.ceil(len(ro.order) * ro.waves[ro.wave] / 100)]
    return key in members and (ro.paused is None or key in ro.converged)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), waves=st.sampled_from([(100,), (10, 100), (5, 50, 100), (34, 67, 100)]),
       threshold=st.sampled_from([Decimal(0), Decimal(20), Decimal(100)]), seed=st.integers(0, 10_000))
def test_fast_answers_match_the_definition(n: int, waves: tuple[int, ...], threshold: Decimal, seed: int) -> None:
    rnd = random.Random(seed)
    ids = [f"CP{i:03d}" for i in range(n)]
    ro = Rollout.start("rev", ids, waves, threshold, min_stations=0)
    for _ in range(3 * n + 5):
        op = rnd.random()
        if op < 0.05 and ro.paused is not None:
            ro.resume()
        elif op < 0.1:
            ro = Rollout.from_json(ro.to_json())  # a restarted controller
        elif ids:
            key = rnd.choice([*ids, "OTHER"])
            outcome = rnd.random()
            ro.report(key, converged=outcome < 0.7, failed=outcome >= 0.7, had_changes=rnd.random() < 0.8)
        for k in range(len(ro.waves)):
            assert ro._wave_finished(k) == naive_finished(ro, k)
        for key in [*ids[:10], "OTHER"]:
            assert ro.admits(key) == naive_admits(ro, key)
        assert ro.done == (ro.wave >= len(ro.waves) - 1 and naive_finished(ro, ro.wave))


def test_a_wave_that_fails_beyond_the_threshold_pauses_and_a_resume_retries() -> None:
    ids = [f"CP{i:03d}" for i in range(20)]
    ro = Rollout.start("rev", ids, (10, 100), Decimal(20), min_stations=0)
    canary = ro.wave_members(0)
    assert len(canary) == 2 and all(ro.admits(i) for i in canary)
    assert not any(ro.admits(i) for i in ro.order[2:])
    assert ro.wave_of(ro.order[5]) == 1 and ro.wave_of(canary[0]) == 0
    ro.report(canary[0], converged=True, failed=False, had_changes=True)
    ro.report(canary[1], converged=False, failed=True, had_changes=True)
    assert ro.paused is not None and "1 of 2" in ro.paused and ro.wave == 0
    ro.resume()
    assert ro.paused is None and ro.wave == 0 and not ro._wave_finished(0)
    ro.report(canary[1], converged=True, failed=False, had_changes=True)
    assert ro.wave == 1 and all(ro.admits(i) for i in ids) and not ro.done
    for i in ro.order[2:]:
        ro.report(i, converged=True, failed=False, had_changes=False)
    assert ro.done
