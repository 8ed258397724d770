"""The command grammar (core.text): object phrases anywhere in a sentence, and refusal of
what is not a command of this robot. The held-out lists in test/data are measured here at
the grammar; with the embedded CLIP in test_language.py, and closed loop by `vla-ros eval`.
"""

import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
import yaml

from vla_ros.core import text
from vla_ros.core.steps import step_objects
from vla_ros.core.text import clean_command, parse_command
from vla_ros.fixtures import property_examples

DATA = Path(__file__).parents[1] / 'data'


def parsed(command, extra_verbs=()):
    return parse_command(clean_command(command)[0], extra_verbs)


@pytest.mark.parametrize(('command', 'phrase'), [
    ('go to the green cube', 'green cube'),
    ('Go to the GREEN cube!', 'green cube'),
    ('kindly roll over to the tall lamp.', 'tall lamp'),
    ('could you find a green cylinder?', 'green cylinder'),
    ('the charging dock, drive there', 'charging dock'),
    ('chair: head over there now', 'chair'),
    ('go to the left blue box and stop', 'blue box'),  # which one: core.relations
    ('drive to the cup of coffee', 'cup of coffee'),
    ('look around the room for the fire extinguisher', 'fire extinguisher'),
    ('where is my backpack?', 'backpack'),
    ("I'd like you to drive towards the stop sign", 'stop sign'),
    ('go to box 3', 'box 3'),
    ('your target is the green cube, go', 'green cube'),  # "is": the same thing
    ('drive to the café', 'café'),
    ('turn left', ''),
    ('make a u-turn', ''),
])
def test_object_phrase_wherever_it_is(command, phrase):
    result = parsed(command)
    assert result.understood, result.problem
    assert result.object_phrase == phrase


@pytest.mark.parametrize(('command', 'why'), [
    ('', 'empty'),
    ('?!', 'no words'),
    ('🙂 go', 'symbols'),
    ('идти к мячу', 'not in English'),
    ('allez au ballon', 'unknown word'),
    ('what a lovely day', 'unknown word'),
    ('go to the ball, you clanker', 'unknown word'),
    ('turn up the volume', 'needs a direction'),
    ('run the tests', 'needs a place'),
    ('take the stairs', 'yourself'),
    ('make a cake', 'make'),
])
def test_not_a_command_of_this_robot(command, why):
    result = parsed(command)
    assert not result.understood and why in result.problem
    assert result.object_phrase == '' and step_objects(command) == ('',)


def test_negation_and_directions_are_reported():
    result = parsed("please don't turn left")
    assert result.understood and result.negated and result.directions == ('left',)
    assert step_objects("don't go to the red ball") == ('',)  # not worth segmenting
    assert not parsed('go to the knot').negated  # a word, not a negation


def test_extra_verbs_take_a_thing():
    assert not parsed('fetch the red ball').understood
    result = parsed('fetch the red ball', ['fetch'])
    assert result.understood and result.object_phrase == 'red ball'


def test_every_held_out_intent_paraphrase_is_understood():
    table = yaml.safe_load((DATA / 'intent_paraphrases.yaml').read_text())
    for phrases in table.values():
        for phrase in phrases:
            assert parsed(phrase).understood, (phrase, parsed(phrase).problem)


def test_held_out_go_to_phrasings_name_their_object():
    templates = yaml.safe_load((DATA / 'go_to_phrasings.yaml').read_text())['go_to']
    assert len(templates) >= 100
    missed = [template for template in templates
              if step_objects(template.format(object='orange capsule')) != ('orange capsule',)]
    assert len(missed) <= 0.05 * len(templates), missed


def test_held_out_nonsense_is_refused_or_negated():
    commands = yaml.safe_load((DATA / 'refused_commands.yaml').read_text())['not_understood']
    assert len(commands) >= 100 and all(isinstance(command, str) for command in commands)
    accepted = [command for command in commands
                if parsed(command).understood and not parsed(command).negated]
    assert accepted == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_without_error(text):
    result = parsed(text)
    assert isinstance(result.object_phrase, str) and isinstance(result.problem, str)
    assert result.understood or result.problem or not result.text


