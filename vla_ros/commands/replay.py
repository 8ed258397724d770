"""`vla-ros replay BAG --command TEXT`: the perception pipeline and the policy on recorded frames.

    vla-ros replay runs/bags/lab --command "go to the red ball" --output runs/replay

Reads a rosbag2 folder or file (MCAP or sqlite3) with the rosbags library, takes every frame
of one image topic (sensor_msgs/Image or CompressedImage), and runs on it what the nodes run:
the frame conversion and limits of core.images, the scene segmenter's Perception (CLIPSeg, the
fovea, the CLIP's verification) and the action policy's Controller (the command's grammar and
intent, tracking, servoing, the safety layer), each frame a fresh input. Writes
  OUTPUT/replay.gif  the frames with the mask, the target and the policy's status,
  OUTPUT/track.csv   per frame: bag time, target (x, y, confidence, area, bottom), the
                     velocity the policy would command, its status,
  OUTPUT/track.png   the target's offset and size and the velocity over time.
The robot does not move in a recording, so the policy's later decisions are what it would
command while seeing these frames, not what it would have seen after moving.
"""

import csv
from pathlib import Path
import sys

from vla_ros.core.config import DEVICES

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CSV_FIELDS = ('time_s', 'stamp_s', 'visible', 'x', 'y', 'confidence', 'area', 'bottom',
              'linear_mps', 'angular_rps', 'status')


def image_connections(reader, topic: str):
    """The bag's connections of the image topic to replay (a clear error when unclear)."""
    images = [connection for connection in reader.connections
              if connection.msgtype in IMAGE_TYPES]
    topics = sorted({connection.topic for connection in images})
    if topic:
        chosen = [connection for connection in images if connection.topic == topic]
        if not chosen:
            raise ValueError(f"no image topic '{topic}' in the bag; its image topics: "
                             f"{', '.join(topics) or 'none'}")
        return chosen
    if len(topics) != 1:
        raise ValueError('the bag has no image topic' if not topics else
                         f"the bag has several image topics ({', '.join(topics)}): choose one "
                         'with --image-topic')
    return images


