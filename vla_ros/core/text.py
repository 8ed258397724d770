"""Commands as people type them: cleaning, and a small English grammar that says what a
command asks for, or that it is not a command this robot understands.

The grammar knows the closed classes of English (articles, pronouns, prepositions,
conjunctions, politeness, negation) and the verbs of a mobile robot; every other word is
open vocabulary and may only appear inside a noun phrase. A command is understood when:
  - it has a verb of the robot outside its noun phrases ("go", "find", "turn", "stop", ...),
  - each verb is followed by what it can take: "turn" a direction ("turn on the lights" is not
    understood), "go" a place or a direction ("go home", "move the box" are not), "find" a thing,
  - every other word is a word of the grammar or inside a noun phrase: one introduced by an
    article, after a preposition or a verb that takes a thing, or a clause of its own that a
    later one points back to ("the red ball, go there"),
  - it is no question or report ("did you go to ...", "you went to ..."), points nowhere away
    ("away from", "anything except"), has no bare stop after the command ("go to the ball.
    STOP!") and at most MAX_COMMAND_WORDS words.
The object phrase is the noun phrase the command is about: after "look/search ... for", else
the first one a verb or preposition governs, else the first one. Whether "go to the red ball"
is a go_to is not decided here: the policy asks the CLIP text embedding (core.policy); this
only refuses what the embedding should never be asked about, and names the object.
"""

from dataclasses import dataclass
from functools import lru_cache
import math
import re
import unicodedata

from vla_ros.core.relations import Relation, take_relation

MAX_COMMAND_CHARS = 1000
MAX_COMMAND_WORDS = 30  # longer is refused: the text encoder would see only its start
MAX_STATUS_CHARS = 80  # a refused command is quoted this long in the status


def _forms(*bases) -> frozenset:
    """A verb's present forms: go -> go, goes, going; stop -> stopping. No past forms: "you
    went to the red ball" tells, it does not ask.
    """
    forms = set()
    for base in bases:
        stem = base[:-1] if base.endswith('e') and not base.endswith('ee') else base
        forms.update({base, base + 's', base + 'es', stem + 'ing'})
        if base[-1] not in 'aeiouwy':
            forms.add(base + base[-1] + 'ing')  # stopping, getting (and harmless others)
    return frozenset(forms)


# Verbs by what may follow them (their complement), base forms plus irregular forms.
GO_VERBS = _forms('go', 'goto', 'drive', 'move', 'head', 'navigate', 'travel', 'proceed', 'roll',
                  'walk', 'come', 'get', 'return', 'steer', 'ride', 'advance', 'continue',
                  'keep', 'step', 'back', 'reverse', 'pull', 'run', 'retreat', 'scoot')
SEEK_VERBS = _forms('find', 'locate', 'seek', 'search', 'look', 'spot', 'see', 'track', 'hunt',
                    'face', 'scan')
REACH_VERBS = _forms('approach', 'reach', 'visit')
TURN_VERBS = _forms('turn', 'rotate', 'spin', 'pivot', 'veer', 'swing')
STOP_VERBS = _forms('stop', 'halt', 'freeze', 'wait', 'stay', 'hold', 'stand', 'cease', 'pause',
                    'park', 'brake', 'remain', 'quit')
REFLEXIVE_VERBS = _forms('take', 'bring')  # "take yourself to"
MAKE_VERBS = _forms('make')  # "make your way to", "make a left turn"
# Verbs that say which way: "advance" is forwards, "reverse" backwards.
IMPLIED_DIRECTIONS = {**dict.fromkeys(_forms('advance', 'proceed', 'continue'), 'forward'),
                      **dict.fromkeys(_forms('reverse', 'retreat', 'backup'), 'backward')}
WHERE = frozenset({'where'})  # "where is the red ball": asks to look for it
REVERSING_VERBS = _forms('back', 'reverse', 'retreat', 'backup')

DETERMINERS = frozenset({'the', 'a', 'an', 'that', 'this', 'these', 'those', 'some', 'any',
                         'my', 'your', 'our', 'another'})
PRONOUNS = frozenset({'i', 'you', 'me', 'we', 'us', 'it', 'them', 'yourself', 'myself',
                      'one', 'ones', 'robot', 'bot'})
PREPOSITIONS = frozenset({
    'to', 'towards', 'toward', 'into', 'onto', 'on', 'at', 'by', 'near', 'nearer', 'next',
    'close', 'closer', 'beside', 'behind', 'in', 'inside', 'under', 'over', 'up', 'down',
    'around', 'round', 'past', 'through', 'across', 'along', 'between', 'above', 'below',
    'front', 'for', 'from', 'with', 'off', 'away', 'out', 'about', 'of', 'till', 'until'})
CONJUNCTIONS = frozenset({'and', 'or', 'but', 'then', 'so', 'if', 'when', 'whenever', 'while',
                          'once', 'as', 'because', 'before', 'after'})
DIRECTIONS = frozenset({'left', 'right', 'forward', 'forwards', 'backward', 'backwards', 'back',
                        'ahead', 'straight', 'clockwise', 'counterclockwise', 'anticlockwise',
                        'sideways', 'u', 'turn', 'turns', 'u-turn', 'uturn'})
NEGATIONS = frozenset({'not', 'never', 'no', 'nope', 'nor', 'neither', 'nothing', 'nowhere',
                       'none', 'nobody'})
# Words that point away from a thing or leave it out: this robot only goes to things.
EXCLUSIONS = frozenset({'away', 'from', 'off', 'out', 'except', 'without', 'unless',
                        'besides', 'instead', 'avoid', 'avoiding', 'anything', 'everything',
                        'anywhere', 'everywhere'})
# A question about what happened ("did you go to ...", "how do I get to ...") is no command.
ASKING_AFTER = {'did': PRONOUNS | DETERMINERS, 'do': PRONOUNS | DETERMINERS,
                'does': PRONOUNS | DETERMINERS, 'have': PRONOUNS, 'has': PRONOUNS | DETERMINERS,
                'was': PRONOUNS, 'were': PRONOUNS, 'had': PRONOUNS,
                'how': frozenset({'do', 'does', 'did', 'can', 'could', 'should', 'would', 'is',
                                  'are', 'will', 'far', 'long', 'much', 'many'})}