@pytest.mark.parametrize(('command', 'behaviours'), [
    ('stop going to the green cube', {'stop'}),  # a stop verb with a gerund: stop
    ('cease moving', {'stop'}),
    ('drive toward the green cube and stop when you get there', {'go_to'}),  # stop on arrival
    ('head to the green cube, then stop', {'go_to'}),
    ('find the green cube', {'look_for'}),
    ('go find the green cube', {'go_to'}),  # a verb of going wins
    ('where did the green cube go', {'look_for'}),
    ('turn left', {'motion'}),  # a direction and no stop: a motion
    ('do not move', {'stop', 'motion'}),
    ('turn towards the green cube', {'look_for'}),  # face it, do not drive to it
    ('keep looking for the green cube', {'look_for'}),
    ('go to the one on the left', set()),  # which one?
])
def test_the_sentence_says_which_behaviours_it_allows(command, behaviours):
    assert parsed(command).behaviours == behaviours


# Whole or not at all: every part of a command is honoured or the command is refused ---------
CONDITIONS = 'conditions ("if …", "when …", "unless …", "until …") are not supported'


@pytest.mark.parametrize(('command', 'why'), [
    ('if you see a person stop', CONDITIONS),  # never a search for a person
    ('go to the red ball when the light is green', CONDITIONS),
    ('go to the red ball, please stop if you see a person', CONDITIONS),
    ('unless the door is shut go to the red ball', CONDITIONS),
    ('turn left until you see the red ball', CONDITIONS),
    ('go to the red ball as soon as you see it', CONDITIONS),
    ('go around the box to the red ball', 'one thing a command'),
    ('approach the bin next to the door and the lamp', 'one thing a command'),
    ('the red ball is next to the cube, go to it', 'one thing a command'),
    ('look around the lab for the fire extinguisher', 'one thing a command'),  # not here
    ('go to the red ball later', "a time ('later')"),
    ('turn left twice', "repetitions ('twice')"),
    ('turn left 90', "'90' what?"),
    ('go forward a lot', "'a lot'"),
    ('go slowly and quickly to the red ball', 'slowly or quickly?'),
    ('go forward 2 meters for 3 seconds', 'one amount a command'),
    ('go forward 0 meters', 'nothing to do'),
    # found by a hostile review: each was accepted as something else
    ('turn left in 10 seconds', "a delay ('in 10 seconds')"),  # not a duration
    ('go forward in a minute', "a delay ('in a minute')"),
    ('turn left one eighty degrees', "'one eighty': say the number in digits"),  # not 81°
    ('turn left 90 degrees and go forward', "one motion a command: 'go forward'"),
    ('go to the red ball and come back', "one motion a command: 'come back'"),
    ('turn left and go to the red ball', "one motion a command: 'turn left'"),
    ('go to the red ball and stop before you reach it', CONDITIONS),
    ('go forward until you reach it', 'name the thing to reach'),
    ('go to the ball on your left', "'on your left'"),
    ('go to the red ball behind you', "'behind you'"),
    ('turn left degrees', "'degrees' without a number"),
    # found by a second review
    ('go forward one and a half meters', "'one and a half': say the amount in digits"),
    ('go forward a long way', "'long' after a direction: say how far"),
    ('go behind the red ball', "'behind red ball': where or when relative to a thing"),
    ('go into the kitchen', "'into kitchen'"),
    ('wait for the red ball', "'wait for red ball'"),
    ('go forward and stop', 'a motion, then a stop: say how far'),
    ("don't stop", "'not stop': say what to do instead"),
    ('go forward without stopping', "'without stopping'"),
    ('go forward one step', "'one step': say how far"),
])
def test_what_cannot_be_honoured_refuses_the_command_and_says_what(command, why):
    result = parsed(command)
    assert not result.understood and why in result.problem
    assert result.object_phrase == ''


def test_a_refused_condition_is_quoted():
    result = parsed('go to the red ball when the light is green')
    assert result.condition == 'when the light is green' and 'light is green' in result.problem


