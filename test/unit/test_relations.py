"""Which one of several alike: the grammar keeps the relation, geometry resolves it, and two
alike with no word of which are said, not guessed (core.relations, core.policy).
"""

import numpy as np
import pytest

from vla_ros.core.perception import alike_of_source, source_label, step_of_source
from vla_ros.core.policy import Segmentation, TargetView
from vla_ros.core.relations import (
    ambiguity_status,
    instances,
    plural,
    Relation,
    resolve,
)
from vla_ros.core.segmentation import find_regions, Target
from vla_ros.core.status import is_final, is_success
from vla_ros.core.steps import step_targets
from vla_ros.core.text import clean_command, parse_command


def parsed(command):
    return parse_command(clean_command(command)[0])


@pytest.mark.parametrize(('command', 'phrase', 'kind', 'ordinal', 'anchor'), [
    ('go to the left red ball', 'red ball', 'left', 1, ''),
    ('go to the red ball on the right', 'red ball', 'right', 1, ''),
    ('Go to the LEFTMOST red ball!', 'red ball', 'left', 1, ''),
    ('drive to the rightmost cube', 'cube', 'right', 1, ''),
    ('go to the second ball from the left', 'ball', 'left', 2, ''),
    ('go to the third red ball from the right', 'red ball', 'right', 3, ''),
    ('go to the second red ball on the right', 'red ball', 'right', 2, ''),
    ('go to the nearest red ball', 'red ball', 'nearest', 1, ''),
    ('go to the closest cube please', 'cube', 'nearest', 1, ''),
    ('go to the red ball closest to you', 'red ball', 'nearest', 1, ''),
    ('go to the farthest red ball', 'red ball', 'farthest', 1, ''),
    ('go to the second nearest cube', 'cube', 'nearest', 2, ''),
    ('find the biggest cube', 'cube', 'biggest', 1, ''),
    ('go to the smallest red ball', 'red ball', 'smallest', 1, ''),
    ('go to the red ball next to the blue cube', 'red ball', 'next_to', 1, 'blue cube'),
    ('approach the bin near the door', 'bin', 'next_to', 1, 'door'),
    ('go to the red ball to the left of the blue cube', 'red ball', 'left_of', 1, 'blue cube'),
    ('go to the red ball right of the cube', 'red ball', 'right_of', 1, 'cube'),
    ('go to the red ball in front of the green cylinder', 'red ball', 'in_front_of', 1,
     'green cylinder'),
    ('go to the red ball behind the green cylinder', 'red ball', 'behind', 1,
     'green cylinder'),
    ('go to the red ball near the blue cube quickly', 'red ball', 'next_to', 1, 'blue cube'),
    ('go to the first aid kit by the door', 'first aid kit', 'next_to', 1, 'door'),
])
def test_the_grammar_keeps_the_relation_and_looks_for_the_noun(command, phrase, kind, ordinal,
                                                                  anchor):
    result = parsed(command)
    assert result.understood, result.problem
    assert result.object_phrase == phrase
    assert (result.relation.kind, result.relation.ordinal, result.relation.anchor) == (
        kind, ordinal, anchor)
    assert 'relation' in dict(result.roles).values()


@pytest.mark.parametrize(('command', 'phrase'), [
    ('go to the red ball', 'red ball'), ('park next to the red ball', 'red ball'),
    ('move next to the red ball', 'red ball'), ('go right up to the red ball', 'red ball'),
    # ordinals without a side are names
    ('go to the first aid kit', 'first aid kit'), ('go to the 3rd door', '3rd door'),
    ('go to the second red ball', 'second red ball'),
])
def test_no_relation_where_none_is_said(command, phrase):
    result = parsed(command)
    assert result.understood, result.problem
    assert result.relation is None and result.object_phrase == phrase