# Laughter says nothing about the task (a cancel after it does: TAKEN_BACK): lol, lolol,
# lolz, haha…, hehe…, lmao, lmfao, rofl, xd.
LAUGHTER = re.compile(r'(?:lo+l(?:ol)*z?|h?(?:ha)+h?|h?(?:he)+h?|lmf?a+o+|rofl|x+d+)')
FILLERS = frozenset({
    # politeness, address, requests and hedges
    'please', 'kindly', 'hey', 'hi', 'hello', 'ok', 'okay', 'alright', 'buddy', 'thanks',
    'thank', 'would', 'could', 'can', 'will', 'shall', 'should', 'must', 'may', 'might',
    'need', 'want', 'like', 'mind', 'try', 'trying', 'let', 'possible', 'ready', 'sure',
    'how', 'about', 'job', 'task', 'emergency',
    # be and do, and the adverbs of a command done at once and within the safety limits
    'is', 'are', 'am', 'be', 'been', 'was', 'were', 'do', 'does', 'did', 'done', 'have', 'has',
    'now', 'just', 'immediately', 'directly', 'asap', 'again', 'first', 'finally', 'also',
    'too', 'really', 'very', 'way', 'all', 'more', 'still', 'put', 'ever', 'only', 'there',
    'here', 'somewhere', 'anywhere', 'where', 'moving', 'right', 'exactly', 'safely', 'well',
    'instead', 'yet', 'already', 'get', 'go', 'further', 'farther',
    # relative pronouns (they end a noun phrase)
    'which', 'who', 'whose', 'whom',
    'except', 'without', 'unless', 'besides', 'avoid', 'avoiding', 'anything', 'everything',
    'everywhere', 'bro', 'dude'})
CLAUSE_WORDS = frozenset({'and', 'then', 'but', 'or', 'so'})
# A command that ends with one of these is taken back: "go to the purple capsule lol jk".
TAKEN_BACK = (('just', 'kidding'), ('only', 'kidding'), ('kidding',), ('jk',), ('jking',),
              ('jkjk',), ('j', 'k'),
              ('never', 'mind'), ('nevermind',), ('nvm',), ('actually', 'no'),
              ('actually', 'nope'), ('actually', 'do', 'not'), ('no', 'wait'), ('wait', 'no'),
              ('scratch', 'that'), ('forget', 'it'), ('forget', 'that'), ('cancel', 'that'),
              ('not', 'really'), ('psych',), ('sike',))
# A thing after these is a route or a place relative to it, not where to go.
ROUTE_PREPOSITIONS = frozenset({'behind', 'past', 'through', 'under', 'underneath', 'beneath',
                                'into', 'inside', 'across', 'along', 'around', 'round',
                                'between', 'beyond', 'below', 'above', 'onto', 'via', 'over',
                                'before', 'after'})
INTENSIFIED = (PREPOSITIONS | {'there', 'here', 'now', 'away', 'back'}) - {
    'of', 'around', 'round'}
# Direction words that make a motion of their own ("right" also intensifies: "right up to").
MOTION_DIRECTIONS = frozenset({'left', 'forward', 'forwards', 'backward', 'backwards', 'back',
                               'ahead', 'clockwise', 'counterclockwise', 'anticlockwise',
                               'around', 'round', 'u-turn', 'uturn'})

# What a command may say besides what to do, done by core.policy: how far, how much to turn,
# how long (a quantity), and how fast (a manner). Conditions, times and repetitions are
# refused: a command is done whole or not at all.
DISTANCE_UNITS = {**dict.fromkeys(('m', 'meter', 'meters', 'metre', 'metres'), 1.0),
                  **dict.fromkeys(('cm', 'centimeter', 'centimeters', 'centimetre',
                                   'centimetres'), 0.01),
                  **dict.fromkeys(('mm', 'millimeter', 'millimeters', 'millimetre',
                                   'millimetres'), 0.001),
                  **dict.fromkeys(('ft', 'foot', 'feet'), 0.3048),
                  **dict.fromkeys(('inch', 'inches'), 0.0254),
                  **dict.fromkeys(('yard', 'yards'), 0.9144)}
ANGLE_UNITS = {**dict.fromkeys(('degree', 'degrees', 'deg', 'degs'), math.pi / 180.0),
               **dict.fromkeys(('radian', 'radians', 'rad', 'rads'), 1.0)}
DURATION_UNITS = {**dict.fromkeys(('s', 'sec', 'secs', 'second', 'seconds'), 1.0),
                  **dict.fromkeys(('min', 'mins', 'minute', 'minutes'), 60.0)}
UNITS = {**{unit: ('distance', scale) for unit, scale in DISTANCE_UNITS.items()},
         **{unit: ('angle', scale) for unit, scale in ANGLE_UNITS.items()},
         **{unit: ('duration', scale) for unit, scale in DURATION_UNITS.items()}}
NUMBER_WORDS = {'zero': 0, 'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6,
                'seven': 7, 'eight': 8, 'nine': 9, 'ten': 10, 'eleven': 11, 'twelve': 12,
                'thirteen': 13, 'fourteen': 14, 'fifteen': 15, 'sixteen': 16, 'seventeen': 17,
                'eighteen': 18, 'nineteen': 19, 'twenty': 20, 'thirty': 30, 'forty': 40,
                'fifty': 50, 'sixty': 60, 'seventy': 70, 'eighty': 80, 'ninety': 90,
                'hundred': 100}
# "a quarter turn", "half a turn", "a full circle": fractions of a whole turn.
TURN_FRACTIONS = {'quarter': 0.25, 'half': 0.5, 'full': 1.0, 'whole': 1.0, 'complete': 1.0}
TURN_NOUNS = frozenset({'turn', 'circle', 'rotation', 'revolution', 'spin'})
# "a little", "a bit", "slightly": the small amount core.policy documents (a distance or an
# angle, whichever the motion makes).
SMALL_AMOUNTS = (('a', 'little', 'bit'), ('a', 'tiny', 'bit'), ('a', 'little'), ('a', 'bit'),
                 ('a', 'touch'), ('slightly',), ('little', 'bit'))
SLOW_WORDS = frozenset({'slowly', 'slow', 'carefully', 'gently', 'cautiously', 'steadily'})
FAST_WORDS = frozenset({'quickly', 'fast', 'rapidly', 'swiftly', 'speedily', 'hurry'})
SPEED_PHRASES = {('full', 'speed'): 'fast', ('top', 'speed'): 'fast', ('max', 'speed'): 'fast',
                 ('maximum', 'speed'): 'fast', ('high', 'speed'): 'fast',
                 ('low', 'speed'): 'slow', ('half', 'speed'): 'slow',
                 ('slow', 'speed'): 'slow'}
CONDITION_WORDS = frozenset({'if', 'when', 'whenever', 'unless', 'until', 'till', 'once',
                             'while', 'whilst', 'before', 'after', 'because'})
# A condition that always holds for a command done at once and ended on arrival: "when you
# are ready", "stop when you get there", "until you reach it".
MET_CONDITION_WORDS = frozenset({'you', 'get', 'reach', 'arrive', 'are', 'there', 'it',
                                 'ready', 'to', 'at', 'here'})
MET_CONDITION_MARKS = frozenset({'there', 'it', 'here', 'arrive', 'ready'})
MET_CONDITION_LEADS = frozenset({'when', 'once', 'until', 'till'})
TIME_WORDS = frozenset({'today', 'tomorrow', 'tonight', 'later', 'soon', 'afterwards',
                        'eventually', 'sometime'})