@pytest.mark.parametrize(('command', 'kind', 'value', 'directions'), [
    ('go forward 2 meters', 'distance', 2.0, ('forward',)),
    ('go forward 2.5 m', 'distance', 2.5, ('forward',)),
    ('back up 50 cm', 'distance', 0.5, ('back',)),
    ('drive forward a metre', 'distance', 1.0, ('forward',)),
    ('move forward half a meter', 'distance', 0.5, ('forward',)),
    ('go forward 3 feet', 'distance', 0.9144, ('forward',)),
    ('turn left 90 degrees', 'angle', math.pi / 2, ('left',)),
    ('turn 90° right', 'angle', math.pi / 2, ('right',)),
    ('turn ninety degrees to the left', 'angle', math.pi / 2, ('left',)),
    ('turn right twenty five degrees', 'angle', math.radians(25), ('right',)),
    ('go forward 2m', 'distance', 2.0, ('forward',)),
    ('go forward .5m', 'distance', 0.5, ('forward',)),  # not 5 m
    ('go forward 2meters', 'distance', 2.0, ('forward',)),
    ('turn right around', 'angle', math.pi, ('right', 'around')),
    ('rotate one hundred eighty degrees clockwise', 'angle', math.pi, ('clockwise',)),
    ('turn left a quarter turn', 'angle', math.pi / 2, ('left',)),
    ('turn right half a turn', 'angle', math.pi, ('right',)),
    ('turn around', 'angle', math.pi, ('around',)),
    ('make a u-turn', 'angle', math.pi, ('around',)),
    ('go forward for 3 seconds', 'duration', 3.0, ('forward',)),
    ('turn left for two seconds', 'duration', 2.0, ('left',)),
    ('move forward a little', 'small', 1.0, ('forward',)),
    ('turn right a bit', 'small', 1.0, ('right',)),
    ('back up slightly', 'small', 1.0, ('back',)),
])
def test_quantities_are_read_with_their_units(command, kind, value, directions):
    result = parsed(command)
    assert result.understood, result.problem
    assert (result.quantity.kind, result.directions) == (kind, directions)
    assert result.quantity.value == pytest.approx(value)
    if result.quantity.words != 'around':  # implied by "turn around", "u-turn"
        assert {role for word, role in result.roles
                if word in result.quantity.words.split()} == {'quantity'}


@pytest.mark.parametrize(('command', 'manner', 'phrase'), [
    ('go slowly to the red ball', 'slow', 'red ball'),
    ('approach the red ball carefully', 'slow', 'red ball'),
    ('drive at full speed to the red ball', 'fast', 'red ball'),
    ('quickly go to the red ball', 'fast', 'red ball'),
    ('go to the red ball as fast as you can', 'fast', 'red ball'),
    ('go to the red ball as soon as possible', '', 'red ball'),  # at once: every command is
    ('go forward slowly', 'slow', ''),
    ('go to the fast food sign', '', 'fast food sign'),  # an adjective of the name
    ('go to the slow car carefully', 'slow', 'slow car'),
])
def test_manners_are_kept(command, manner, phrase):
    result = parsed(command)
    assert result.understood, result.problem
    assert (result.manner, result.object_phrase) == (manner, phrase)


@pytest.mark.parametrize('command', [
    'when you are ready, go to the red ball',
    "please navigate to the red ball when you're ready",
    'drive toward the red ball and stop when you get there',
    'move towards the red ball until you reach it',
    'search the room for the blue ball',  # where to search is where it is
    'go to box 3',  # a number that is part of a name
    'turn left once',
    'go to the red ball. Stop when you get there.',
    'go to the red ball at once please',
    'go to the 3rd door',  # digits glued to letters are a word, unless a unit: "2m"
    'find the water meter',
    'go to the 10 cm cube', 'look for a little red ball', 'go to the times square poster',
    'go until you reach the red ball', 'go to the red ball but slowly', 'turn right now',
])
def test_conditions_that_always_hold_and_names_with_numbers_are_understood(command):
    assert parsed(command).understood, parsed(command).problem


