"""Messages to and from the core's types, in one place: the nodes only call these.

Each reader returns the core value and, when the message cannot be used, why ('' when it
can); the node warns and counts.
"""

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from vla_ros.core.collision_monitor import Scan
from vla_ros.core.exploration import MAX_VIEW_TILES
from vla_ros.core.odometry import Pose2D
from vla_ros.core.policy import TargetView

MAX_TILT = 0.2  # |qx|, |qy| of an odometry pose: more is not a yaw about z (a planar base)
MAX_ODOM_M = 1e5  # an odometry position further from its origin is garbage, not a base


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_key(header) -> tuple:
    """(sec, nanosec): a stamp to compare and pair by, exactly."""
    return header.stamp.sec, header.stamp.nanosec


# Embeddings ---------------------------------------------------------------------------------
def embedding_msg(vector, model_name: str, text: str = None) -> Float32MultiArray:
    """One embedding; the first dimension's label names the model so consumers can refuse
    others. A text embedding also carries its text, as the label of a second dimension of
    size 1, so that the two can never be paired wrongly.
    """
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=model_name, size=len(vector),
                                          stride=len(vector))]
    if text is not None:
        msg.layout.dim.append(MultiArrayDimension(label=text, size=1, stride=1))
    msg.data = [float(value) for value in vector] if len(vector) else []
    return msg


def embeddings_msg(rows, model_name: str) -> Float32MultiArray:
    """Several embeddings of one model, a row each (view_embeddings): the first dimension
    counts the rows and its label names the model, the second is a row's length.
    """
    rows = np.asarray(rows, np.float32)
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=model_name, size=rows.shape[0],
                                          stride=rows.size),
                      MultiArrayDimension(label='embedding', size=rows.shape[1],
                                          stride=rows.shape[1])]
    msg.data = rows.reshape(-1).tolist()
    return msg


def embedding_rows(msg: Float32MultiArray) -> int | None:
    """How many rows an embeddings_msg holds; None when its layout does not fit its data or
    it holds none or more than MAX_VIEW_TILES (each row costs the policy a painting).
    """
    dims = msg.layout.dim
    if len(dims) != 2 or not 1 <= dims[0].size <= MAX_VIEW_TILES or dims[1].size < 1 or (
            dims[0].size * dims[1].size != len(msg.data)):
        return None
    return dims[0].size


def embedding_model_name(msg: Float32MultiArray) -> str:
    return msg.layout.dim[0].label if msg.layout.dim else ''


def embedding_text(msg: Float32MultiArray):
    """The text a text embedding was made from (None when it does not say)."""
    return msg.layout.dim[1].label if len(msg.layout.dim) > 1 else None


# Targets ------------------------------------------------------------------------------------
def target_view(point, extent) -> TargetView:
    """The policy's view of one target from its PointStamped and Vector3Stamped halves."""
    return TargetView(x=point.point.x, y=point.point.y, confidence=point.point.z,
                      area=extent.vector.x, bottom=extent.vector.z, width=extent.vector.y)


def segmentation_lead(source) -> float:
    """How much older the segmentation behind a target is than the target's own frame
    (seconds; < 0: a time_ref after the frame, malformed), from its TimeReference. Both
    stamps come from the camera's clock, so the difference holds whatever a node's clock says.
    """
    frame, segmented = source.header.stamp, source.time_ref
    return (frame.sec - segmented.sec) + (frame.nanosec - segmented.nanosec) * 1e-9


# Laser scans --------------------------------------------------------------------------------
def scan_problem(msg) -> str:
    """Why a LaserScan's geometry cannot be used ('' when it can)."""
    numbers = (msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max)
    if not all(math.isfinite(value) for value in numbers):
        return f'its angles or range limits hold NaN or infinity {numbers}'
    if len(msg.ranges) == 0:
        return 'it has no ranges'
    if len(msg.ranges) > 1 and msg.angle_increment == 0.0:
        return 'angle_increment is 0 with more than one range'
    if not 0.0 <= msg.range_min < msg.range_max:
        return f'range_min {msg.range_min:g} and range_max {msg.range_max:g} are not a range'
    return ''


def scan_of(msg, laser_pose: tuple):
    """(core Scan or None, why not) of a LaserScan from a laser at `laser_pose` (x, y, yaw)
    in base_link.
    """
    problem = scan_problem(msg)
    if problem:
        return None, problem
    return Scan(ranges=msg.ranges, angle_min=msg.angle_min,
                angle_increment=msg.angle_increment, range_min=msg.range_min,
                range_max=msg.range_max, laser_x=laser_pose[0], laser_y=laser_pose[1],
                laser_yaw=laser_pose[2]), ''


# Odometry -----------------------------------------------------------------------------------
def odometry_problem(msg) -> str:
    """Why an Odometry's pose cannot be read as a planar base's ('' when it can)."""
    position, orientation = msg.pose.pose.position, msg.pose.pose.orientation
    values = (position.x, position.y, orientation.x, orientation.y, orientation.z,
              orientation.w)
    if not all(math.isfinite(value) for value in values):
        return f'its pose holds NaN or infinity {values}'
    if max(abs(position.x), abs(position.y)) > MAX_ODOM_M:
        return (f'its position ({position.x:g}, {position.y:g}) is more than {MAX_ODOM_M:g} m '
                'from the odom origin: not a base driving about')
    if (orientation.z, orientation.w) == (0.0, 0.0):
        return 'its orientation has no rotation about z (z and w are 0)'
    if max(abs(orientation.x), abs(orientation.y)) > MAX_TILT:
        return (f'its orientation is tilted (x {orientation.x:.3f}, y {orientation.y:.3f}): '
                'not a yaw about z of a planar base (odometry in another frame?)')
    return ''


def pose_of(msg):
    """(Pose2D in the odom frame or None, why not) of an Odometry."""
    problem = odometry_problem(msg)
    if problem:
        return None, problem
    position, orientation = msg.pose.pose.position, msg.pose.pose.orientation
    return Pose2D.from_quaternion(position.x, position.y, orientation.z, orientation.w), ''


# Publishers ---------------------------------------------------------------------------------
def publisher_of(info) -> tuple:
    """(a publisher's identity: its DDS writer GUID, an order key of its messages) from a
    message's info; (b'', None) where the middleware gives no GUID.
    """
    gid = bytes((info.get('publisher_gid') or {}).get('data', b''))
    if not gid:
        return gid, None
    sequence = info.get('publication_sequence_number')
    return gid, sequence if sequence is not None else info.get('source_timestamp')


# Diagnostics --------------------------------------------------------------------------------
def diagnostic_array(report, name: str, hardware_id: str, stamp) -> DiagnosticArray:
    """One core Report as a DiagnosticArray of one status."""
    status = DiagnosticStatus(level=bytes([report.level]), message=report.message, name=name,
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=key, value=str(value)) for key, value in report.values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