@pytest.mark.parametrize(('command', 'direction', 'manner'), [
    ('turn to the left', 'left', ''), ('go to the left', 'left', ''),
    ('turn ninety degrees to the left', 'left', ''), ('turn to the left slowly', 'left', 'slow'),
    ('turn slowly to the left', 'left', 'slow'), ('move to the right quickly', 'right', 'fast'),
])
def test_a_side_after_a_motion_is_its_direction(command, direction, manner):
    result = parsed(command)
    assert result.understood and result.relation is None, result
    assert result.directions == (direction,) and result.manner == manner


@pytest.mark.parametrize(('command', 'why'), [
    ('go to the leftmost red ball on the right', 'one relation a command'),
    ('go to the nearest red ball next to the cube', 'one relation a command'),
    ('go to the ball on your left', "'on your left'"),  # beside the robot: not in view
    ('go to the green cube behind you', "'behind you'"),
    ('go behind the red ball', "'behind red ball'"),  # a place, not which one
    ('approach the red ball from the left', "'from'"),  # a way to go, not which one
    ('go to the red ball next to the cube tomorrow', "a time ('tomorrow')"),
    ('go to the red ball next to the cube twice', "repetitions ('twice')"),
    # the answer to 'ambiguous: ...' must name the thing: never a motion to the left
    ('go to the left one', "'the left one': say the thing too"),
    ('the nearest one', "'the nearest one': say the thing too"),
    ('go to the red ball next to the red ball', 'which other thing?'),
])
def test_what_it_cannot_resolve_is_refused(command, why):
    result = parsed(command)
    assert not result.understood and result.relation is None, result
    assert why in result.problem


def test_each_step_keeps_its_own_relation():
    steps = step_targets('go to the left red ball, then the blue cube next to the door')
    assert [phrase for phrase, _ in steps] == ['red ball', 'blue cube']
    assert steps[0][1].kind == 'left' and steps[1][1].kind == 'next_to'
    assert steps[1][1].anchor == 'door'


def thing(x, bottom=0.5, area=0.01, width=0.08):
    """A region at image x whose lowest row is `bottom` (nearer: larger)."""
    return Target(x=x, y=bottom - 0.1, confidence=0.9, area=area, width=width, bottom=bottom,
                  left=x - width, top=bottom - 0.2)


LEFT, MIDDLE, RIGHT = thing(-0.6, 0.3, 0.004), thing(0.0, 0.7, 0.02), thing(0.5, 0.5, 0.01)


@pytest.mark.parametrize(('relation', 'expected'), [
    (Relation('left'), LEFT), (Relation('right'), RIGHT), (Relation('left', 2), MIDDLE),
    (Relation('right', 2), MIDDLE), (Relation('left', 3), RIGHT),
    (Relation('nearest'), MIDDLE), (Relation('farthest'), LEFT), (Relation('nearest', 2), RIGHT),
    (Relation('biggest'), MIDDLE), (Relation('smallest'), LEFT),
])
def test_a_relation_picks_by_the_geometry_in_the_image(relation, expected):
    resolution = resolve([MIDDLE, RIGHT, LEFT], relation)
    assert resolution.chosen is expected and resolution.alike == 0


def test_a_relation_to_another_thing_picks_beside_it():
    cube = thing(0.3, 0.5)
    assert resolve([LEFT, MIDDLE, RIGHT], Relation('next_to', anchor='cube'), [cube]).chosen \
        is RIGHT
    assert resolve([LEFT, MIDDLE, RIGHT], Relation('left_of', anchor='cube'), [cube]).chosen \
        is MIDDLE
    assert resolve([LEFT, MIDDLE, RIGHT], Relation('right_of', anchor='cube'), [cube]).chosen \
        is RIGHT
    assert resolve([LEFT, MIDDLE], Relation('right_of', anchor='cube'), [cube]).chosen is None
    far_cube = thing(0.0, 0.2)
    assert resolve([LEFT, MIDDLE, RIGHT], Relation('in_front_of', anchor='cube'),
                   [far_cube]).chosen is MIDDLE
    near_cube = thing(-0.5, 0.9)
    assert resolve([LEFT, MIDDLE, RIGHT], Relation('behind', anchor='cube'),
                   [near_cube]).chosen is LEFT
    # CLIPSeg lit one of the balls for "cube" too: that region is no cube.
    assert resolve([LEFT, MIDDLE, RIGHT], Relation('next_to', anchor='cube'),
                   [thing(-0.6, 0.3, 0.03), cube]).chosen is RIGHT
    # ... but a cube the ball hides part of is one.
    hidden = thing(0.1, 0.55, width=0.12)  # its box overlaps the middle one's
    assert resolve([LEFT, MIDDLE, RIGHT], Relation('in_front_of', anchor='cube'),
                   [hidden]).chosen is MIDDLE