REPEAT_WORDS = frozenset({'twice', 'thrice', 'times', 'repeatedly', 'forever'})
# Places that say "where you are" to a search ("search the room for ...").
HERE_PLACES = frozenset({'room', 'area', 'place', 'surroundings', 'vicinity', 'space',
                         'whole room', 'entire room', 'whole area'})
# Units that are no thing's name: alone, a number is missing ("turn left degrees").
BARE_UNITS = frozenset({'degree', 'degrees', 'deg', 'degs', 'meters', 'metres',
                        'cm', 'mm', 'centimeter', 'centimeters', 'centimetre', 'centimetres',
                        'millimeter', 'millimeters', 'millimetre', 'millimetres', 'radian',
                        'radians', 'rad', 'rads', 'seconds', 'secs', 'sec', 'minutes', 'mins',
                        'inches', 'feet', 'ft'})
QUALIFIER_WORDS = (SLOW_WORDS | FAST_WORDS | CONDITION_WORDS | TIME_WORDS | REPEAT_WORDS
                   | {word for phrase in SPEED_PHRASES for word in phrase})


def _swaps(word: str):
    return {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}


# The commonest typing slip, two neighbouring letters swapped, in the words of the grammar
# (not in names): "teh" is read as "the". Swaps that are words of their own stay as typed.
SLIPS = {slip: word for word in sorted(DETERMINERS | PREPOSITIONS | CONJUNCTIONS | PRONOUNS)
         if len(word) >= 3 for slip in _swaps(word)
         if slip != word and slip not in {'form', 'pats', 'fro', 'nay', 'noes', 'itll'}}
# After these a cancel word is a name or negated: "go to psych", "the desk of jk", "no kidding".
NOT_BEFORE_A_CANCEL = DETERMINERS | PREPOSITIONS | NEGATIONS


def _taken_back(words) -> tuple | None:
    """The TAKEN_BACK phrase `words` end with, laughter left out and fillers after it looked
    past ("jk please"); None when there is none.
    """
    spoken = [word for word in words if not LAUGHTER.fullmatch(word)]
    while spoken:
        for phrase in TAKEN_BACK:
            count = len(phrase)
            if tuple(spoken[-count:]) == phrase and (
                    len(spoken) == count or spoken[-count - 1] not in NOT_BEFORE_A_CANCEL):
                return phrase
        if spoken.pop() not in FILLERS:
            return None
    return None


CONDITIONS_PROBLEM = 'conditions ("if …", "when …", "unless …", "until …") are not supported'


@dataclass(frozen=True)
class Quantity:
    """How much of a motion a command asks for: a distance (m), an angle (rad), a duration (s),
    or a small amount ("a little": core.policy says how much).
    """

    kind: str  # distance | angle | duration | small
    value: float
    words: str  # as typed: "2 meters"


def _number(words, start: int):
    """(value, words used) of the number at `start`: "2.5", "ninety", "twenty five", "one
    hundred eighty" (None, 0 when there is none; NaN for a run of number words that is no
    number: "one eighty", "two three").
    """
    if start < len(words) and re.fullmatch(r'\d*\.?\d+', words[start]):
        return float(words[start]), 1
    run = []
    while start + len(run) < len(words) and all(
            part in NUMBER_WORDS for part in words[start + len(run)].split('-')):
        run.append(words[start + len(run)])
    if not run:
        return None, 0
    values = [NUMBER_WORDS[part] for word in run for part in word.split('-')]
    hundreds = 0
    if len(values) >= 2 and values[1] == 100 and values[0] < 10:
        hundreds, values = values[0] * 100, values[2:]
    elif values[:1] == [100]:
        hundreds, values = 100, values[1:]
    if not values:
        return float(hundreds), len(run)
    if len(values) == 1 and values[0] < 100:
        return float(hundreds + values[0]), len(run)
    if len(values) == 2 and values[0] % 10 == 0 and 20 <= values[0] < 100 and values[1] < 10:
        return float(hundreds + values[0] + values[1]), len(run)  # "twenty five"
    return math.nan, len(run)


def _starts(words, start: int, phrase) -> bool:
    return tuple(words[start:start + len(phrase)]) == tuple(phrase)


