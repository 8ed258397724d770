"""action_policy's pictures for rviz: an arrow towards the target, the footprint with the
collision monitor's stop and slowdown zones, and the grid exploration plans on with what
it remembers and where it is going.
"""

import math

from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid
from visualization_msgs.msg import Marker, MarkerArray

from vla_ros.core.footprint import zone_outline
from vla_ros.nodes.qos import LATCHED


def target_marker(target, frame_id: str, stamp, camera_hfov_deg: float) -> Marker:
    """An arrow in `frame_id` towards a visible target's bearing, shorter when closer and
    redder when less sure; a DELETE of it when `target` is None or not visible.
    """
    marker = Marker(ns='vla_target', id=0, type=Marker.ARROW)
    marker.header.frame_id, marker.header.stamp = frame_id, stamp
    if target is None or not target.visible:
        marker.action = Marker.DELETE
        return marker
    half_fov = math.radians(camera_hfov_deg) / 2.0
    bearing = -math.atan(target.x * math.tan(half_fov))  # image right = clockwise
    marker.action = Marker.ADD
    marker.pose.orientation.z = math.sin(bearing / 2.0)
    marker.pose.orientation.w = math.cos(bearing / 2.0)
    marker.scale.x = 0.3 + 0.7 * (1.0 - min(target.area, 1.0))
    marker.scale.y = marker.scale.z = 0.05
    marker.color.g = marker.color.a = 1.0
    marker.color.r = 1.0 - target.confidence
    return marker


def zone_markers(monitor, obstacle: str, forward: bool, frame_id: str, stamp) -> MarkerArray:
    """The footprint and the stop and slowdown zones in the direction of travel: red when
    the monitor stops the robot (`obstacle` 'stop'), orange when it slows it ('slowdown').
    """
    zones = MarkerArray()
    for index, (name, distance, colour) in enumerate((
            ('footprint', 0.0, (0.2, 0.6, 1.0)),
            ('stop', monitor.stop_distance_m,
             (1.0, 0.1, 0.1) if obstacle == 'stop' else (0.6, 0.3, 0.3)),
            ('slowdown', monitor.slowdown_distance_m,
             (1.0, 0.6, 0.0) if obstacle == 'slowdown' else (0.6, 0.5, 0.3)))):
        marker = Marker(ns=f'vla_{name}', id=index, type=Marker.LINE_STRIP, action=Marker.ADD)
        marker.header.frame_id, marker.header.stamp = frame_id, stamp
        marker.pose.orientation.w = 1.0
        marker.scale.x = 0.01
        marker.color.r, marker.color.g, marker.color.b = colour
        marker.color.a = 1.0
        outline = zone_outline(monitor.footprint, distance, forward)
        marker.points = [Point(x=float(x), y=float(y)) for x, y in (*outline, outline[0])]
        zones.markers.append(marker)
    return zones


def occupancy_grid(grid, frame_id: str, stamp) -> OccupancyGrid:
    """The exploration's grid (core.mapping) as nav_msgs/OccupancyGrid in the odom frame."""
    message = OccupancyGrid()
    message.header.frame_id, message.header.stamp = frame_id, stamp
    message.info.map_load_time = stamp
    message.info.resolution = float(grid.config.resolution_m)
    message.info.width = message.info.height = grid.cells
    message.info.origin.position.x, message.info.origin.position.y = (
        float(value) for value in grid.origin)
    message.info.origin.orientation.w = 1.0
    message.data = grid.occupancy().reshape(-1).tolist()
    return message


def exploration_markers(sightings, path, frame_id: str, stamp) -> MarkerArray:
    """Where each thing asked for was last confirmed (a sphere and its name), and the path
    being followed on the grid (a line; none: deleted), in the odom frame.
    """
    markers = MarkerArray(markers=[Marker(ns='vla_sightings', action=Marker.DELETEALL)])
    for index, sighting in enumerate(sightings):
        for shape, z, scale in ((Marker.SPHERE, 0.15, 0.3), (Marker.TEXT_VIEW_FACING, 0.5, 0.2)):
            marker = Marker(ns='vla_sightings', id=2 * index + (shape != Marker.SPHERE),
                            type=shape, action=Marker.ADD, text=sighting.thing)
            marker.header.frame_id, marker.header.stamp = frame_id, stamp
            marker.pose.position.x, marker.pose.position.y = sighting.x, sighting.y
            marker.pose.position.z, marker.pose.orientation.w = z, 1.0
            marker.scale.x = marker.scale.y = marker.scale.z = scale
            marker.color.r, marker.color.g, marker.color.a = 1.0, 0.8, 0.9
            markers.markers.append(marker)
    line = Marker(ns='vla_exploration_path', id=0, type=Marker.LINE_STRIP,
                  action=Marker.DELETE if path is None else Marker.ADD)
    line.header.frame_id, line.header.stamp = frame_id, stamp
    if path is not None:
        line.pose.orientation.w, line.scale.x = 1.0, 0.03
        line.color.b, line.color.g, line.color.a = 1.0, 0.5, 1.0
        line.points = [Point(x=float(x), y=float(y)) for x, y in path]
    markers.markers.append(line)
    return markers


class ExplorationDisplay:
    """The exploration's grid, the sightings and the path followed, latched for rviz, at most
    every `period_s` (0: never).
    """

    def __init__(self, node, period_s: float):
        self.grid_pub = node.output(OccupancyGrid, 'exploration_map', LATCHED)
        self.markers_pub = node.output(MarkerArray, 'exploration_markers', LATCHED)
        self.period_s, self.published = period_s, -math.inf

    def publish(self, controller, frame_id: str, now: float, stamp) -> None:
        grid = controller.explorer.grid
        if self.period_s <= 0.0 or grid is None or now - self.published < self.period_s:
            return
        self.published = now
        self.grid_pub.publish(occupancy_grid(grid, frame_id, stamp))
        self.markers_pub.publish(exploration_markers(controller.sightings,
                                                     controller.path_followed, frame_id, stamp))
