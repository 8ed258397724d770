"""In-process ROS graph for node tests: a private Context, an executor thread, a probe node."""

import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class RosGraph:
    """Nodes under test and a probe node that publishes inputs and records outputs."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        # Callbacks only hand over to worker threads, so one executor thread is enough; and
        # rclpy's MultiThreadedExecutor adds up to ~1 s latency to back-to-back messages
        # (ros2/rclpy#1452, measured here in benchmarks/perception_latency.py's notes).
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = Node('probe', context=self.context)
        self.nodes = [self.probe]
        self.executor.add_node(self.probe)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def publisher(self, message_type, topic, qos=10):
        return self.probe.create_publisher(message_type, topic, qos)

    def collect(self, message_type, topic, qos=10):
        """A list that fills with every message received on `topic`."""
        received = []
        self.probe.create_subscription(message_type, topic, received.append, qos)
        return received

    def wait_for_subscribers(self, publisher, count=1, timeout=10.0):
        return wait_until(lambda: publisher.get_subscription_count() >= count, timeout)

    def close(self):
        for node in self.nodes[1:]:
            if hasattr(node, 'shutdown'):
                node.shutdown()
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)  # destroying nodes under a spinning thread can abort
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def wait_until(predicate, timeout=10.0, period=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return predicate()
