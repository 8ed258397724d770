"""Which one: "the left red ball", "the nearest cube", "the second ball from the right", "the
red ball next to the blue cube".

CLIP's text tower embeds "left of" and "right of" almost alike, so a relation is never left
to the prompt: the grammar takes it out of the command (`take_relation`), the segmenter looks
for the head noun ("red ball"), and the relation picks one of the instances it sees from their
geometry in the image (`resolve`): bearing (x), nearness (the region's lowest row: on a floor,
the lower in the image, the nearer), apparent size (area). With no relation, two instances
are not guessed between: the resolution says how many look alike, and the robot asks which.
"""

from dataclasses import dataclass
import math

from vla_ros.core.status import AMBIGUOUS

ORDINALS = {'first': 1, 'second': 2, 'third': 3, 'fourth': 4, 'fifth': 5,
            '1st': 1, '2nd': 2, '3rd': 3, '4th': 4, '5th': 5}
# Words before the noun: "the leftmost red ball", "the second nearest cube".
SUPERLATIVES = {'leftmost': 'left', 'rightmost': 'right', 'nearest': 'nearest',
                'closest': 'nearest', 'farthest': 'farthest', 'furthest': 'farthest',
                'biggest': 'biggest', 'largest': 'biggest', 'smallest': 'smallest',
                'tiniest': 'smallest'}
SIDES = ('left', 'right')  # "the left red ball": before the noun, a side of the view
# After the noun, with nothing to relate to: "the red ball on the left".
TRAILING = {('on', 'the', 'left'): 'left', ('on', 'the', 'right'): 'right',
            ('to', 'the', 'left'): 'left', ('to', 'the', 'right'): 'right',
            ('at', 'the', 'left'): 'left', ('at', 'the', 'right'): 'right',
            ('from', 'the', 'left'): 'left', ('from', 'the', 'right'): 'right',
            ('closest', 'to', 'you'): 'nearest', ('nearest', 'to', 'you'): 'nearest',
            ('closest', 'to', 'me'): 'nearest', ('nearest', 'to', 'me'): 'nearest',
            ('farthest', 'from', 'you'): 'farthest', ('furthest', 'from', 'you'): 'farthest',
            ('farthest', 'away'): 'farthest', ('furthest', 'away'): 'farthest'}
# After the noun, relating it to another thing that the segmenter looks for too.
ANCHORED = {('next', 'to'): 'next_to', ('near',): 'next_to', ('beside',): 'next_to',
            ('by',): 'next_to', ('close', 'to'): 'next_to', ('closest', 'to'): 'next_to',
            ('nearest', 'to'): 'next_to', ('left', 'of'): 'left_of',
            ('to', 'the', 'left', 'of'): 'left_of', ('on', 'the', 'left', 'of'): 'left_of',
            ('right', 'of'): 'right_of', ('to', 'the', 'right', 'of'): 'right_of',
            ('on', 'the', 'right', 'of'): 'right_of', ('in', 'front', 'of'): 'in_front_of',
            ('behind',): 'behind'}
ANCHOR_DETERMINERS = frozenset({'the', 'a', 'an', 'that', 'this'})
RELATION_WORDS = (frozenset(ORDINALS) | frozenset(SUPERLATIVES)
                  | {word for phrase in [*TRAILING, *ANCHORED] for word in phrase})

# Within these, two instances are equally far left, near or big: the relation cannot tell.
TIE_X = 0.04  # image units (2 = the image's width)
TIE_BOTTOM = 0.02  # image units (2 = its height)
TIE_AREA_RATIO = 1.15
# How far apart two things on the floor are, from the image: a metre nearer moves a thing's
# lowest row several times less than a metre sideways moves its column, at the distances a
# camera sees things (one of 1.1 m deeper at 2-3 m is 0.1 image units lower; 0.6 m
# sideways, 0.3 across).
DEPTH_WEIGHT = 4.0
SAY_WHICH = 'say which: the left {0}, the nearest {0} …'
# Beside a region the verifier calls the prompt, one whose crop's CLIP score loses to the
# best contrast by less than this is an instance too (core.verification's NEARLY): it keeps
# more of the true instances and no more look-alikes (benchmarks/README.md).
ALIKE_MARGIN = 0.06
# Things alike (that make a command ambiguous, or that a relation picks from) are at least
# this much of the image: smaller, the verifier passes specks of floor and wall tops as
# often as far things alike (4 of 688 of those in the relations scenes are smaller;
# benchmarks/README.md, "Asking which in a house").
MIN_ALIKE_AREA = 0.002