def test_what_the_geometry_cannot_tell_is_not_guessed():
    twin = thing(-0.6 + 0.01, 0.6)  # one behind the other: both as far left
    assert resolve([LEFT, twin, RIGHT], Relation('left')) == resolve(
        [twin, LEFT], Relation('left'))
    assert resolve([LEFT, twin], Relation('left')).alike == 2
    beside = thing(0.2, 0.3 + 0.005)  # as far as LEFT
    assert resolve([LEFT, beside], Relation('farthest')).alike == 2
    cube = thing(0.0, 0.5)
    assert resolve([thing(-0.3), thing(0.3)], Relation('next_to', anchor='cube'),
                   [cube]).alike == 2
    # The thing it is related to is not in view, or too few to count: none, keep looking.
    assert resolve([LEFT, RIGHT], Relation('next_to', anchor='cube'), []).chosen is None
    assert resolve([LEFT, RIGHT], Relation('left', 3)).chosen is None
    assert resolve([LEFT, RIGHT], Relation('left', 3)).alike == 0


def test_without_a_relation_two_alike_are_said_one_is_taken():
    assert resolve([LEFT], None).chosen is LEFT
    assert resolve([LEFT, RIGHT], None).chosen is None
    assert resolve([LEFT, RIGHT, MIDDLE], None).alike == 3
    assert resolve([], None).chosen is None and resolve([], None).alike == 0


def test_instances_are_things_not_regions():
    probability = np.zeros((100, 200), np.float32)
    probability[40:60, 20:50] = 0.9  # a ball on the left
    probability[40:60, 130:145] = 0.9  # one on the right, split by a thin post ...
    probability[40:60, 146:160] = 0.9
    probability[10, 100] = 0.9  # ... and a speck of noise
    regions = find_regions(probability, 0.5)
    assert len(regions) == 4
    things = instances(regions)
    assert len(things) == 2
    assert resolve(things, Relation('right')).chosen.x > 0.2
    assert resolve(things, Relation('left')).chosen.x < -0.4


def test_the_status_names_the_things_in_the_plural():
    assert plural('red ball') == 'red balls'
    assert plural('blue box') == 'blue boxes'
    assert plural('toy lorry') == 'toy lorries'
    assert plural('bench') == 'benches'
    assert plural('cup of coffee') == 'cups of coffee'
    status = ambiguity_status(2, 'red ball')
    assert status == ('ambiguous: 2 red balls in view, say which: the left red ball, the '
                      'nearest red ball …')
    assert is_final(status) and not is_success(status)
    assert is_final(f'step 2/3: {status}')


def test_the_target_source_carries_how_many_alike_and_the_step():
    for tracked in (False, True):
        for step in (None, (2, 3)):
            for alike in (0, 2, 3):
                label = source_label(tracked, step, alike)
                assert step_of_source(label) == step
                assert alike_of_source(label) == alike
    assert source_label(False, (2, 3), 2) == 'segmented, 2 alike for step 2/3'
    assert alike_of_source('segmented') == 0


def go_to_policy():
    from vla_ros.core.policy import ActionPolicy, Intent, ServoConfig

    policy = ActionPolicy(None, servo_config=ServoConfig(confirm_s=0.0))
    policy.follow(Intent('go_to', 'go_to', ('go to',)), 'red ball', 0.0)
    return policy


