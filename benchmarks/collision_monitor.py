"""The collision monitor's cost per control tick, against the tick without a scan in the same run.

    python benchmarks/collision_monitor.py [--ticks 2000] [--beams 360]

Scans come from the simulator's laser in cluttered scenes (seeds 0-9, 4 obstacles), the robot
placed at random poses. In turns, per tick:
  tick        Controller.tick of a go_to with a target in view and no scan (the baseline),
  points      Scan.points(): a LaserScan's ranges to points in base_link,
  monitor     core.collision_monitor.monitor() on those points (circle footprint; polygon below),
  tick+scan   Controller.tick with the scan: the monitor and the avoidance, as the node runs it.
Prints p50/p95 and the ratio to the baseline, writes JSON (--output).
"""

import argparse
from dataclasses import replace
import json
from pathlib import Path
import time

import numpy as np

from vla_ros.core import paths
from vla_ros.core.collision_monitor import monitor
from vla_ros.core.control import Controller
from vla_ros.core.footprint import Footprint
from vla_ros.core.policy import TargetView
from vla_ros.evaluation.lockstep import StackSettings
from vla_ros.sim.scene import generate_scene
from vla_ros.sim.world import ScanSettings, SimWorld

RECTANGLE = Footprint(polygon=((0.3, 0.25), (0.3, -0.25), (-0.3, -0.25), (-0.3, 0.25)))


def scans(beams: int, count: int) -> list:
    rng = np.random.default_rng(0)
    settings = ScanSettings(beams=beams)
    result = []
    for seed in range(10):
        scene = generate_scene(seed, clutter=4)
        world = SimWorld(scene, 32, 24)
        for _ in range(count // 10):
            world.place_robot(*rng.uniform(-2.5, 2.5, 2), float(rng.uniform(-np.pi, np.pi)))
            result.append(settings.message(world.scan(beams=beams, noise_m=0.01, rng=rng)))
        world.close()
    return result


def percentiles(seconds) -> dict:
    values = 1e3 * np.asarray(seconds)
    return {'p50_ms': float(np.percentile(values, 50)),
            'p95_ms': float(np.percentile(values, 95))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ticks', type=int, default=2000)
    parser.add_argument('--beams', type=int, default=360)
    parser.add_argument('--output', default='benchmarks/results/collision_monitor.json')
    args = parser.parse_args()
    settings = StackSettings.from_params_file(paths.default_params_file())
    print(f'[bench] {args.ticks} scans of {args.beams} beams from cluttered scenes ...',
          flush=True)
    laser = scans(args.beams, args.ticks)
    # A close target's mask, 30 % of the view wide: the tick also matches its run of returns.
    view = TargetView(0.1, 0.0, 0.9, 0.02, 0.1, width=0.3)
    go_to = settings.go_to_intent()
    circle = settings.control.monitor
    rectangle = replace(circle, footprint=RECTANGLE)
    timings = {name: [] for name in ('tick', 'points', 'monitor', 'monitor polygon',
                                     'tick+scan')}
    plain, with_scan = Controller(None, settings.control), Controller(None, settings.control)
    plain.follow(go_to, 'red ball', 0.0)
    with_scan.follow(go_to, 'red ball', 0.0)
    for index, scan in enumerate(laser):
        now = index / settings.control.control_rate_hz
        if index % 500 == 0:
            print(f'[bench] tick {index}/{len(laser)}', flush=True)
        started = time.perf_counter()
        plain.tick(now, view, 0.0, 0.0)
        timings['tick'].append(time.perf_counter() - started)
        started = time.perf_counter()
        points = scan.points()
        timings['points'].append(time.perf_counter() - started)
        started = time.perf_counter()
        monitor(0.25, 0.3, points, circle)
        timings['monitor'].append(time.perf_counter() - started)
        started = time.perf_counter()
        monitor(0.25, 0.3, points, rectangle)
        timings['monitor polygon'].append(time.perf_counter() - started)
        started = time.perf_counter()
        with_scan.tick(now, view, 0.0, 0.0, scan=scan.points(), scan_age=0.0)
        timings['tick+scan'].append(time.perf_counter() - started)
    base = np.percentile(timings['tick'], 50)
    results = {name: {**percentiles(values), 'ratio_to_tick': float(
        np.percentile(values, 50) / base)} for name, values in timings.items()}
    print(f'{"work":<16} {"p50":>9} {"p95":>9} {"p50/tick":>9}')
    for name, result in results.items():
        print(f'{name:<16} {result["p50_ms"]:>7.3f}ms {result["p95_ms"]:>7.3f}ms '
              f'{result["ratio_to_tick"]:>8.1f}x')
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({'beams': args.beams, 'ticks': len(laser),
                                             'results': results}, indent=2))
    print(f'[bench] wrote {args.output}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