@dataclass(frozen=True)
class Relation:
    """What picks one instance: `kind` left | right | nearest | farthest | biggest | smallest
    (the `ordinal`-th of them: "the second from the left" is left, 2), or next_to | left_of |
    right_of | in_front_of | behind `anchor` (an object phrase the segmenter finds too).
    """

    kind: str
    ordinal: int = 1
    anchor: str = ''
    words: str = ''  # as typed: "second from the left", "next to the blue cube"

    def __str__(self) -> str:
        return self.words or self.kind


def take_relation(words: list, content) -> tuple:
    """(the words without the relation's, the Relation or None, a problem or '') of a command
    (lower-case words; `content(word)`: whether it can be part of a thing's name). A relation
    belongs to a noun phrase: its words before the noun follow an article ("the leftmost red
    ball"), those after it follow the noun ("the red ball on the left", "... next to the blue
    cube"); "go next to the red ball" has none. An ordinal counts only from a side or with a
    superlative ("the second red ball from the left", "the second nearest"): "the first aid
    kit", "the 3rd door" are names.
    """
    found, kept, index = [], [], 0
    while index < len(words):
        word = words[index]
        if word in ('the', 'a', 'an') and index + 1 < len(words):
            taken = _before_noun(words, index + 1, content)
            if taken is not None and taken[0] < len(words) and words[taken[0]] in (
                    'one', 'ones'):
                return words, None, (f"'{' '.join(words[index:taken[0] + 1])}': say the thing "
                                     f"too ('the {taken[3]} red ball')")
            if taken is not None:
                end, ordinal, kind, said = taken
                noun_end = end
                while noun_end < len(words) and content(words[noun_end]):
                    noun_end += 1
                after = _after_noun(words, noun_end, content, counted=kind is None)
                if kind is None and not (after is not None and after[1] in SIDES
                                         and not after[2]):
                    kept.append(word)  # "the first aid kit": a name
                    index += 1
                    continue
                kept.append(word)
                kept.extend(words[end:noun_end])
                if kind is None:  # "the second red ball from the left"
                    noun_end, kind, _, after_said = after
                    said, after = f'{said} {after_said}', None
                found.append(Relation(kind, ordinal, '', said))
                if after is not None:  # "the nearest red ball on the left": which counts?
                    found.append(Relation(after[1], 1, after[2], after[3]))
                    noun_end = after[0]
                index = noun_end
                continue
        if content(word):
            after = _after_noun(words, index + 1, content)
            kept.append(word)
            if after is not None:
                end, kind, anchor, said = after
                found.append(Relation(kind, 1, anchor, said))
                index = end
                continue
        else:
            kept.append(word)
        index += 1
    if len(found) > 1:
        return words, None, ('one relation a command: ' + ', '.join(
            f"'{relation}'" for relation in found))
    return kept, (found[0] if found else None), ''


def _before_noun(words, start, content):
    """(index after the relation's words, ordinal, kind or None, words) of an ordinal, a
    superlative or a side between an article and a noun ("the second nearest red ball");
    None where there is none or no noun (or "one") follows.
    """
    ordinal, kind, index = 1, None, start
    if index < len(words) and words[index] in ORDINALS:
        ordinal, index = ORDINALS[words[index]], index + 1
    if index < len(words) and words[index] in SUPERLATIVES:
        kind, index = SUPERLATIVES[words[index]], index + 1
    elif index < len(words) and words[index] in SIDES and index + 1 < len(words) and (
            content(words[index + 1]) or words[index + 1] in ('one', 'ones')):
        kind, index = words[index], index + 1
    if index == start or index >= len(words) or not (
            content(words[index]) or words[index] in ('one', 'ones')):
        return None
    return index, ordinal, kind, ' '.join(words[start:index])


