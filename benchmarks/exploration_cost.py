"""What the map and exploring cost per control tick, against the control period's budget and
a tick that does not explore, measured in the same run.

The controller explores the two rooms of vla_ros.fixtures.floor_plan for a target that is
not there (the longest run exploring can make), a scan every second tick (10 Hz at 20 Hz
control) and a view for the value map every second tick (the camera_embedder's 10 Hz);
each call is timed: adding a scan to the grid, painting a view (view_tiles' 3 crops, or the
whole frame), a tick while exploring (path planning once a second included) and, as the
baseline, a tick of the same controller with exploring off while it searches.

    .venv/bin/python benchmarks/exploration_cost.py [--seconds 240] [--map-size 24]
"""

import argparse
import json
import math
from pathlib import Path
import time

import numpy as np

from vla_ros.core.control import Controller, ControlSettings
from vla_ros.core.exploration import ExplorationConfig
from vla_ros.core.mapping import GridConfig
from vla_ros.core.odometry import Pose2D
from vla_ros.core.policy import DEFAULT_INTENTS
from vla_ros.fixtures.floor_plan import CAMERA_MOUNT, two_rooms

GO_TO = next(intent for intent in DEFAULT_INTENTS if intent.behaviour == 'go_to')
DT = 0.05
EMBEDDING_DIM = 512  # a full-size CLIP's (the embedded one's: 128)
VIEW_ROWS = (3, 1)  # view_tiles' default crops; the whole frame


def run(explore: bool, seconds: float, map_size: float) -> dict:
    plan = two_rooms()
    control = Controller(None, ControlSettings(
        exploration=ExplorationConfig(enabled=explore, max_time_s=3600.0),
        grid=GridConfig(size_m=map_size), camera_mount=CAMERA_MOUNT))
    rng = np.random.default_rng(0)
    control.follow(GO_TO, 'red ball', 0.0, embedding=rng.normal(size=EMBEDDING_DIM))
    pose, points = Pose2D(-2.0, -2.0, math.pi / 2), None
    scans, ticks, exploring_ticks = [], [], []
    views = {rows: [] for rows in VIEW_ROWS}
    now, tick = 0.0, 0
    while now < seconds:
        if tick % 2 == 0:
            scan = plan.scan(pose)
            points = scan.points()
            started = time.perf_counter()
            control.observe_scan(scan, pose, 0.0)
            scans.append(time.perf_counter() - started)
            if control.wants_views:
                for rows, took in views.items():
                    embeddings = rng.normal(size=(rows, EMBEDDING_DIM))
                    started = time.perf_counter()
                    control.observe_view(embeddings.reshape(-1), pose, 0.0)
                    took.append(time.perf_counter() - started)
        view = plan.view(pose, (99.0, 99.0))
        started = time.perf_counter()
        out = control.tick(now, view, 0.0, 0.0, scan=points, scan_age=0.0, odom=pose,
                           odom_age=0.0)
        took = time.perf_counter() - started
        (exploring_ticks if out.status.startswith('exploring') else ticks).append(took)
        if out.status.startswith('not found'):
            break
        yaw = pose.yaw + out.angular * DT
        pose = Pose2D(pose.x + out.linear * DT * math.cos(yaw),
                      pose.y + out.linear * DT * math.sin(yaw), yaw)
        now, tick = now + DT, tick + 1
    return {'scans': scans, 'ticks': ticks, 'exploring_ticks': exploring_ticks,
            'views': views, 'status': out.status, 'simulated_s': now}


def cpu() -> str:
    """The CPU's model name and the ISA extensions the figures depend on."""
    from vla_ros.core.backends import isa_flags

    info = Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').is_file() else ''
    name = next((line.split(':', 1)[1].strip() for line in info.splitlines()
                 if line.startswith('model name')), 'unknown CPU')
    return f'{name} ({" ".join(isa_flags()) or "no AVX2"})'


def percentiles(samples) -> dict:
    if not samples:
        return {'count': 0}
    ms = 1e3 * np.asarray(samples)
    return {'count': len(ms), 'p50_ms': float(np.percentile(ms, 50)),
            'p95_ms': float(np.percentile(ms, 95)), 'max_ms': float(ms.max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=240.0, help='simulated seconds')
    parser.add_argument('--map-size', type=float, default=GridConfig().size_m)
    parser.add_argument('--output', default='benchmarks/results/exploration_cost.json')
    args = parser.parse_args()
    baseline = run(False, 30.0, args.map_size)
    exploring = run(True, args.seconds, args.map_size)
    period_ms = 1e3 * DT
    rows = {'tick, not exploring (baseline)': percentiles(baseline['ticks']),
            'scan onto the grid': percentiles(exploring['scans']),
            'a view painted: 3 crops': percentiles(exploring['views'][3]),
            'a view painted: the whole frame': percentiles(exploring['views'][1]),
            'tick while exploring': percentiles(exploring['exploring_ticks'])}
    plain = rows['tick, not exploring (baseline)']['p50_ms']
    print(f'{cpu()}; map {args.map_size:g} m at 0.1 m; '
          f'ended "{exploring["status"]}" after {exploring["simulated_s"]:.0f} s simulated')
    print(f'{"":34} {"n":>6} {"p50 ms":>8} {"p95 ms":>8} {"max ms":>8} {"p50/base":>9} '
          f'{"p95/period":>11}')
    for name, row in rows.items():
        print(f'{name:34} {row["count"]:6d} {row["p50_ms"]:8.3f} {row["p95_ms"]:8.3f} '
              f'{row["max_ms"]:8.2f} {row["p50_ms"] / plain:8.1f}x '
              f'{row["p95_ms"] / period_ms:10.1%}')
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({'cpu': cpu(), 'control_period_ms': period_ms,
                                             'map_size_m': args.map_size, **rows,
                                             'status': exploring['status']}, indent=2))
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