def segmentation(stamp, alike):
    return Segmentation(0.05, stamp, stamp, stamp, alike=alike)


def test_two_segmentations_of_alike_things_end_the_command_still():
    policy = go_to_policy()
    nothing = TargetView(0.0, 0.0, 0.0, 0.0)
    first = policy.step(0.1, nothing, segmentation(0.1, 2))
    assert (first.linear, first.angular) == (0.0, 0.0)  # holds, not searching on
    again = policy.step(0.15, nothing, segmentation(0.1, 2))  # the same one, tracked on
    assert not is_final(again.status)
    ended = policy.step(0.2, nothing, segmentation(0.2, 2))
    assert ended.status == ambiguity_status(2, 'red ball')
    assert (ended.linear, ended.angular) == (0.0, 0.0)
    later = policy.step(0.3, TargetView(0.0, 0.0, 0.9, 0.05), segmentation(0.3, 0))
    assert later.status == ended.status and (later.linear, later.angular) == (0.0, 0.0)


def test_alike_segmentations_with_one_seen_alone_between_still_end_the_command():
    """The verifier's verdicts on one of two flicker: a segmentation that sees one alone
    between two that see both confirms nothing.
    """
    policy = go_to_policy()
    nothing = TargetView(0.0, 0.0, 0.0, 0.0)
    ahead = TargetView(0.0, 0.2, 0.9, 0.01)
    policy.step(0.1, nothing, segmentation(0.1, 2))
    alone = policy.step(0.2, ahead, segmentation(0.2, 0))
    assert alone.linear == 0.0 and not policy.state.tracking
    ended = policy.step(0.3, nothing, segmentation(0.3, 2))
    assert ended.status.startswith('ambiguous: 2 red balls')


def test_regions_nearly_called_the_prompt_count_as_alike_only_beside_a_sure_one():
    from vla_ros.core.segmentation import judged_regions

    probability = np.zeros((100, 200), np.float32)
    probability[40:60, 10:40] = 0.9  # largest
    probability[40:60, 80:100] = 0.9
    probability[40:55, 150:160] = 0.9  # smallest
    asked = []

    def judge(regions):  # the left one nearly the prompt, the middle one sure, not the right
        asked.append(len(regions))
        return [1 if region.x < -0.5 else 2 if region.x < 0.5 else 0 for region in regions]
    sure, alike = judged_regions(probability, 0.5, None, judge)
    assert [round(r.x, 2) for r in sure] == [-0.1]
    assert [round(r.x, 2) for r in alike] == [-0.75, -0.1]
    # The region followed since the last frame is not asked again, and is sure.
    sure, alike = judged_regions(probability, 0.5, sure[0], judge)
    assert asked[-1] == 2 and [round(r.x, 2) for r in sure] == [-0.1]


def test_alike_things_are_asked_about_until_one_is_followed_not_after():
    """Before a sighting is confirmed, two alike end the command; once the robot follows
    one, a look-alike the verifier lets through on the way does not stop it.
    """
    policy = go_to_policy()
    ahead = TargetView(0.0, 0.2, 0.9, 0.01)
    policy.step(0.1, ahead, segmentation(0.1, 0))
    nothing = TargetView(0.0, 0.0, 0.0, 0.0)
    policy.step(0.2, nothing, segmentation(0.2, 2))  # not yet confirmed
    assert policy.step(0.3, nothing, segmentation(0.3, 2)).status.startswith('ambiguous')
    policy = go_to_policy()
    for tick in range(1, 6):
        output = policy.step(0.1 * tick, ahead, segmentation(0.1 * tick, 0))
    assert output.linear > 0.0 and policy.state.tracking
    for tick in range(6, 9):
        output = policy.step(0.1 * tick, nothing, segmentation(0.1 * tick, 2))
    assert not is_final(output.status)


