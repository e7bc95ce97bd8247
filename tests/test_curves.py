"""``muon_nerf.nerf.curves``: where the points fall, and reading a curve at a given time."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("nerfstudio", reason="curves.py is a nerfstudio callback ([nerf] extra)")

from muon_nerf.nerf.curves import curve_steps, evenly_spaced, time_to_reach, value_at  # noqa: E402


def test_points_every_k_iterations_and_after_the_last():
    assert curve_steps(500, 100) == (99, 199, 299, 399, 499)  # nerfstudio's step s ends iteration s + 1
    assert curve_steps(250, 100) == (99, 199, 249)
    assert curve_steps(2, 1) == (0, 1) and curve_steps(3, 10) == (2,)


def test_curve_views_are_evenly_spaced_with_both_ends():
    assert evenly_spaced(9, 3) == [0, 4, 8] and evenly_spaced(22, 3) == [0, 10, 21]
    assert evenly_spaced(2, 3) == [0, 1] and evenly_spaced(5, 1) == [0]


def test_value_at_interpolates_linearly_and_never_extrapolates():
    points = [{"seconds": s, "psnr": p} for s, p in [(2.0, 10.0), (5.0, 16.0), (9.0, 18.0)]]
    times, values = [p["seconds"] for p in points], [p["psnr"] for p in points]
    for t in (2.0, 3.3, 5.0, 7.9, 9.0):
        assert value_at(points, t) == pytest.approx(np.interp(t, times, values))
    assert value_at(points, 1.9) is None and value_at(points, 9.1) is None and value_at([], 1.0) is None


def test_time_to_reach_interpolates_the_first_crossing():
    points = [{"seconds": s, "psnr": p} for s, p in ((10.0, 12.0), (20.0, 16.0), (30.0, 15.0), (40.0, 20.0))]
    assert time_to_reach(points, 14.0) == pytest.approx(15.0)  # between 12 dB at 10 s and 16 dB at 20 s
    assert time_to_reach(points, 11.0) == 10.0  # already there at the first point
    assert time_to_reach(points, 18.0) == pytest.approx(30.0 + 10.0 * 3.0 / 5.0)  # after the dip
    assert time_to_reach(points, 21.0) is None


def test_stop_rule_converged_time_limit_and_refusals():
    from muon_nerf.nerf.curves import StopRule

    psnrs = ((500, 20.0), (1000, 22.0), (1500, 22.1), (2000, 22.15))
    points = [{"iteration": i, "psnr": p} for i, p in psnrs]
    rule = StopRule(gain=0.2, window=1000)
    assert rule.reason(points[:2], 1.0) is None  # no point 1000 iterations back yet
    assert rule.reason(points[:3], 1.0) is None  # 22.1 - 20.0 over the last 1000
    assert rule.reason(points, 1.0) == "converged"  # 22.15 - 22.0 < 0.2
    # a dip is not convergence: the best so far (23.0) gained 1.0 dB over the best up to 1000 back
    dip = [{"iteration": i, "psnr": p} for i, p in ((500, 20.0), (1000, 22.0), (1500, 23.0), (2000, 21.5))]
    assert rule.reason(dip, 1.0) is None
    # nor is a long dip after an early peak (muon-ngp-adam seed 2: 24.62, 23.37, 24.05): the best
    # gained nothing over the window, but the run is 0.57 dB below it, still climbing back
    peak = [{"iteration": i, "psnr": p} for i, p in ((1000, 24.62), (2000, 23.37), (3000, 24.05))]
    assert StopRule(gain=0.2, window=2000).reason(peak, 1.0) is None
    assert StopRule(gain=0.2, window=2000).reason(peak[:2] + [{"iteration": 3000, "psnr": 24.5}], 1.0) == (
        "converged"
    )
    assert StopRule(seconds=10.0).reason(points[:1], 10.0) == "time limit"
    # a run that converged as its time ran out says it converged
    assert StopRule(gain=0.2, window=1000, seconds=10.0).reason(points, 10.0) == "converged"
    assert StopRule(gain=0.2, window=1000, seconds=10.0).reason(points[:3], 10.0) == "time limit"
    assert StopRule(seconds=10.0).reason(points[:1], 9.9) is None
    assert StopRule().reason(points, 1e9) is None
    bad_rules = ({"gain": math.nan}, {"gain": -0.1}, {"window": 0}, {"seconds": 0.0}, {"seconds": math.inf})
    for bad in bad_rules:
        with pytest.raises(ValueError):
            StopRule(**bad)


def test_time_to_reach_in_iterations():
    points = [{"seconds": 10.0 * k, "iteration": 500 * k, "psnr": 10.0 + k} for k in (1, 2, 3)]
    assert time_to_reach(points, 11.5, at="iteration") == pytest.approx(750.0)