def _after_noun(words, start, content, counted: bool = False):
    """(index after it, kind, anchor, words) of a relation right after a noun, or None.
    "from the left" only after an ordinal (`counted`): "approach the ball from the left" is
    a way to go, not which one.
    """
    for phrase, kind in ANCHORED.items():
        end = start + len(phrase)
        if tuple(words[start:end]) != phrase:
            continue
        if end < len(words) and words[end] in ANCHOR_DETERMINERS:
            end += 1
        anchor_end = end
        while anchor_end < len(words) and content(words[anchor_end]):
            anchor_end += 1
        if anchor_end > end:
            return anchor_end, kind, ' '.join(words[end:anchor_end]), ' '.join(
                words[start:anchor_end])
    for phrase, kind in TRAILING.items():
        end = start + len(phrase)
        if tuple(words[start:end]) == phrase and (counted or phrase[0] != 'from') and not (
                end < len(words) and (content(words[end]) or words[end] == 'of')):
            return end, kind, '', ' '.join(phrase)
    return None


# Regions of one thing: a mask broken by an occluder or a highlight, whose boxes come closer
# than a quarter of the smaller one's side (or this, in image units), is one instance (two
# things alike nearer than that are one, too: at half, two cylinders 0.6 m apart were);
# smaller regions are no instance (noise).
SAME_THING_GAP = 0.03
MIN_INSTANCE_AREA = 0.0005  # of the image: the verifier's default min_area
# Things alike have boxes of alike shape: one this many times wider for its height than
# another is something else the verifier let through (a wall's edge for "white cube").
ALIKE_ASPECT = 2.5


def instances(regions: list) -> list:
    """The things among regions of one prompt (core.segmentation.Target, largest first):
    regions whose boxes nearly touch are one thing, named by its largest region; of the
    others, those whose boxes' shapes are alike the first's.
    """
    things = []  # [regions of one thing, largest first]
    for region in regions:
        if region.area < MIN_INSTANCE_AREA:
            continue
        near = next((thing for thing in things if any(_boxes_near(region, part)
                                                      for part in thing)), None)
        if near is None:
            things.append([region])
        else:
            near.append(region)
    if not things:
        return []
    # Alike the shape most others share (a cut-off near one or a wide false region, even the
    # largest, is not what the rest are measured by); on a tie, the most compact one's.
    def alike(a, b):
        return abs(math.log(_aspect(a) / _aspect(b))) <= math.log(ALIKE_ASPECT)
    reference = max(things, key=lambda thing: (sum(alike(thing, other) for other in things),
                                               -abs(math.log(_aspect(thing)))))
    return [thing[0] for thing in things if alike(thing, reference)]


def _aspect(parts) -> float:
    """Width over height of the box round a thing's regions, in image units."""
    left = min(part.left for part in parts)
    right = max(part.left + 2 * part.width for part in parts)
    height = max(part.bottom for part in parts) - min(part.top for part in parts)
    return (right - left) / max(height, 1e-6)


def _boxes_near(a, b) -> bool:
    gap_x = max(a.left, b.left) - min(a.left + 2 * a.width, b.left + 2 * b.width)
    gap_y = max(a.top, b.top) - min(a.bottom, b.bottom)
    near_x = max(SAME_THING_GAP, 0.5 * min(a.width, b.width))  # a quarter of the narrower
    near_y = max(SAME_THING_GAP, 0.25 * min(a.bottom - a.top, b.bottom - b.top))
    return gap_x < near_x and gap_y < near_y


@dataclass(frozen=True)
class Resolution:
    """Which instance a relation picks: `chosen` (None: none fits), and `alike`: how many fit
    equally well when it cannot tell (0 when it can).
    """

    chosen: object = None
    alike: int = 0