def plot_track(rows, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    times = [row['time_s'] for row in rows]
    figure, (target, velocity) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    seen = [row for row in rows if row['visible']]
    target.plot([row['time_s'] for row in seen], [row['x'] for row in seen], '.',
                label='horizontal offset x (-1 left, 1 right)')
    target.plot([row['time_s'] for row in seen], [row['area'] for row in seen], '.',
                label='area (image fraction)')
    target.set_ylabel('target')
    target.legend(fontsize=8, loc='upper right')
    velocity.plot(times, [row['linear_mps'] for row in rows], label='linear (m/s)')
    velocity.plot(times, [row['angular_rps'] for row in rows], label='angular (rad/s)')
    velocity.set_xlabel('bag time (s)')
    velocity.set_ylabel('policy command')
    velocity.legend(fontsize=8, loc='upper right')
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def annotated(rgb, sight, status: str):
    import cv2

    from vla_ros.core.segmentation import render_overlay

    height, width = rgb.shape[:2]
    frame = (render_overlay(rgb, sight.labels(height, width), sight.prompts, sight.target,
                            candidates=sight.candidates)
             if sight is not None else rgb.copy())
    scale = max(0.4, min(width, height) / 480.0)
    origin = (8, height - 10)
    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(frame, status, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour,
                    max(1, int(thickness * scale)), cv2.LINE_AA)
    return frame


def run_replay(args) -> int:
    from dataclasses import replace

    import imageio.v2 as imageio
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import get_typestore, Stores
    from tqdm import tqdm

    from vla_ros.commands.eval import load_pipeline
    from vla_ros.core import paths
    from vla_ros.core.images import camera_frame, ImageConversionError
    from vla_ros.core.models import ModelLoadError
    from vla_ros.core.perception import target_view
    from vla_ros.core.policy import Segmentation
    from vla_ros.core.text import clean_command
    from vla_ros.evaluation.lockstep import StackSettings

    output = Path(args.output)
    try:
        params_file = args.params_file or paths.default_params_file()
        settings = StackSettings.from_params_file(params_file)
        settings = replace(settings, policy={**settings.policy,
                                             'require_camera_for_motion': True})
        reader = AnyReader([Path(args.bag)],
                           default_typestore=get_typestore(Stores.ROS2_KILTED))
        reader.open()
    except (OSError, ValueError, ModelLoadError) as error:
        print(f'[replay] cannot run: {error}', file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - rosbags raises its own kinds for bad bags
        print(f'[replay] cannot read {args.bag}: {type(error).__name__}: {error}',
              file=sys.stderr)
        return 2
    try:
        connections = image_connections(reader, args.image_topic)
        args.mode = 'real'
        pipeline = load_pipeline(args, settings, params_file)
        output.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError, ModelLoadError) as error:
        reader.close()
        print(f'[replay] cannot run: {error}', file=sys.stderr)
        return 2
    text = clean_command(args.command)[0]
    perception, controller = pipeline.perception(None, None), pipeline.controller()
    total = sum(connection.msgcount for connection in connections)
    if args.max_frames:
        total = min(total, args.max_frames)
    print(f'[replay] {total} frames of {connections[0].topic} from {args.bag}, '
          f'command {text!r}', flush=True)
    rows, frames, dropped, start = [], [], 0, None
    try:
        messages = reader.messages(connections=connections)
        for index, (connection, timestamp, raw) in enumerate(
                tqdm(messages, total=total, desc='replay', unit='frame')):
            if index >= total:
                break
            if start is None:
                start = timestamp * 1e-9
                pipeline.instruct(controller, perception, text, 0.0)
            now = timestamp * 1e-9 - start
            msg = reader.deserialize(raw, connection.msgtype)
            try:
                rgb = camera_frame(msg, settings.segmenter['max_image_pixels'])
            except ImageConversionError as error:
                dropped += 1
                print(f'[replay] frame {index} dropped: {error}', file=sys.stderr)
                continue
            sight = perception.see(rgb, now)
            view = target_view(sight.target) if sight is not None else None
            segmentation = None if sight is None else Segmentation(
                0.0, now, now, now, step=sight.step, alike=sight.alike)
            output_now = controller.tick(now, view, 0.0 if view is not None else None, 0.0,
                                         segmentation=segmentation)
            status = output_now.status
            perception.command_status(status)  # as the scene_segmenter hears it
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            seen = view is not None and view.visible
            rows.append({'time_s': round(now, 4), 'stamp_s': stamp, 'visible': seen,
                         **{name: getattr(view, name) if seen else ''
                            for name in ('x', 'y', 'confidence', 'area', 'bottom')},
                         'linear_mps': output_now.linear, 'angular_rps': output_now.angular,
                         'status': status})
            if index % args.gif_every == 0:
                frames.append(annotated(rgb, sight, status))
    finally:
        reader.close()
    if not rows:
        print('[replay] no frame could be read', file=sys.stderr)
        return 1
    with open(output / 'track.csv', 'w', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    imageio.mimsave(output / 'replay.gif', frames, duration=0.1, loop=0)
    seen = sum(row['visible'] for row in rows)
    plot_track(rows, output / 'track.png', f'{text!r}: target in {seen} of {len(rows)} frames')
    print(f'[replay] target in {seen} of {len(rows)} frames; {dropped} dropped; '
          f'last status: {rows[-1]["status"]}')
    print(f'[replay] wrote {output / "replay.gif"}, {output / "track.csv"}, '
          f'{output / "track.png"}')
    return 0


def add_arguments(parser):
    parser.add_argument('bag', help='rosbag2 folder or .mcap / .db3 file')
    parser.add_argument('--command', required=True, help='what the robot is asked, e.g. '
                        '"go to the red ball"')
    parser.add_argument('--image-topic', default='',
                        help="the camera topic (default: the bag's only image topic)")
    parser.add_argument('--output', default='runs/replay', help='folder for the GIF, CSV, plot')
    parser.add_argument('--params-file', default=None,
                        help='the stack YAML (default: the installed config/vla.yaml)')
    parser.add_argument('--clip-model', default=None, help="CLIP id or folder (default: the "
                        "params file's)")
    parser.add_argument('--clipseg-model', default=None, help="CLIPSeg id or folder "
                        "(default: the params file's)")
    parser.add_argument('--device', default=None, choices=DEVICES,
                        help="default: the params file's device")
    parser.add_argument('--gif-every', type=int, default=1, help='keep every n-th frame in '
                        'the GIF')
    parser.add_argument('--max-frames', type=int, default=0, help='stop after this many '
                        '(0 = all)')
