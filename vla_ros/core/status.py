"""The policy's statuses, the words it publishes on `status`, in one place: what each kind of
status starts with and what it means for the robot. Everything that reads a status (the
policy itself, /diagnostics, the segmenter, the evaluator) asks these functions instead of
matching text of its own.

    idle                         no command yet
    approaching <thing> [(...)]  a go_to under way, with notes in brackets
    searching <thing>            turning to find it
    exploring (<n> frontiers left)   driving on to find it, where it could not be seen
    arrived | found <thing> | not found[: explored ...] | blocked | done: <motion>     final
    not understood: ...          a command refused (final)
    ambiguous: <n> <things> in view, say which ...   several fit alike (final)
    stopped: <reason>            held still; final for a stop command, lost input, an invalid
                                 embedding; a fault that clears by itself otherwise
    waiting (<n> s)              a step of waiting (core.steps)
    step <i>/<n>: <status>       a command of several steps: the status of its step i
"""

import re

IDLE = 'idle'
ARRIVED = 'arrived'
NOT_FOUND = 'not found'
BLOCKED = 'blocked'
APPROACHING = 'approaching'
SEARCHING = 'searching'
EXPLORING = 'exploring'
WAITING = 'waiting'
STOPPED = 'stopped: '
REFUSED = 'not understood: '
AMBIGUOUS = 'ambiguous: '  # several things fit the command alike: say which

# Statuses after which the robot stays still until the next command.
FINAL_STATUSES = (ARRIVED, NOT_FOUND, BLOCKED, 'stopped: stop command', 'stopped: input lost')
FINAL_PREFIXES = ('found ', NOT_FOUND + ': ', 'done: ', 'moved ', 'turned ', 'stopped short: ',
                  REFUSED, AMBIGUOUS, 'stopped: invalid embedding',
                  'stopped: zero embedding')
# Held still by a fault an operator should see (it clears when the fault does).
FAULTS = ('stopped: e-stop', 'stopped: disabled', 'stopped: stale input', 'stopped: stale scan',
          'stopped: stale segmentation', 'stopped: stale odometry', 'stopped: scan lost',
          'stopped: scan unreadable ahead')
STALE = ('stopped: stale input', 'stopped: stale scan', 'stopped: stale segmentation',
         'stopped: stale odometry')


# Final statuses of a step done as asked: the next step may begin.
SUCCESS_STATUSES = (ARRIVED,)
SUCCESS_PREFIXES = ('found ', 'done: ', 'moved ', 'turned ')
STEP = re.compile(r'step (\d+)/(\d+): ')


def stopped(reason: str) -> str:
    return STOPPED + reason


def step_status(index: int, count: int, status: str) -> str:
    """The status of step `index` (from 1) of `count`."""
    return f'step {index}/{count}: {status}'


def split_step(status: str) -> tuple:
    """(step index from 1, step count, the step's own status); (None, None, status) for a
    command of one step.
    """
    match = STEP.match(status)
    if match is None:
        return None, None, status
    return int(match[1]), int(match[2]), status[match.end():]


def own(status: str) -> str:
    """The status without its step prefix: what the current step is doing."""
    return split_step(status)[2]


def is_final(status: str) -> bool:
    """Whether a status ends the current instruction (success or not)."""
    status = own(status)
    return status in FINAL_STATUSES or status.startswith(FINAL_PREFIXES)


def is_success(status: str) -> bool:
    """A final status of a command (or step) done as asked."""
    status = own(status)
    return status in SUCCESS_STATUSES or status.startswith(SUCCESS_PREFIXES)


def is_stopped(status: str) -> bool:
    """Held still: 'stopped: <reason>'."""
    return own(status).startswith(STOPPED)


def is_fault(status: str) -> bool:
    return own(status).startswith(FAULTS)


def is_stale(status: str) -> bool:
    """Held for want of fresh input (targets, scan or segmentation)."""
    return own(status).startswith(STALE)


def is_invalid_embedding(status: str) -> bool:
    """An instruction whose embedding was unusable (NaN, wrong size, zero)."""
    return own(status).startswith(('stopped: invalid', 'stopped: zero'))


def is_refusal(status: str) -> bool:
    return own(status).startswith(REFUSED.rstrip())


def is_approaching(status: str) -> bool:
    return own(status).startswith(APPROACHING)


def is_searching(status: str) -> bool:
    return own(status).startswith(SEARCHING)


def is_exploring(status: str) -> bool:
    return own(status).startswith(EXPLORING)


def is_waiting(status: str) -> bool:
    return own(status).startswith(WAITING)


def is_not_found(status: str) -> bool:
    status = own(status)
    return status == NOT_FOUND or status.startswith(NOT_FOUND + ': ')


def record_change(statuses: list, status: str) -> None:
    """Append `status` to a record of changes (the policy also repeats it once a second)."""
    if not statuses or statuses[-1] != status:
        statuses.append(status)
