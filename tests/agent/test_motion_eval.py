"""The scoring used by the motion tests and benchmark: event grouping and one-to-one matching."""

from tests.agent.motion_eval import group_events, score_events


def test_group_events_merges_runs_closer_than_the_gap() -> None:
    times = [i / 5 for i in range(20)]
    flags = [False, True, True, False, False, True] + [False] * 10 + [True, True, False, False]
    assert group_events(times, flags, gap_s=1.0) == [(0.2, 1.0), (3.2, 3.4)]
    assert group_events(times, flags, gap_s=0.3) == [(0.2, 0.4), (1.0, 1.0), (3.2, 3.4)]


def test_one_long_detection_finds_one_true_event_only() -> None:
    truth = [(0.0, 1.0), (5.0, 6.0), (10.0, 11.0)]
    always_on = score_events(truth, [(0.0, 11.0)])
    assert (always_on.precision, round(always_on.recall, 3)) == (1.0, 0.333)
    exact = score_events(truth, [(0.2, 1.2), (5.5, 7.0), (10.0, 10.4)])
    assert (exact.precision, exact.recall, exact.f1) == (1.0, 1.0, 1.0)
    noisy = score_events(truth, [(0.2, 1.2), (3.0, 3.5), (10.0, 10.4)])
    assert (round(noisy.precision, 3), round(noisy.recall, 3)) == (0.667, 0.667)
    assert score_events([], []).f1 == 1.0
