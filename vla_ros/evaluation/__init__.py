"""The evaluator: the robot's own pipeline in the simulator, in lockstep or as the four node
processes over DDS, scored one way.
"""