class _Qualifiers:
    """The quantities and manners of one clause, taken out of it, and what it says that cannot
    be done (conditions, times, repetitions, a number without a unit).
    """

    def __init__(self, content):
        self.content = content  # whether a word is open vocabulary (a thing's name)
        self.quantities, self.manners, self.problems = [], [], []
        self.condition = ''
        self.arrival = False  # "until you reach it": met on arriving at the command's thing

    def take(self, clause):
        """The clause without its quantities and manners (recorded in self)."""
        kept, index = [], 0
        while index < len(clause):
            used = (self._condition(clause, index) or self._manner(clause, index)
                    or self._quantity(clause, index) or self._unsupported(clause, index))
            if used:
                index += used
            else:
                kept.append(clause[index])
                index += 1
        return kept

    def _condition(self, clause, index) -> int:
        word, rest = clause[index], clause[index + 1:]
        if word == 'as':
            if rest[:2] != ['soon', 'as'] or rest[2:3] == ['possible']:
                return 0  # "as soon as possible": at once, as every command
        elif word not in CONDITION_WORDS or (word == 'once' and (
                set(rest) <= {'more', 'again', 'please'} or clause[index - 1:index] == ['at'])):
            return 0  # "turn left once", "once more", "at once": one time, now
        reaching = rest[:2] in (['you', 'reach'], ['you', 'arrive']) or rest[:3] == [
            'you', 'get', 'to']  # "until you reach the red ball": the command's thing
        if word in MET_CONDITION_LEADS and rest and (reaching or (
                set(rest) <= MET_CONDITION_WORDS and set(rest) & MET_CONDITION_MARKS)):
            # "when you are ready", "... and stop when you get there": the words stay for
            # the grammar, which reads them as before (an arrival needs a thing, below).
            self.arrival = self.arrival or not set(rest) & {'ready'}
            return 0
        if not self.condition:
            self.condition = ' '.join(clause[index:])
            self.problems.append(f"{CONDITIONS_PROBLEM}: '{self.condition}'")
        return 1

    def _manner(self, clause, index) -> int:
        start = index + 1 if clause[index] == 'at' else index
        for phrase, manner in SPEED_PHRASES.items():
            if _starts(clause, start, phrase) and not self._in_noun_phrase(
                    clause, start, len(phrase)):
                self.manners.append((manner, ' '.join(clause[index:start + len(phrase)])))
                return start + len(phrase) - index
        word = clause[index]
        if word == 'as' and len(clause) > index + 2 and clause[index + 2] == 'as' and (
                clause[index + 1] in SLOW_WORDS | FAST_WORDS):
            for ending in (('possible',), ('you', 'can'), ('you', 'safely', 'can')):
                if _starts(clause, index + 3, ending):
                    used = 3 + len(ending)
                    self.manners.append(('slow' if clause[index + 1] in SLOW_WORDS else 'fast',
                                         ' '.join(clause[index:index + used])))
                    return used
        if word == 'as' and _starts(clause, index, ('as', 'soon', 'as', 'possible')):
            return 4  # at once: every command is
        if word in SLOW_WORDS | FAST_WORDS and (word.endswith('ly') or not self._in_noun_phrase(
                clause, index, 1)):  # "the fast food sign"; an adverb in -ly is never a name
            self.manners.append(('slow' if word in SLOW_WORDS else 'fast', word))
            return 1
        return 0

    def _in_noun_phrase(self, clause, index: int, length: int) -> bool:
        """Whether the words at `index` describe a thing ("the fast food sign", "a high
        speed train"): after an article or a name, before a name.
        """
        before = clause[index - 1] if index > 0 else ''
        after = clause[index + length] if index + length < len(clause) else ''
        return bool(after) and self.content(after) and after not in QUALIFIER_WORDS and (
            before in DETERMINERS or (bool(before) and self.content(before)))

    def _quantity(self, clause, index) -> int:
        start = index + 1 if clause[index] in ('for', 'by') else index
        for phrase in SMALL_AMOUNTS:
            if _starts(clause, start, phrase) and not self._in_noun_phrase(
                    clause, start + (len(phrase) > 1), len(phrase) - (len(phrase) > 1)):
                self._add('small', 1.0, clause[index:start + len(phrase)])
                return start + len(phrase) - index
        if _starts(clause, start, ('a', 'lot')):
            self.problems.append("'a lot': say how far or how much (2 meters, 90 degrees)")
            return start + 2 - index
        # "a quarter turn", "half a turn", "a full circle"
        position = start + 1 if clause[start:start + 1] in (['a'], ['an']) else start
        if position < len(clause) and clause[position] in TURN_FRACTIONS:
            after = position + 1
            if clause[after:after + 1] in (['a'], ['an']):
                after += 1
            if after < len(clause) and clause[after] in TURN_NOUNS:
                self._add('angle', 2.0 * math.pi * TURN_FRACTIONS[clause[position]],
                          clause[index:after + 1])
                return after + 1 - index
        if clause[index] == 'in':  # "in 10 seconds", "in a minute": a delay, not a duration
            value, used = _number(clause, index + 1)
            if value is None and clause[index + 1:index + 2] in (['a'], ['an'], ['half']):
                used = 2 if clause[index + 2:index + 3] in (['a'], ['an']) else 1
                value = 1.0
            if value is not None and clause[index + 1 + used:index + 2 + used] and (
                    clause[index + 1 + used] in UNITS):
                self.problems.append(f"a delay ('{' '.join(clause[index:index + 2 + used])}') "
                                     'is not supported: a command runs at once')
                return used + 2
            return 0
        # "2 meters", "ninety degrees", "a metre", "half a second"
        value, used = _number(clause, start)
        if value is not None and math.isnan(value):
            self.problems.append(f"'{' '.join(clause[start:start + used])}': say the number in "
                                 'digits (180 degrees)')
            return start + used - index
        if value is None and clause[start:start + 1] in (['a'], ['an']):
            value, used = 1.0, 1
        if value is None and _starts(clause, start, ('half',)):
            value, used = 0.5, 2 if clause[start + 1:start + 2] in (['a'], ['an']) else 1
        if value is None:
            return 0
        unit = clause[start + used] if start + used < len(clause) else ''
        following = clause[start + used + 1:start + used + 2]
        if unit in UNITS and not (following and self.content(following[0])
                                  and following[0] not in QUALIFIER_WORDS):
            kind, scale = UNITS[unit]
            self._add(kind, value * scale, clause[index:start + used + 1])
            return start + used + 1 - index
        if unit in REPEAT_WORDS:
            return 0  # "three times": a repetition (_unsupported says so)
        named = index > 0 and self.content(clause[index - 1])  # "box 3", "room 101"
        named = named or (index > 0 and clause[index - 1] in DETERMINERS)  # "the 10 cm cube"
        if start == index and not named and clause[start] not in ('a', 'an', 'one', 'half'):
            self.problems.append(f"'{' '.join(clause[start:start + used])}' what? say the "
                                 'unit (2 meters, 90 degrees, 3 seconds)')
            return used
        return 0

    def _unsupported(self, clause, index) -> int:
        word = clause[index]
        if self._in_noun_phrase(clause, index, 1):
            return 0  # "the twice baked potato", "the seconds box": a name
        value, used = _number(clause, index)
        if value is not None and clause[index + used:index + used + 1] in (['step'], ['steps']):
            self.problems.append(f"'{' '.join(clause[index:index + used + 1])}': say how far "
                                 '(1 meter)')
            return used + 1
        if value is not None and clause[index + used:index + used + 1] == ['times']:
            self.problems.append(f"repetitions ('{' '.join(clause[index:index + used + 1])}') "
                                 'are not supported: one motion a command')
            return used + 1
        if word in BARE_UNITS:
            self.problems.append(f"'{word}' without a number: say how many (2 meters, 90 "
                                 'degrees, 3 seconds)')
            return 1
        if word in TIME_WORDS:
            self.problems.append(f"a time ('{word}') is not supported: a command runs at once")
            return 1
        if word in REPEAT_WORDS:
            self.problems.append(f"repetitions ('{word}') are not supported: one motion a "
                                 'command')
            return 1
        return 0

    def _add(self, kind: str, value: float, words) -> None:
        self.quantities.append(Quantity(kind, value, ' '.join(words)))


CONTRACTIONS = {
    "don't": ('do', 'not'), 'dont': ('do', 'not'), "won't": ('will', 'not'),
    "can't": ('can', 'not'), 'cannot': ('can', 'not'), 'cant': ('can', 'not'),
    "shan't": ('shall', 'not'), "ain't": ('is', 'not'), "let's": ('let', 'us'),
    "i'm": ('i', 'am'), 'pls': ('please',), 'plz': ('please',), 'thx': ('thanks',),
    'u': ('you',), 'ur': ('your',), 'goto': ('go', 'to'),
}
SHORT_IS = frozenset({'there', 'where', 'what', 'it', 'that', 'here', 'who', 'how', 'let'})
SUFFIXES = (("n't", 'not'), ("'d", 'would'), ("'ll", 'will'), ("'re", 'are'), ("'ve", 'have'),
            ("'m", 'am'))

