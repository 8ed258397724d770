"""Commands of several steps: "go to the red ball, then the blue cube", "turn around and go to
the door", "go to the red ball and wait 5 seconds, then go to the blue cube".

A command splits into steps where a sequence word joins two commands ("then", "after that",
or "and" / a comma before a verb of the robot), and only where every part is a command of its
own (core.text): "the black and white ball" stays one thing, "find the ball and go to it"
one command. A part with no verb after a sequence word takes the going of the part before
("..., then the blue cube": go to the blue cube). A stop with a time is a step of waiting;
"come back" a step back to where the command began; a bare stop at the end ("..., then
stop") only ends the last step, as it does in a command of one step. core.control runs the
steps (StepRun: the one under way).
"""

from dataclasses import dataclass
import re

from vla_ros.core.text import clean_command, parse_command, ParsedCommand, verb_kind

MAX_STEPS = 5
MAX_WAIT_S = 60.0  # a longer wait is a delay, which a command does not take (it runs now)
# A word of these is not a step's beginning but joins the steps round it.
SEQUENCE_WORDS = (('and', 'then'), ('and', 'finally'), ('after', 'that'), ('then',),
                  ('afterwards',), ('finally',))
# Words between a joining "and" (or comma) and the verb it announces.
LEAD_WORDS = frozenset({'please', 'then', 'also', 'now'})
# A part that names the thing of a part before it is not a step of its own ("find the red
# ball and go to it").
POINTING_BACK = frozenset({'it', 'there', 'them', 'that', 'one', 'ones'})
# Going back to where the command began ("come back", "and back again", "return to where
# you started"), with nothing else said ("go back 1 meter" is a motion).
RETURNING = (('come', 'back'), ('go', 'back'), ('get', 'back'), ('head', 'back'),
             ('drive', 'back'), ('return',), ('back',))
BACK_WORDS = frozenset({'again', 'here', 'to', 'the', 'start', 'where', 'you', 'we', 'i',
                        'started', 'began', 'were', 'was', 'from', 'came', 'now', 'please',
                        'beginning', 'your', 'my', 'starting', 'point', 'place', 'position',
                        'way'})
TOKENS = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[,;.!?]+")


@dataclass(frozen=True)
class Step:
    """One step of a command: its text (as the command's text embedding is made of it), what
    the grammar made of it, and its kind: command (done by the policy), wait (hold still
    `wait_s` seconds) or return (back to where the command began).
    """

    text: str
    parsed: ParsedCommand
    kind: str = 'command'
    wait_s: float = 0.0

    @property
    def object_phrase(self) -> str:
        """What the segmenter looks for during this step ('' for nothing)."""
        if self.kind != 'command' or self.parsed.negated:
            return ''
        return self.parsed.object_phrase

    @property
    def relation(self):
        """Which one of object_phrase (core.relations.Relation; None: the only one)."""
        return self.parsed.relation if self.object_phrase else None


def command_steps(text: str, extra_verbs=()) -> tuple:
    """The steps of a cleaned command (core.text.clean_command), in order: one Step for a
    command of one step (its parse may refuse it), 2..MAX_STEPS for a command of several; a
    command of more steps is one Step whose parse says so.
    """
    whole = (Step(text, parse_command(text, extra_verbs)),)
    parts = _parts(text, extra_verbs)
    if len(parts) > 1 and parse_command(parts[0][0], extra_verbs).problem.startswith(
            'no verb'):  # "hey robot, go to ...": an address, not a step
        parts[:2] = [(f'{parts[0][0]}, {parts[1][0]}', parts[1][1])]
    if len(parts) < 2:
        return whole
    steps = []
    for index, (part, joined_by_word) in enumerate(parts):
        step = _step(part, steps[-1] if steps else None,
                     index == len(parts) - 1 and joined_by_word, extra_verbs)
        if step is None:
            return whole
        if step.kind != 'end':
            steps.append(step)
    if len(steps) < 2:
        return whole
    if len(steps) > MAX_STEPS:
        return (Step(text, ParsedCommand(text, '', f'{len(steps)} steps: at most {MAX_STEPS} '
                                         'a command')),)
    return tuple(steps)


def step_objects(command: str, extra_verbs=()) -> tuple:
    """What the segmenter looks for in each step of a typed command ('' for nothing)."""
    return tuple(phrase for phrase, _ in step_targets(command, extra_verbs))