def resolve(instances: list, relation: Relation | None, anchors: list = ()) -> Resolution:
    """The instance (core.segmentation.Target) `relation` picks among `instances`, those of
    the head noun in one frame; `anchors`, the instances of the relation's anchor there
    (the largest is taken). No relation: the only instance, or none and how many alike.
    """
    if not instances:
        return Resolution()
    if relation is None:
        return Resolution(instances[0]) if len(instances) == 1 else Resolution(
            None, len(instances))
    kind, ordinal = relation.kind, relation.ordinal
    if kind in ('left', 'right', 'nearest', 'farthest', 'biggest', 'smallest'):
        measure, tie = {
            'left': (lambda t: t.x, lambda a, b: abs(a - b) < TIE_X),
            'right': (lambda t: -t.x, lambda a, b: abs(a - b) < TIE_X),
            'nearest': (lambda t: -t.bottom, lambda a, b: abs(a - b) < TIE_BOTTOM),
            'farthest': (lambda t: t.bottom, lambda a, b: abs(a - b) < TIE_BOTTOM),
            'biggest': (lambda t: -math.log(t.area), lambda a, b: abs(a - b) < math.log(
                TIE_AREA_RATIO)),
            'smallest': (lambda t: math.log(t.area), lambda a, b: abs(a - b) < math.log(
                TIE_AREA_RATIO)),
        }[kind]
        ranked = sorted(instances, key=measure)
        if len(ranked) < ordinal:
            return Resolution()
        chosen = ranked[ordinal - 1]
        tied = [other for other in ranked if other is not chosen
                and tie(measure(other), measure(chosen))]
        return Resolution(chosen) if not tied else Resolution(None, len(tied) + 1)
    # A region of the other thing's prompt mostly on one of these is no other thing (CLIPSeg
    # lights a red cube for "purple ball" too); one that only touches it or is partly hidden
    # by it is ("the ball in front of the cube").
    anchors = [a for a in anchors if not any(_mostly_on(a, t) for t in instances)]
    if not anchors:
        return Resolution()  # the thing it is related to is not in view
    anchor = max(anchors, key=lambda t: t.area)
    if kind == 'next_to':
        fitting = instances
    elif kind == 'left_of':
        fitting = [t for t in instances if t.x < anchor.x]
    elif kind == 'right_of':
        fitting = [t for t in instances if t.x > anchor.x]
    elif kind == 'in_front_of':
        fitting = [t for t in instances if t.bottom > anchor.bottom]
    elif kind == 'behind':
        fitting = [t for t in instances if t.bottom < anchor.bottom]
    else:
        raise ValueError(f'unknown relation {kind!r}')
    if not fitting:
        return Resolution()

    def gap(t):  # in the image, lowest rows for depth: where each stands on the floor
        if kind in ('in_front_of', 'behind'):  # on the line of sight through it, first
            return abs(t.x - anchor.x) + 0.5 * abs(t.bottom - anchor.bottom)
        return math.hypot(t.x - anchor.x, DEPTH_WEIGHT * (t.bottom - anchor.bottom))
    ranked = sorted(fitting, key=gap)
    if len(ranked) > 1 and gap(ranked[1]) < 1.2 * gap(ranked[0]):
        return Resolution(None, len(ranked))
    return Resolution(ranked[0])


def _mostly_on(a, b) -> bool:
    """Whether most of region a's box lies in region b's."""
    across = min(a.left + 2 * a.width, b.left + 2 * b.width) - max(a.left, b.left)
    down = min(a.bottom, b.bottom) - max(a.top, b.top)
    area = 2 * a.width * (a.bottom - a.top)
    return across > 0 and down > 0 and across * down > 0.5 * area


def plural(phrase: str) -> str:
    """"red ball" -> "red balls", "blue box" -> "blue boxes", "cup of tea" -> "cups of tea"
    (English's usual rules).
    """
    if ' of ' in phrase:
        noun, _, rest = phrase.partition(' of ')
        return f'{plural(noun)} of {rest}'
    head, _, last = phrase.rpartition(' ')
    if last.endswith(('s', 'x', 'z', 'ch', 'sh')):
        last += 'es'
    elif last.endswith('y') and last[-2:-1] not in tuple('aeiou'):
        last = last[:-1] + 'ies'
    else:
        last += 's'
    return f'{head} {last}'.strip()


def ambiguity_status(count: int, phrase: str) -> str:
    """The policy's status when `count` instances of `phrase` fit the command alike."""
    phrase = phrase or 'thing'
    return f'{AMBIGUOUS}{count} {plural(phrase)} in view, {SAY_WHICH.format(phrase)}'
