"""core.diagnostics rules that need no ROS: when a node's health turns to WARN."""

from vla_ros.core.diagnostics import RefusalWatch


def test_refusing_every_region_for_a_while_is_a_problem():
    watch = RefusalWatch(window_s=60.0, min_checked=100)
    assert watch.problem(0.0, 0, 0, 0) == ''
    assert watch.problem(10.0, 60, 60, 0) == ''  # too few checks to judge
    assert 'refused all 120 regions' in watch.problem(20.0, 120, 120, 0)
    assert watch.problem(30.0, 200, 199, 0) == ''  # one region passed in the window


def test_a_tracked_target_counts_as_accepted():
    """A target followed from frame to frame is not asked again, while look-alikes beside it
    are refused: not a problem.
    """
    watch = RefusalWatch(window_s=60.0, min_checked=100)
    watch.problem(0.0, 0, 0, 10)
    assert watch.problem(30.0, 300, 300, 310) == ''


def test_the_window_forgets_old_acceptances():
    watch = RefusalWatch(window_s=60.0, min_checked=100)
    watch.problem(0.0, 100, 50, 5)
    for second in range(1, 62):
        problem = watch.problem(float(second), 100 + 10 * second, 50 + 10 * second, 5)
    assert 'refused all 600 regions checked in the last 60 s' in problem
