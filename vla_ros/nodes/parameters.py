"""Node parameters from the core's tables (vla_ros.core.config): descriptors, declaration and
the check of live changes, written once for every node.
"""

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.parameter import Parameter

from vla_ros.core.config import ConfigError, Param


def descriptor(description, read_only=False, float_range=None, int_range=None,
               additional_constraints=''):
    result = ParameterDescriptor(description=description, read_only=read_only,
                                 additional_constraints=additional_constraints)
    if float_range is not None:
        result.floating_point_range = [
            FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]))]
    if int_range is not None:
        result.integer_range = [
            IntegerRange(from_value=int(int_range[0]), to_value=int(int_range[1]), step=1)]
    return result


def descriptor_of(param: Param) -> ParameterDescriptor:
    numeric = param.range is not None
    return descriptor(
        param.description, read_only=param.read_only,
        float_range=param.range if numeric and isinstance(param.default, float) else None,
        int_range=param.range if numeric and isinstance(param.default, int)
        and not isinstance(param.default, bool) else None,
        additional_constraints='|'.join(param.choices))


def declare(node, params: dict) -> dict:
    """Declare every Param of `params` on `node`; their checked values (ConfigError if one
    from a params file or override does not fit).
    """
    values = {}
    for name, param in params.items():
        if param.default == ():
            # An empty list has no type of its own ([] declares a byte array), and rclpy
            # answers a GetParameters request naming an unset parameter with nothing at all
            # (rqt_reconfigure shows an empty panel). So it is declared as a string array and,
            # left unset, set to [] through the public set_parameters, which a read-only
            # descriptor would refuse: such a list is kept read-only by check_change instead,
            # and its description says so.
            described = descriptor_of(param)
            if param.read_only:
                described.read_only = False
                described.description += ' (read-only: set at start)'
            value = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, described).value
            if value is None:
                node.set_parameters([Parameter(name, Parameter.Type.STRING_ARRAY, [])])
                value = ()
        else:
            default = list(param.default) if isinstance(param.default, tuple) else param.default
            try:
                value = node.declare_parameter(name, default, descriptor_of(param)).value
            except InvalidParameterTypeException as error:
                if not param.choices:
                    raise
                # e.g. require_scan: false, where the string 'false' is meant
                raise ConfigError(f"{name}: {error} (one of {', '.join(param.choices)}: a "
                                  "string, so quote 'true' and 'false' in YAML and launch "
                                  'arguments)') from None
        values[name] = param.check(value)
    return values


def check_change(params: dict, parameter) -> tuple:
    """(checked value, '') for a live change, or (None, why it is refused)."""
    param = params.get(parameter.name)
    if param is None:
        return parameter.value, ''
    if param.read_only:  # the lists declare() could not describe as read-only
        return None, f'{parameter.name} is read-only: set it at start (params file or launch)'
    value = parameter.value
    if value is None and param.default == ():
        value = ()
    try:
        return param.check(value), ''
    except ConfigError as error:
        return None, str(error)