# Words that change what the robot would do: each must be honoured (a role) or refuse it.
UNSUPPORTED = sorted((text.CONDITION_WORDS - {'once'})  # "turn left once": one time
                     | text.TIME_WORDS | text.REPEAT_WORDS
                     | {'lot', '90', 'degrees', 'meters', 'seconds'})
HONOURED = sorted(text.SLOW_WORDS | text.FAST_WORDS | {'left', 'right', 'forward', 'back'})
BASES = ('go to the red ball', 'turn left', 'go forward', 'stop', 'look for the blue cube',
         'please drive to the green cube now', 'back up')


@settings(max_examples=property_examples(400), deadline=None)
@given(base=st.sampled_from(BASES), inserted=st.lists(
    st.sampled_from(UNSUPPORTED + HONOURED + ['please', 'a', 'the', '2', 'little', 'for']),
    min_size=1, max_size=3), position=st.integers(min_value=0, max_value=8))
def test_property_every_word_is_honoured_or_the_command_is_refused(base, inserted, position):
    words = base.split()
    at = min(position, len(words))
    result = parsed(' '.join(words[:at] + inserted + words[at:]))
    if not result.understood:
        assert result.problem
        return
    roles = dict(result.roles)
    assert len(result.roles) == len(clean_command(result.text)[0].replace('°', ' ').split())
    for word in inserted:
        if word in UNSUPPORTED and roles.get(word) == 'grammar':
            # Only as part of something honoured: "for 2 seconds", "90 degrees", a name.
            raise AssertionError(f'{word!r} was dropped from {result.text!r}')
        if word in text.SLOW_WORDS | text.FAST_WORDS:
            # A manner, or an adjective of the thing's name ("the fast food sign")
            assert (result.manner and roles[word] == 'manner') or (
                roles[word] == 'object' and not word.endswith('ly')), result.roles


@pytest.mark.parametrize('command, phrase, read_as', [
    ('drive to teh orange ball', 'orange ball', ("'teh' as 'the'",)),
    ('go twoards hte blue cube', 'blue cube', ("'twoards' as 'towards'", "'hte' as 'the'")),
    ('go to teh toy', 'toy', ("'teh' as 'the'",)),  # 'toy' is no slip of 'to': a name
    ('go to the form', 'form', ()),  # a word of its own stays as typed
    # Names: a grammar word does not fit after 'the' or at the end.
    ('drive to the ayn rand book', 'ayn rand book', ()),
    ('find the noe doll', 'noe doll', ()),
    ('go to the red nad', 'red nad', ()),
    ('go to the purple capsule lol', 'purple capsule', ()),  # laughter is no name
])
def test_slips_of_the_grammars_words_are_read_as_the_word_they_almost_are(command, phrase,
                                                                          read_as):
    parsed = parse_command(command)
    assert (parsed.object_phrase, parsed.problem, parsed.read_as) == (phrase, '', read_as)


@pytest.mark.parametrize('command, taken_back', [
    ('go to the purple capsule lol jk', 'jk'),
    ('go to the red ball, just kidding', 'just kidding'),
    ('turn left 90 degrees... never mind', 'never mind'),
    ('go to the blue cube actually no', 'actually no'),
    ("go forward 2 meters, actually don't", 'actually do not'),
    ('find the green cylinder haha nvm', 'nvm'),
    ('never mind', 'never mind'),
    ('go to the purple capsule jk please', 'jk'),
    ('go to the purple capsule jk lolol', 'jk'),
    ('go to the purple capsule jkjk', 'jkjk'),
])
def test_a_command_taken_back_at_its_end_is_refused(command, taken_back):
    parsed = parse_command(command)
    assert parsed.object_phrase == '' and parsed.problem.startswith(
        f"taken back ('{taken_back}')")


@pytest.mark.parametrize('command', ['go to psych', 'take me to jk', 'go to the desk of jk',
                                     'go to the red ball, no kidding'])
def test_a_cancel_word_as_a_name_or_negated_takes_nothing_back(command):
    assert 'taken back' not in parse_command(command).problem
