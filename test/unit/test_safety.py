"""Safety layer: unit cases and properties over 2 000 generated command sequences (times
VLA_ROS_PROPERTY_SCALE).
"""

import math

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
import pytest

from vla_ros.core.safety import EstopSources, SafetyLayer, SafetyLimits
from vla_ros.fixtures import property_examples

EPS = 1e-9
LIMITS = SafetyLimits(max_linear_mps=0.5, max_angular_rps=1.0, max_linear_accel=1.0,
                      max_angular_accel=2.0)


def test_clamps_speeds_after_ramping_up():
    layer = SafetyLayer(LIMITS, period_s=0.1)
    outputs = [layer.filter(5.0, -5.0) for _ in range(20)]
    assert outputs[0].linear == pytest.approx(0.1) and outputs[0].angular == pytest.approx(-0.2)
    assert outputs[-1].linear == 0.5 and outputs[-1].angular == -1.0


def test_braking_to_zero_is_immediate_and_reversal_ramps():
    layer = SafetyLayer(LIMITS, period_s=0.1)
    for _ in range(10):
        layer.filter(0.5, 0.0)
    assert layer.filter(0.0, 0.0).linear == 0.0
    for _ in range(10):
        layer.filter(0.5, 0.0)
    assert layer.filter(0.2, 0.0).linear == 0.2  # slowing down is braking too
    assert layer.filter(-0.5, 0.0).linear == pytest.approx(-0.1)  # brake, then accelerate


@pytest.mark.parametrize('kwargs, reason', [
    ({'estop': True}, 'e-stop'), ({'enabled': False}, 'disabled'),
    ({'inputs_fresh': False}, 'stale input')])
def test_stop_conditions_zero_at_once(kwargs, reason):
    layer = SafetyLayer(LIMITS, period_s=0.1)
    for _ in range(10):
        layer.filter(0.5, 1.0)
    result = layer.filter(0.5, 1.0, **kwargs)
    assert (result.linear, result.angular, result.stop_reason) == (0.0, 0.0, reason)
    assert layer.filter(0.5, 1.0).linear == pytest.approx(0.1)  # ramps up again from zero


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_requests_give_zero(bad):
    layer = SafetyLayer(LIMITS, period_s=0.1)
    layer.filter(0.3, 0.3)
    assert layer.filter(bad, 0.1).stop_reason.startswith('invalid')
    assert layer.filter(0.1, bad).linear == 0.0


def test_a_late_tick_cannot_jump():
    layer = SafetyLayer(LIMITS, period_s=0.1)
    assert layer.filter(0.5, 0.0, dt=10.0).linear == pytest.approx(0.2)  # capped at 2 periods
    assert layer.filter(0.5, 0.0, dt=math.nan).linear == pytest.approx(0.3)


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match='max_linear_mps'):
        SafetyLimits(max_linear_mps=-1.0)
    with pytest.raises(ValueError, match='max_angular_accel'):
        SafetyLimits(max_angular_accel=math.nan)
    with pytest.raises(ValueError, match='period_s'):
        SafetyLayer(LIMITS, period_s=0.0)


@pytest.mark.parametrize('name', ['max_linear_mps', 'max_angular_rps', 'max_linear_accel',
                                  'max_angular_accel'])
def test_limits_above_their_hard_ceiling_are_refused(name):
    with pytest.raises(ValueError, match=f'above hard_{name}'):
        SafetyLimits(**{name: 5.0, f'hard_{name}': 4.0})
    assert getattr(SafetyLimits(**{name: 4.0, f'hard_{name}': 4.0}), name) == 4.0


def test_each_estop_source_releases_only_its_own_press():
    sources = EstopSources()
    assert sources.update('panel A', True) and sources.engaged
    assert not sources.update('panel B', False) and sources.engaged  # B never pressed
    assert not sources.update('panel B', True)
    assert not sources.update('panel A', False) and sources.engaged  # B still holds it
    assert sources.update('panel B', False) and not sources.engaged


def test_estop_repeats_and_late_copies_are_ignored():
    sources = EstopSources()
    sources.update('panel', True, order=1)
    sources.update('panel', False, order=2)
    assert not sources.update('panel', True, order=1)  # a copy from another subscription
    assert not sources.engaged


def test_a_supervisor_clears_only_dead_sources():
    sources = EstopSources()
    sources.update('dead panel', True, order=7)
    sources.update('live panel', True, order=3)
    assert sources.clear_dead(live_sources={'live panel'}) == (1, 1) and sources.engaged
    sources.update('live panel', False, order=4)
    assert not sources.engaged
    assert sources.update('dead panel', True, order=1)  # a new publisher with its GUID


any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
positive = st.floats(min_value=1e-3, max_value=10.0)
step = st.tuples(any_float, any_float, st.booleans(), st.booleans(), st.booleans(),
                 st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)))


def accelerated_by(now, before):
    """How much faster than allowed by braking: |now| beyond |before| (or beyond 0 on reversal)."""
    if now * before >= 0:
        return abs(now) - abs(before)
    return abs(now)


@settings(max_examples=property_examples(2_000), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(max_linear=positive, max_angular=positive, linear_accel=positive,
       angular_accel=positive, period=st.floats(min_value=0.005, max_value=1.0),
       steps=st.lists(step, min_size=1, max_size=25),
       estop_every=st.integers(min_value=0, max_value=5))
def test_safety_properties(max_linear, max_angular, linear_accel, angular_accel, period,
                           steps, estop_every):
    layer = SafetyLayer(SafetyLimits(max_linear, max_angular, linear_accel, angular_accel,
                                     *[10.0] * 4), period)
    previous = (0.0, 0.0)
    for index, (linear, angular, stale, disabled, estop_flag, dt) in enumerate(steps):
        estop = estop_flag and estop_every > 0 and index % estop_every == 0
        result = layer.filter(linear, angular, estop=estop, enabled=not disabled,
                              inputs_fresh=not stale, dt=dt)
        out = (result.linear, result.angular)
        # Never NaN or infinite, never beyond the limits.
        assert all(math.isfinite(value) for value in out)
        assert abs(out[0]) <= max_linear + EPS and abs(out[1]) <= max_angular + EPS
        # E-stop, disable, stale input and non-finite requests always win, at once.
        if estop or disabled or stale or not (math.isfinite(linear) and math.isfinite(angular)):
            assert out == (0.0, 0.0) and result.stop_reason
        else:
            assert result.stop_reason == ''
            # Acceleration bound: only braking may change speed faster than accel x dt.
            allowed = period if dt is None else min(dt, 2.0 * period)
            assert accelerated_by(out[0], previous[0]) <= linear_accel * allowed + EPS
            assert accelerated_by(out[1], previous[1]) <= angular_accel * allowed + EPS
            # Never moves against the request's direction.
            assert out[0] * linear >= 0 and out[1] * angular >= 0
        previous = out