# A number is a token of its own when a unit or nothing follows it ("2m", "2.5"; "3rd" is a word).
TOKENS = re.compile(r"(?P<number>(?:\d+(?:\.\d+)?|(?<![\w.])\.\d+)"
                    r"(?=(?:cm|mm|m|ft|s|sec|secs|deg|degs|rad|min|mins|meters?|metres?"
                    r"|degrees?|seconds?|minutes?|radians?)?(?![^\W_])))"
                    r"|(?P<word>[^\W_]+(?:['’][^\W_]+)*(?:-[^\W_]+)*)"
                    r"|(?P<stop>[,;.!?:]+|(?<!\S)[-–—]+(?!\S))"
                    r"|(?P<quote>[\"'“”‘’()\[\]{}*_]+)"
                    r"|(?P<symbol>\S)")


@dataclass(frozen=True)
class ParsedCommand:
    """What the grammar made of a cleaned command."""

    text: str
    object_phrase: str  # the thing the command is about ('' when none)
    problem: str  # why it is not a command this robot understands ('' when it is)
    negated: bool = False  # "don't ...", "never ...": outside the object phrase
    directions: tuple = ()  # direction words outside the object phrase ("left", "back")
    # The policy behaviours (core.policy.BEHAVIOURS) its structure allows: a thing to go to
    # or look for, or none: stop and motion. Verbs of going ("go", "drive", "approach")
    # make a thing a go_to, verbs of seeking alone ("find", "where is") a look_for.
    behaviours: frozenset = None  # None: not known (a refused command)
    verb: str = ''  # the first verb of the robot outside the object phrase ('' when none)
    quantity: Quantity | None = None  # how far, how much, how long
    manner: str = ''  # '', slow or fast
    manner_words: str = ''  # as typed: "at full speed"
    condition: str = ''  # a condition it was refused for ("if you see a person")
    # Every word and what the parse made of it: verb, object, direction, quantity, manner,
    # negation or grammar (a word of the grammar that asks for nothing: "please", "the").
    roles: tuple = ()
    read_as: tuple = ()  # slips read as the word they almost are: ("'teh' as 'the'",)
    # Which one of the thing ("the left red ball", "... next to the blue cube"): core.relations
    relation: Relation | None = None

    @property
    def understood(self) -> bool:
        return bool(self.text) and not self.problem

    @property
    def quoted(self) -> str:
        """The command as a status quotes it: cut to MAX_STATUS_CHARS."""
        if len(self.text) <= MAX_STATUS_CHARS:
            return self.text
        return self.text[:MAX_STATUS_CHARS - 1].rstrip() + '…'


def clean_command(text: str) -> tuple:
    """Normalise a typed command; return (clean text, list of what was changed and why).

    NFKC folds look-alike Unicode (full-width letters, ligatures); control and format
    characters (zero-width spaces, direction marks, NUL) are removed; white space is collapsed.
    Over-long input is cut to MAX_COMMAND_CHARS characters. An empty result means "no command".
    """
    notes = []
    if not isinstance(text, str):
        raise TypeError(f'a command is a string, got {type(text).__name__}')
    normalised = unicodedata.normalize('NFKC', text)
    kept = []
    removed = 0
    for char in normalised:
        category = unicodedata.category(char)
        if char in '\t\n\r\v\f':
            kept.append(' ')
        elif category in ('Cc', 'Cf', 'Cs', 'Co', 'Cn'):
            removed += 1
        else:
            kept.append(char)
    if removed:
        notes.append(f'removed {removed} control/format/unassigned character(s)')
    cleaned = ' '.join(''.join(kept).split())
    if len(cleaned) > MAX_COMMAND_CHARS:
        notes.append(f'cut from {len(cleaned)} to {MAX_COMMAND_CHARS} characters')
        cleaned = cleaned[:MAX_COMMAND_CHARS].rstrip()
    return cleaned, notes


def _words(text: str):
    """(kind, word) tokens: kind is word, stop (ends a clause) or symbol; quotes are skipped."""
    tokens = []
    for match in TOKENS.finditer(text.lower().replace('’', "'").replace('°', ' degrees ')):
        kind, value = match.lastgroup, match.group()
        if kind == 'quote':
            continue
        if kind == 'number':
            tokens.append(('word', value))
            continue
        if kind != 'word':
            tokens.append((kind, value))
            continue
        if value in CONTRACTIONS:
            tokens.extend(('word', part) for part in CONTRACTIONS[value])
            continue
        for suffix, full in SUFFIXES:
            if value.endswith(suffix) and len(value) > len(suffix):
                stem = value[:-len(suffix)]
                tokens.extend((('word', {'wo': 'will', 'ca': 'can'}.get(stem, stem)),
                               ('word', full)))
                break
        else:
            if value.endswith("'s") and value[:-2] in SHORT_IS:
                tokens.extend((('word', value[:-2]), ('word', 'is')))
            else:
                tokens.append(('word', value))
    return tokens


def _is_latin(word: str) -> bool:
    return all(char.isdigit() or 'LATIN' in unicodedata.name(char, '') or char in "'-"
               for char in word)