def test_a_wall_edge_is_no_thing_alike_and_a_split_thing_is_one():
    probability = np.zeros((100, 200), np.float32)
    probability[40:60, 20:40] = 0.9  # a ball
    probability[50:58, 100:190] = 0.9  # a long low strip: a wall's edge the verifier passed
    assert len(instances(find_regions(probability, 0.5))) == 1
    probability[50:58, 100:190] = 0.0
    probability[40:60, 120:129] = 0.9  # another ball, behind a post 2 px wide
    probability[40:60, 131:140] = 0.9
    things = instances(find_regions(probability, 0.5))
    assert len(things) == 2 and resolve(things, None).alike == 2


def test_things_alike_are_measured_by_the_shape_most_share():
    probability = np.zeros((100, 200), np.float32)
    probability[30:100, 0:90] = 0.9  # a wide false region at the bottom corner: the largest
    probability[40:50, 120:125] = 0.9  # three far ones alike, tall and narrow
    probability[40:50, 140:145] = 0.9
    probability[40:50, 180:185] = 0.9
    things = instances(find_regions(probability, 0.5))
    assert len(things) == 3 and all(thing.x > 0.0 for thing in things)


def test_a_partial_region_of_the_other_thing_on_a_candidate_is_no_anchor():
    cube = thing(0.3, 0.5)
    # The lower part of LEFT lit for "cube", the largest region of that prompt.
    lit_on_left = Target(x=-0.6, y=0.25, confidence=0.9, area=0.05, width=0.05, bottom=0.3,
                         left=-0.65, top=0.2)
    assert resolve([LEFT, RIGHT], Relation('next_to', anchor='cube'),
                   [lit_on_left, cube]).chosen is RIGHT


def test_two_things_alike_side_by_side_stay_two():
    """Two cylinders 0.6 m apart 2.7 m away: boxes 28 px wide, 12 px between them."""
    probability = np.zeros((100, 200), np.float32)
    probability[40:80, 40:68] = 0.9
    probability[40:80, 80:108] = 0.9
    things = instances(find_regions(probability, 0.5))
    assert len(things) == 2
    assert resolve(things, Relation('left')).chosen.x < resolve(things, Relation('right')).chosen.x


class MaskSegmenter:
    """The segmenter's interface over a fixed probability map (one prompt)."""

    def __init__(self, probability):
        self.probability = probability

    def set_prompts(self, prompts):
        self.prompts = prompts

    def probabilities(self, rgb, fovea=None):
        return self.probability[None]


