"""Running a node as a process: main() of each node executable, stop signals, --help."""

import signal
import sys
import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from vla_ros.core.errors import ModelLoadError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_keyboard_interrupt(signum, frame):
    hold_stop_signals()  # the next one comes during cleanup: take it, do not interrupt
    raise KeyboardInterrupt


def _take_stop_signal(signum, frame):
    """A stop signal while stopping: nothing to do, the stop is under way."""


def install_stop_signals() -> None:
    """The first SIGINT or SIGTERM arrives as KeyboardInterrupt from now on. SIGINT explicitly
    too: a process started from a background job inherits it ignored, and Python then
    installs no KeyboardInterrupt handler (the node would never stop).
    """
    _set_stop_handlers(_raise_keyboard_interrupt)


def hold_stop_signals() -> None:
    """Stop signals are taken and dropped from now on, for a process that is stopping. A Ctrl-C
    in a terminal reaches a launched node twice (from the terminal, and forwarded by launch),
    and launch may escalate to SIGTERM: neither may cut short the zero Twist, the worker's
    stop or the node's destruction. A Python handler, not SIG_IGN: one still pending when the
    handlers change would otherwise end in "Signal ignored due to race condition". The
    cleanup is bounded; SIGKILL still ends it.
    """
    _set_stop_handlers(_take_stop_signal)


def ignore_stop_signals() -> None:
    """For the interpreter's exit, once the cleanup is done: it puts default handlers back in
    place of Python ones (a SIGTERM would then kill it mid-exit) but keeps an ignored signal
    ignored.
    """
    _set_stop_handlers(signal.SIG_IGN)


def _set_stop_handlers(handler) -> None:
    if threading.current_thread() is threading.main_thread():
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, handler)


def spin_until_stopped(executor, context=None) -> None:
    """Spin until SIGINT, SIGTERM or the context's end; the waits are bounded because Python
    runs signal handlers only between them.
    """
    install_stop_signals()
    while rclpy.ok(context=context):
        executor.spin_once(timeout_sec=0.2)


def wants_help(argv) -> bool:
    """Whether the command line asks for help (before any --ros-args)."""
    own = argv[1:argv.index('--ros-args')] if '--ros-args' in argv else argv[1:]
    return any(arg in ('-h', '--help') for arg in own)


def print_help(node_class) -> None:
    """What `ros2 run vla_ros <node> --help` prints: usage, what it does, its parameters."""
    import inspect

    from vla_ros.core.config import NODE_TABLES

    name = node_class.NODE_NAME
    summary = (inspect.getmodule(node_class).__doc__ or '').strip().splitlines()[0]
    print(f'usage: ros2 run vla_ros {name} [--ros-args -p NAME:=VALUE ... '
          f'--params-file FILE -r FROM:=TO]\n\n{summary}\n')
    table = NODE_TABLES.get(name)
    if table:
        print('parameters (config/vla.yaml; read-only ones are set at start):')
        for param in table.values():
            flags = ', read-only' if param.read_only else ''
            print(f'  {param.name} = {param.default!r}{flags}\n      {param.description}')


def run_node(node_class, args=None) -> int:
    """main() of a node executable: spin until Ctrl-C, SIGTERM or shutdown, then clean up.

    rclpy's own SIGINT handler would shut the context down before `finally:` runs, and a
    zero Twist published there would never arrive; so SIGINT and SIGTERM become
    KeyboardInterrupt while spinning and the node's shutdown() still has a working context.
    One executor thread: callbacks only hand over (and rclpy's MultiThreadedExecutor delays
    back-to-back messages, ros2/rclpy#1452).
    """
    if wants_help(sys.argv if args is None else args):
        print_help(node_class)
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    install_stop_signals()  # before the model loads: a Ctrl-C then stops it too
    node = None
    try:
        node = node_class()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until_stopped(executor)
    except (ModelLoadError, rclpy.exceptions.ParameterException, ValueError) as error:
        # Bad configuration: one line that says what to fix, not a traceback.
        rclpy.logging.get_logger(node_class.NODE_NAME).fatal(f'cannot start: {error}')
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        hold_stop_signals()
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
        ignore_stop_signals()
    return 0