class _Grammar:
    def __init__(self, extra_verbs=()):
        self.extra_verbs = _forms(*(verb.strip().lower() for verb in extra_verbs
                                    if verb.strip()))
        self.verbs = {}
        for kind, words in (('stop', STOP_VERBS), ('turn', TURN_VERBS), ('go', GO_VERBS),
                            ('find', SEEK_VERBS | REACH_VERBS | self.extra_verbs),
                            ('where', WHERE), ('reflexive', REFLEXIVE_VERBS),
                            ('make', MAKE_VERBS)):
            for word in words:
                self.verbs.setdefault(word, kind)
        self.known = (frozenset(self.verbs) | DETERMINERS | PRONOUNS | PREPOSITIONS
                      | CONJUNCTIONS | DIRECTIONS | NEGATIONS | FILLERS)

    def content(self, word: str) -> bool:
        return word not in self.known and not LAUGHTER.fullmatch(word)

    def _read_slips(self, tokens) -> list:
        """Slips (SLIPS) replaced in `tokens` by the word they almost are, where a word of
        the grammar fits: first, or after one that is not a determiner ("the noe doll" is a
        name), and never last ("the red nad"); what was read, as "'teh' as 'the'".
        """
        read_as = []
        for index, (kind, value) in enumerate(tokens):
            before = tokens[index - 1] if index else ('stop', '')
            if kind == 'word' and value in SLIPS and value not in self.known and (
                    before[0] != 'word' or (before[1] in self.known
                                            and before[1] not in DETERMINERS)) and (
                    index + 1 < len(tokens) and tokens[index + 1][0] == 'word'):
                read_as.append(f"'{value}' as '{SLIPS[value]}'")
                tokens[index] = (kind, SLIPS[value])
        return read_as

    def parse(self, text: str) -> ParsedCommand:
        tokens = _words(text)
        if not text:
            return ParsedCommand(text, '', 'empty command')
        read_as = self._read_slips(tokens)
        typed = list(tokens)
        tokens, relation, problem = self._take_relation(tokens)
        if problem:
            return ParsedCommand(text, '', problem)
        foreign = [char for char in text if unicodedata.category(char)[0] in 'LM'
                   and not _is_latin(char)]
        if foreign:
            return ParsedCommand(text, '', f"not in English: {''.join(foreign)!r}")
        symbols = [value for kind, value in tokens if kind == 'symbol']
        if symbols:
            return ParsedCommand(text, '', f"symbols are not words: {''.join(symbols)!r}")
        plain = [value for kind, value in tokens if kind == 'word']
        taken_back = _taken_back(plain)
        if taken_back:
            return ParsedCommand(text, '', f"taken back ('{' '.join(taken_back)}'): nothing "
                                 'to do')
        for index, word in enumerate(plain[:-2]):
            if word == 'and' and plain[index + 1] in ('a', 'one') and plain[index + 2] in (
                    'half', 'quarter') and index > 0 and (
                    _number(plain, index - 1)[0] is not None or plain[index - 1] in UNITS):
                return ParsedCommand(text, '', f"'{' '.join(plain[index - 1:index + 3])}': say "
                                     'the amount in digits (1.5 meters)')
        clauses, current, joined, joins = [], [], False, []
        for kind, value in tokens:
            if kind == 'stop' or value in CLAUSE_WORDS:
                if current:
                    clauses.append(current)
                    joins.append(joined)
                current, joined = [], value in CLAUSE_WORDS  # "and", "then": a sequence
            else:
                current.append(value)
        if current:
            clauses.append(current)
            joins.append(joined)
        words = [word for clause in clauses for word in clause]
        if not words:
            return ParsedCommand(text, '', 'no words')
        if len(words) > MAX_COMMAND_WORDS:
            return ParsedCommand(text, '', f'too long: {len(words)} words, at most '
                                 f'{MAX_COMMAND_WORDS} (one command at a time)')
        for clause in clauses:
            opening = [word for word in clause if word not in ('so', 'hey', 'ok', 'okay',
                                                               'robot', 'please', 'and')]
            if len(opening) > 1 and opening[1] in ASKING_AFTER.get(opening[0], ()):
                return ParsedCommand(text, '', f"a question, not a command: '{opening[0]} "
                                     f"{opening[1]} ...'")
        excluded = [word for (_, word), (_, after) in zip(tokens, tokens[1:])
                    if word == 'but' and (after in DETERMINERS or self.content(after))
                    and after not in QUALIFIER_WORDS]
        qualifiers = _Qualifiers(self.content)
        clauses = [qualifiers.take(clause) for clause in clauses]
        if qualifiers.problems:
            return ParsedCommand(text, '', qualifiers.problems[0],
                                 condition=qualifiers.condition)
        clauses, joins = ([clause for clause in clauses if clause],
                          [joined for clause, joined in zip(clauses, joins) if clause])
        manners = {manner for manner, _ in qualifiers.manners}
        if len(manners) > 1:
            return ParsedCommand(text, '', 'slowly or quickly? say one')
        if len(qualifiers.quantities) > 1:
            return ParsedCommand(text, '', 'one amount a command: ' + ', '.join(
                f"'{quantity.words}'" for quantity in qualifiers.quantities))
        phrases, outside, routed = [], [], []
        for index, clause in enumerate(clauses):
            # A clause of its own may name the thing only when a later one points back to
            # it ("the red ball, go there"); "go to the red ball, cancel that" is refused.
            pointed_at = any(word in ('there', 'it', 'here', 'them') for later in
                             clauses[index + 1:] for word in later)
            found, rest = self._noun_phrases(clause, pointed_at, routed)
            phrases.extend(found)
            outside.append(rest)
        problem = ''
        verbs = [(word, index, clause) for clause in outside
                 for index, word in enumerate(clause) if word in self.verbs]
        unknown = [word for clause in outside for word in clause
                   if word is not None and self.content(word)]
        rest = [word for clause in outside for word in clause if word is not None]
        excluded += [word for word in rest if word in EXCLUSIONS]
        if unknown:
            problem = f"unknown word{'s' if len(unknown) > 1 else ''}: {' '.join(unknown)}"
        elif not verbs and not any(word in DIRECTIONS for word in rest):
            problem = 'no verb: say what to do ("go to the red ball", "turn left", "stop")'
        elif excluded and phrases:
            problem = (f"'{excluded[0]}': this robot goes to things, never away from them or "
                       'around what is left out')
        else:
            for word, index, clause in verbs:
                problem = self._complement_problem(word, clause[index + 1:])
                if problem:
                    break
        if not problem:
            problem = self._stop_after(clauses, joins)
        # "search the room for the blue ball": a search is where the robot is, which
        # "the room" names; "search the kitchen for ..." is refused (two things named).
        if any(phrase[0] == 3 for phrase in phrases):
            phrases = [phrase for phrase in phrases
                       if phrase[0] == 3 or phrase[2] not in HERE_PLACES]
        # "your target is the red ball": the subject of "is <noun phrase>" names the same
        # thing ("the red ball is next to the cube" does not).
        copulas = [f" {' '.join(clause)} " for clause in clauses]
        named = [phrase for phrase in phrases if not any(
            f' {phrase[2]} {verb} {article} ' in words for words in copulas
            for verb in ('is', 'are') for article in DETERMINERS)] or phrases
        if not problem and len({phrase for _, _, phrase in named}) > 1:
            problem = ('one thing a command: ' + ', '.join(
                f"'{phrase}'" for _, _, phrase in sorted(named, key=lambda p: -p[1]))
                + ' (routes and places are not supported)')
        chosen = max(phrases, key=lambda phrase: phrase[0], default=(0, 0, ''))
        directions = [word for word, following in zip(rest, [*rest[1:], None])
                      if word in (DIRECTIONS - {'turn', 'turns', 'u', 'u-turn', 'uturn'})
                      | {'around', 'round'} and not (  # "right up to": no direction
                          word == 'right' and following in INTENSIFIED and chosen[2])]
        directions += [IMPLIED_DIRECTIONS[word] for word in rest if word in IMPLIED_DIRECTIONS]
        quantity = qualifiers.quantities[0] if qualifiers.quantities else None
        if quantity is None and not chosen[2] and self._turns_around(rest):
            quantity = Quantity('angle', math.pi, 'around')
            if 'around' not in directions and 'round' not in directions:
                directions.append('around')  # "u-turn": either way
        if quantity is not None and not problem and not (
                math.isfinite(quantity.value) and quantity.value > 0.0):
            problem = f"'{quantity.words}': nothing to do"
        sided = [' '.join(clause[index:index + 3]) for clause in clauses
                 for index in range(len(clause))
                 if clause[index] in ('on', 'to', 'at') and clause[index + 1:index + 2] in (
                     ['the'], ['your'], ['my'], ['its']) and clause[index + 2:index + 3] in (
                     ['left'], ['right']) and not (  # "to the left blue box": its name
                     index + 3 < len(clause) and self.content(clause[index + 3]))]
        sided += [f'{word} {following}' for clause in clauses
                  for word, following in zip(clause, clause[1:])
                  if (word in ('left', 'right') and following == 'of') or (
                      word in ('behind', 'near', 'beside', 'by', 'of', 'nearer', 'closer')
                      and following in ('you', 'me', 'us', 'yourself'))]
        if not problem and relation is not None and relation.anchor == chosen[2]:
            problem = (f"'{chosen[2]} {relation}': which other thing? (the red ball next to the "
                       'blue cube)')
        if not problem and sided and chosen[2]:
            problem = (f"'{sided[0]}': where a thing is relative to the robot or a place is "
                       'not supported: say which one as it is seen (the left red ball, the '
                       'red ball next to the blue cube)')
        if not problem and routed and chosen[2]:
            problem = (f"'{routed[0]}': where or when relative to a thing is not supported: "
                       'go to the thing itself')
        if not problem and chosen[2] and chosen[0] < 2 and self._directed(rest):
            problem = f"'{chosen[2]}' after a direction: say how far (2 meters, 90 degrees)"
        if not problem and quantity is None and not chosen[2] and self._stop_ends(outside):
            problem = 'a motion, then a stop: say how far (go forward 2 meters and stop)'
        stop_negated = [f'{word} {following}' for word, following in zip(rest, rest[1:])
                        if (word in NEGATIONS or word == 'without')
                        and self.verbs.get(following) == 'stop']
        if not problem and stop_negated:
            problem = f"'{stop_negated[0]}': say what to do instead"
        if not problem and qualifiers.arrival and not chosen[2]:
            problem = "'... you reach it', '... you get there': name the thing to reach"
        if not problem:
            problem = self._second_motion(outside)
        manner, manner_words = (qualifiers.manners[0] if qualifiers.manners else ('', ''))
        verb = next((word for word, _, _ in verbs), '')
        behaviours = self._behaviours(bool(chosen[2]), outside)
        if quantity is not None and behaviours == {'stop'} and self._stop_ends(outside):
            behaviours = frozenset({'motion'})  # "go forward 2 meters and then stop"
        return ParsedCommand(
            text, '' if problem else chosen[2], problem,
            negated=any(word in NEGATIONS for word in rest), directions=tuple(directions),
            behaviours=behaviours, verb=verb,
            quantity=quantity, manner=manner, manner_words=manner_words,
            roles=self._roles(typed, chosen[2], qualifiers, rest, verbs, relation),
            read_as=tuple(read_as), relation=relation if chosen[2] and not problem else None)

    def _take_relation(self, tokens) -> tuple:
        """(the tokens without a relation's words, the relation or None, a problem or ''):
        core.relations.take_relation on each run of words between punctuation.
        """
        def noun(word):  # amounts and manners are no thing: "turn 90 degrees to the left"
            return self.content(word) and word not in UNITS and word not in NUMBER_WORDS and (
                not word[0].isdigit()) and word not in NEGATIONS and word not in (
                SLOW_WORDS | FAST_WORDS | CONDITION_WORDS | TIME_WORDS | REPEAT_WORDS)
        kept, found, run = [], [], []
        for token in [*tokens, ('stop', '')]:
            if token[0] == 'word':
                run.append(token[1])
                continue
            words, relation, problem = take_relation(run, noun)
            if problem:
                return tokens, None, problem
            kept.extend(('word', word) for word in words)
            found += [relation] if relation is not None else []
            if token[1]:
                kept.append(token)
            run = []
        if len(found) > 1:
            return tokens, None, 'one relation a command: ' + ', '.join(
                f"'{relation}'" for relation in found)
        return kept, (found[0] if found else None), ''

    def _directed(self, clause) -> bool:
        return any(word in MOTION_DIRECTIONS for word in clause if word is not None)

    def _second_motion(self, clauses) -> str:
        """Why the command asks for more than one motion ('' when it does not): a clause
        with a direction and no thing ("turn left", "come back") beside another clause
        with a direction or a thing ("turn left and go forward", "go to the red ball and
        come back"): the second would be dropped.
        """
        directed = [clause for clause in clauses if self._directed(clause) and None not in clause]
        things = [clause for clause in clauses if None in clause]
        if directed and len(directed) + len(things) > 1:
            said = ' '.join(word for word in directed[-1] if word is not None)
            return f"one motion a command: '{said}' as well"
        return ''

    def _stop_ends(self, clauses) -> bool:
        """Whether a last clause of stopping ends the motion before it ("go forward 2
        meters and then stop").
        """
        kinds = [{self.verbs[word] for word in clause if word in self.verbs} for clause in clauses]
        return len(clauses) > 1 and kinds[-1] == {'stop'} and any(
            kind & {'go', 'turn', 'make'} or self._directed(clause)
            for kind, clause in zip(kinds[:-1], clauses[:-1]))

    def _turns_around(self, words) -> bool:
        """"turn around", "spin round", "u-turn": half a turn."""
        turning = any(self.verbs.get(word) in ('turn', 'make') for word in words)
        return any(word in ('u-turn', 'uturn') or (turning and word in ('around', 'round'))
                   or (word == 'u' and following in ('turn', 'turns'))
                   for word, following in zip(words, [*words[1:], None]))

    def _roles(self, tokens, object_phrase: str, qualifiers, rest, verbs,
               relation: Relation | None = None) -> tuple:
        """(word, role) for every word of the command, in order."""
        named = set(object_phrase.split())
        related = set(relation.words.split()) - named if relation is not None else set()
        quantity_words = {word for quantity in qualifiers.quantities
                          for word in quantity.words.split()}
        manner_words = {word for _, words in qualifiers.manners for word in words.split()}
        verb_words = {word for word, _, _ in verbs}
        roles = []
        for kind, word in tokens:
            if kind != 'word':
                continue
            if word in named:
                role = 'object'
            elif word in related:
                role = 'relation'
            elif word in quantity_words:
                role = 'quantity'
            elif word in manner_words:
                role = 'manner'
            elif word in verb_words:
                role = 'verb'
            elif word in DIRECTIONS and word in rest:
                role = 'direction'
            elif word in NEGATIONS:
                role = 'negation'
            else:
                role = 'grammar'
            roles.append((word, role))
        return tuple(roles)

    def _stop_after(self, clauses, joins) -> str:
        """Why a bare stop after the command makes it unclear ('' when it does not): "go to
        the red ball. STOP!" may mean stop now; "..., then stop", "... and stop there" mean
        stop on arrival.
        """
        acting = False
        for clause, joined in zip(clauses, joins):
            kinds = {self.verbs[word] for word in clause if word in self.verbs}
            if acting and kinds == {'stop'} and not joined and not {
                    'there', 'here', 'it', 'when', 'once', 'until'} & set(clause):
                return 'a stop after the command: go, or stop? send one command'
            acting = acting or bool(kinds - {'stop'})
        return ''

    def _behaviours(self, has_object: bool, clauses) -> frozenset:
        """Which policy behaviours the sentence allows (core.policy.BEHAVIOURS)."""
        words = [word for clause in clauses for word in clause if word is not None]
        kinds = [self.verbs.get(word) for word in words]
        # "stop going to the red ball", "halt driving to ...": a stop verb with a gerund
        # ("... and stop when you get there" stops on arrival).
        stopping_first = any(
            self.verbs.get(word) == 'stop' and following is not None
            and following.endswith('ing') and self.verbs.get(following) in (
                'go', 'find', 'make', 'reflexive')
            for clause in clauses for word, following in zip(clause, clause[1:]))
        if stopping_first:
            return frozenset({'stop'})
        if not has_object:
            if any(word in DETERMINERS and following in ('one', 'ones')
                   for word, following in zip(words, words[1:])):
                return frozenset()  # "go to the one on the left": which one?
            if 'stop' in kinds:
                return frozenset({'stop'})
            if any(word in MOTION_DIRECTIONS | {'right'} for word in words):
                return frozenset({'motion'})  # "keep going forward": a motion
            return frozenset({'stop', 'motion'})
        seeking_on = {word for word, following in zip(words, words[1:])
                      if word in ('keep', 'keeps', 'keeping', 'continue', 'continues')
                      and following.endswith('ing') and self.verbs.get(following) == 'find'}
        going = any((kind in ('go', 'reflexive', 'make') and word not in seeking_on)
                    or word in REACH_VERBS or word in ('way', 'park')
                    for word, kind in zip(words, kinds))  # "find your way"
        asking = any(word == 'where' and following in ('is', 'are', 'did', 'does', 'was')
                     for word, following in zip(words, words[1:]))
        if going and not asking:
            return frozenset({'go_to'})
        if any(kind in ('find', 'where', 'turn') for kind in kinds):
            return frozenset({'look_for'})  # "turn towards the red ball": face it
        return frozenset({'go_to', 'look_for', 'stop'})

    def _noun_phrases(self, clause, pointed_at: bool = False, routed=None):
        """([(preference, -position, phrase)], the clause with its noun phrases as None).

        A noun phrase is a run of open-vocabulary words (with "of" and words of the grammar
        between an article and them: "the left red ball"), allowed after an article, a
        preposition, a verb that takes a thing, "is" ("where is red ball"), or as a clause
        of its own. Preference: after "for" behind look/search (3), governed (2), other (1).
        """
        has_verb = any(word in self.verbs for word in clause)
        phrases, rest, index = [], list(clause), 0
        while index < len(clause):
            if not self.content(clause[index]):
                index += 1
                continue
            start, position, has_determiner = index, index - 1, False
            while position >= 0 and index - position <= 3 and clause[position] not in (
                    PREPOSITIONS | NEGATIONS):
                if clause[position] in DETERMINERS:
                    start, has_determiner = position + 1, True
                    break
                position -= 1
            end = index
            while end < len(clause) and (self.content(clause[end]) or (
                    clause[end] == 'of' and end + 1 < len(clause)
                    and self.content(clause[end + 1]))):
                end += 1
            head = start - 1 if not has_determiner else start - 2
            while head >= 0 and clause[head] in FILLERS - {'is', 'are', 'where'}:
                head -= 1
            governor = clause[head] if head >= 0 else ''
            governed = (governor in PREPOSITIONS or governor in {'is', 'are', 'where'}
                        or self.verbs.get(governor) in ('find', 'where'))
            clause_initial = head < 0 and not has_verb and pointed_at
            if has_determiner or governed or clause_initial or (head < 0 and has_determiner):
                preference = 2 if governed else 1
                if governor == 'for' and any(self.verbs.get(word) == 'find'
                                             for word in clause[:head]):
                    preference = 3
                phrases.append((preference, -len(phrases),
                                ' '.join(clause[start:end])))
                if routed is not None and governor in ROUTE_PREPOSITIONS and (
                        ' '.join(clause[start:end]) not in HERE_PLACES):  # "look around the room"
                    routed.append(f"{governor} {' '.join(clause[start:end])}")
                if routed is not None and governor == 'for' and head > 0 and (
                        self.verbs.get(clause[head - 1]) == 'stop'):
                    routed.append(f"{clause[head - 1]} for {' '.join(clause[start:end])}")
                for position in range(start, end):
                    rest[position] = None
            index = end
        return phrases, rest

    def _complement_problem(self, verb: str, following) -> str:
        """Why what follows `verb` in its clause (noun phrases as None) does not fit it."""
        kind = self.verbs[verb]
        if kind == 'make':
            if not following or following[0] in DIRECTIONS or list(following[:2]) == [
                    'your', 'way'] or (
                    list(following[:1]) in (['a'], ['an'])
                    and {'turn', 'u-turn', 'uturn'} & set(following[1:4])):
                return ''
            return f"'{verb}' what? (make your way to ..., make a left turn)"
        following = [word for position, word in enumerate(following)
                     if not (word in ('a', 'an') and following[position + 1:position + 2]
                             in (['bit'], ['little'], ['lot']))]
        following = [word for word in following
                     if word is None or word not in FILLERS - {'get', 'go', 'right'}
                     or word in ('there', 'here')]
        after = following[0] if following else ''
        if kind in ('stop', 'where'):
            return ''
        if kind == 'reflexive':
            return '' if after in ('yourself', 'me', 'us') else \
                f"'{verb}' only as in '{verb} yourself to the red ball'"
        if after == '' or after in NEGATIONS:
            return ''
        if kind == 'turn':
            if after in DIRECTIONS or after in ('to', 'towards', 'toward', 'around', 'round',
                                                'a', 'by', 'and', 'until', 'till'):
                return ''
            return f"'{verb}' needs a direction (left, right, around, towards ...)"
        if kind == 'go':
            if after is not None and (after in PREPOSITIONS or after in DIRECTIONS
                                      or after in self.verbs or after in ('there', 'here',
                                                                          'yourself')):
                return ''
            return f"'{verb}' needs a place (to the red ball) or a direction"
        return ''  # find: a thing, a pronoun, a preposition or a direction ("face left")


def verb_kind(verb: str, extra_verbs=()) -> str:
    """The kind of one of the grammar's verbs: go, find, turn, stop, ... ('' if none)."""
    return _grammar(tuple(extra_verbs)).verbs.get(verb, '')


@lru_cache(maxsize=8)
def _grammar(extra_verbs: tuple) -> _Grammar:
    return _Grammar(extra_verbs)


def parse_command(text: str, extra_verbs=()) -> ParsedCommand:
    """Parse a cleaned command (clean_command); `extra_verbs` take a thing like "find" does."""
    return _grammar(tuple(extra_verbs)).parse(text)