def test_a_speck_beside_the_thing_asked_for_is_no_thing_alike():
    """Patches of floor and wall tops the verifier passes are specks far more often than
    things alike are: under MIN_ALIKE_AREA, a second region neither makes the command
    ambiguous nor hides the target.
    """
    from vla_ros.core.perception import Perception, PerceptionSettings
    from vla_ros.core.relations import MIN_ALIKE_AREA

    probability = np.zeros((120, 160), np.float32)
    probability[60:80, 30:50] = 0.9  # a ball: 400 px of 19200
    speck = (MIN_ALIKE_AREA * 0.8) * probability.size  # pixels: over noise, under alike
    probability[62:66, 120:120 + int(speck // 4)] = 0.9
    perception = Perception(MaskSegmenter(probability), PerceptionSettings(fovea=None),
                            exact=True)
    perception.command('go to the red ball')
    sight = perception.see(np.zeros((120, 160, 3), np.uint8))
    assert len(sight.candidates) == 2 and sight.alike == 0
    assert sight.target.visible and sight.target.x < 0.0
    for relation in ('right', 'smallest'):  # nor is it the one a relation picks
        perception.command(f'go to the {relation} red ball')
        sight = perception.see(np.zeros((120, 160, 3), np.uint8))
        assert sight.target.visible and sight.target.x < 0.0 and sight.alike == 0
    probability[62:78, 116:134] = 0.9  # the same place, now a thing as big as the ball
    perception.command('go to the red ball')
    sight = perception.see(np.zeros((120, 160, 3), np.uint8))
    assert sight.alike == 2 and not sight.target.visible


def test_things_alike_seen_far_apart_in_time_are_no_question():
    """Two segmentations that see things alike end the command only within ALIKE_GAP
    segmentations of each other: the verifier's odd false pair, once now and once a minute
    later, is not two sightings of one question.
    """
    from vla_ros.core.policy import ALIKE_GAP

    policy = go_to_policy()
    nothing = TargetView(0.0, 0.0, 0.0, 0.0)
    ticks = iter(range(1, 100))

    def segmented(alike):
        tick = next(ticks)
        return policy.step(0.1 * tick, nothing, segmentation(0.1 * tick, alike))
    segmented(2)
    for _ in range(ALIKE_GAP + 1):  # too many that see none between
        segmented(0)
    assert not is_final(segmented(2).status)
    for _ in range(ALIKE_GAP):  # few enough between: one question, asked twice
        segmented(0)
    assert segmented(2).status.startswith('ambiguous: 2 red balls')


def test_the_gap_counts_segmentations_not_ticks_and_not_the_look_alikes_on_the_way():
    """Tracker frames repeat a segmentation's stamp: they are no segmentations between two
    that see things alike. A long track of one is: a pair seen before it and one after it
    are no question asked twice. A camera that repeats its stamps still makes segmentations
    (each target its own frame's, told apart by when it came).
    """
    nothing, ahead = TargetView(0.0, 0.0, 0.0, 0.0), TargetView(0.0, 0.2, 0.9, 0.01)
    policy = go_to_policy()
    policy.step(0.10, nothing, segmentation(0.1, 2))
    for tick in range(1, 20):  # one segmentation seeing none, followed by the tracker
        policy.step(0.10 + 0.01 * tick, nothing, Segmentation(0.05, 0.1 + 0.01 * tick, 0.15,
                                                             0.1 + 0.01 * tick))
    assert policy.step(0.4, nothing, segmentation(0.4, 2)).status.startswith('ambiguous')

    policy = go_to_policy()
    policy.step(0.1, nothing, segmentation(0.1, 2))
    for tick in range(2, 40):  # a lone one confirmed and followed for 4 s
        output = policy.step(0.1 * tick, ahead, segmentation(0.1 * tick, 0))
    assert policy.state.tracking and output.linear > 0.0
    for tick in range(40, 60):  # lost, then two alike again
        output = policy.step(0.1 * tick, nothing, segmentation(0.1 * tick, 2 * (tick == 59)))
    assert not is_final(output.status)

    policy = go_to_policy()  # a camera whose stamps stand still: each target a segmentation
    for tick in range(1, 3):
        output = policy.step(0.1 * tick, nothing, Segmentation(0.05, 0.0, 0.0, 0.1 * tick,
                                                               alike=2))
    assert output.status.startswith('ambiguous')


def test_which_one_is_asked_while_exploring_too():
    """After the search has turned all round, the robot explores (a house): two alike seen
    there are asked about as anywhere (perception shows neither as the target meanwhile).
    """
    from vla_ros.core.policy import ActionPolicy, Intent, ServoConfig

    policy = ActionPolicy(None, servo_config=ServoConfig(confirm_s=0.0, search_timeout_s=1.0),
                          may_explore=True)
    policy.follow(Intent('go_to', 'go_to', ('go to',)), 'red ball', 0.0)
    nothing = TargetView(0.0, 0.0, 0.0, 0.0)
    now, output = 0.0, None
    while output is None or not output.explore:
        now += 0.05
        output = policy.step(now, nothing, segmentation(now, 0))
        assert now < 5.0
    for tick in range(1, 3):
        output = policy.step(now + 0.1 * tick, nothing, segmentation(now + 0.1 * tick, 2))
    assert output.status.startswith('ambiguous') and (output.linear, output.angular) == (0, 0)