def step_targets(command: str, extra_verbs=()) -> tuple:
    """(object phrase, relation) of each step of a typed command: what the segmenter looks
    for and which one of them ('' and None for nothing).
    """
    return tuple((step.object_phrase, step.relation)
                 for step in command_steps(clean_command(command)[0], extra_verbs))


def _parts(text: str, extra_verbs) -> list:
    """The command's text cut at its sequence words: [(part, whether a word joined it to the
    part before: "then", "and"; not punctuation alone)].
    """
    tokens = [(match.group().lower().replace('’', "'"), match.start(), match.end())
              for match in TOKENS.finditer(text)]
    words = [word for word, _, _ in tokens]
    cuts = []  # (first token of the joining words, first token after them)
    index = 0
    while index < len(tokens):
        joined = _joining(words, index, extra_verbs)
        if joined:
            start = index
            while start > 0 and (words[start - 1] == 'and' or _punctuation(words[start - 1])):
                start -= 1  # ", and then": all of it joins
            if not cuts or start >= cuts[-1][1]:
                cuts.append((start, index + joined))
            index += joined
        else:
            index += 1
    parts, begin, joiner = [], 0, ()
    for start, end in cuts:
        parts.append((begin, start, joiner))
        begin, joiner = end, words[start:end]
    parts.append((begin, len(tokens), joiner))
    return [(text[tokens[first][1]:tokens[last - 1][2]].strip(' ,;.!?'),
             not all(map(_punctuation, joiner)))
            for first, last, joiner in parts if last > first and not all(
                map(_punctuation, words[first:last]))]


def _punctuation(token: str) -> bool:
    return not token[0].isalnum()


def _joining(words: list, index: int, extra_verbs) -> int:
    """How many words from `index` join two steps (0: none begin there)."""
    for phrase in SEQUENCE_WORDS:
        if tuple(words[index:index + len(phrase)]) == phrase and index > 0:
            return len(phrase)
    if index > 0 and (words[index] == 'and' or _punctuation(words[index])):
        after = index + 1
        while after < len(words) and words[after] in LEAD_WORDS:
            after += 1
        if after < len(words) and verb_kind(words[after], extra_verbs):
            return after - index
    return 0


def _step(text: str, before: Step | None, may_end: bool, extra_verbs) -> Step | None:
    """A part as a step (kind 'end': a bare stop that ends the step before, allowed when
    `may_end`: the last part, joined by a word); None where the part is not a command of its
    own, so the command is not one of several steps.
    """
    words = [match.group().lower() for match in TOKENS.finditer(text)
             if not _punctuation(match.group())]
    parsed = parse_command(text, extra_verbs)
    returning = [phrase for phrase in RETURNING if tuple(words[:len(phrase)]) == phrase]
    if returning and set(words[len(returning[0]):]) <= BACK_WORDS:
        return Step(text, parsed, 'return')
    if returning and parsed.quantity is None and not parsed.object_phrase:
        return None  # "come back slowly", "come back to me": not a return this supports
    if parsed.problem.startswith('no verb') and before is not None and (
            before.parsed.object_phrase):
        going = verb_kind(before.parsed.verb, extra_verbs) in ('go', 'make', 'reflexive', '')
        lead = ('go' if words[:1] == ['to'] else 'go to') if going else before.parsed.verb
        text = f'{lead} {text}'
        parsed = parse_command(text, extra_verbs)
    if not parsed.understood or (POINTING_BACK & set(words) and not parsed.object_phrase):
        return None
    if parsed.behaviours == {'stop'}:
        quantity = parsed.quantity
        if quantity is not None and quantity.kind == 'duration':
            return Step(text, parsed, 'wait', quantity.value)
        return Step(text, parsed, 'end') if may_end and before is not None else None
    if not (parsed.object_phrase or parsed.directions or parsed.quantity):
        return None  # "go to the red ball, go!": the same command said again
    return Step(text, parsed)


@dataclass
class StepRun:
    """A command of several steps under way: its steps, their text embeddings (None: the
    oracle's given intent), the one being done (from 0) and when it began (policy time).
    """

    steps: tuple
    embeddings: tuple
    intent: object = None  # the oracle's: every command step is this intent
    index: int = 0
    began: float = 0.0
    home: tuple | None = None  # where the command began (odom frame): coming back's goal
    ticked: bool = False  # a control period has run since the command began
    path: tuple | None = None  # (path on the grid back there, policy time it was planned)

    @property
    def step(self) -> Step:
        return self.steps[self.index]
