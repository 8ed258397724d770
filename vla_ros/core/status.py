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
    stopped: <reason>            held still; final for a stop command, lost input, an invalid
                                 embedding; a fault that clears by itself otherwise
"""

IDLE = 'idle'
ARRIVED = 'arrived'
NOT_FOUND = 'not found'
BLOCKED = 'blocked'
APPROACHING = 'approaching'
SEARCHING = 'searching'
EXPLORING = 'exploring'
STOPPED = 'stopped: '
REFUSED = 'not understood: '

# Statuses after which the robot stays still until the next command.
FINAL_STATUSES = (ARRIVED, NOT_FOUND, BLOCKED, 'stopped: stop command', 'stopped: input lost')
FINAL_PREFIXES = ('found ', NOT_FOUND + ': ', 'done: ', 'moved ', 'turned ', 'stopped short: ',
                  REFUSED, 'stopped: invalid embedding',
                  'stopped: zero embedding')
# Held still by a fault an operator should see (it clears when the fault does).
FAULTS = ('stopped: e-stop', 'stopped: disabled', 'stopped: stale input', 'stopped: stale scan',
          'stopped: stale segmentation', 'stopped: stale odometry', 'stopped: scan lost',
          'stopped: scan unreadable ahead')
STALE = ('stopped: stale input', 'stopped: stale scan', 'stopped: stale segmentation',
         'stopped: stale odometry')


def stopped(reason: str) -> str:
    return STOPPED + reason


def is_final(status: str) -> bool:
    """Whether a status ends the current instruction (success or not)."""
    return status in FINAL_STATUSES or status.startswith(FINAL_PREFIXES)


def is_stopped(status: str) -> bool:
    """Held still: 'stopped: <reason>'."""
    return status.startswith(STOPPED)


def is_fault(status: str) -> bool:
    return status.startswith(FAULTS)


def is_stale(status: str) -> bool:
    """Held for want of fresh input (targets, scan or segmentation)."""
    return status.startswith(STALE)


def is_invalid_embedding(status: str) -> bool:
    """An instruction whose embedding was unusable (NaN, wrong size, zero)."""
    return status.startswith(('stopped: invalid', 'stopped: zero'))


def is_refusal(status: str) -> bool:
    return status.startswith(REFUSED.rstrip())


def is_approaching(status: str) -> bool:
    return status.startswith(APPROACHING)


def is_searching(status: str) -> bool:
    return status.startswith(SEARCHING)


def is_exploring(status: str) -> bool:
    return status.startswith(EXPLORING)


def is_not_found(status: str) -> bool:
    return status == NOT_FOUND or status.startswith(NOT_FOUND + ': ')


def record_change(statuses: list, status: str) -> None:
    """Append `status` to a record of changes (the policy also repeats it once a second)."""
    if not statuses or statuses[-1] != status:
        statuses.append(status)
