"""The `units` tool plugin, written in Python: converts lengths, masses,
temperatures and times between units.

    python3 sdk/python/build.py plugins/units -o target/guests/py/units.wasm
    netra tool call target/guests/py/units.wasm convert '{"value": 1, "from_unit": "m", "to_unit": "ft"}'
"""

import math

import netra
from netra import ToolError, tool

# Each unit's size in the dimension's base unit (metre, kilogram, second).
FACTORS = {
    "length": {
        "mm": 0.001,
        "cm": 0.01,
        "m": 1.0,
        "km": 1000.0,
        "in": 0.0254,
        "ft": 0.3048,
        "yd": 0.9144,
        "mi": 1609.344,
        "nmi": 1852.0,
    },
    "mass": {
        "mg": 1e-6,
        "g": 0.001,
        "kg": 1.0,
        "t": 1000.0,
        "oz": 0.028349523125,
        "lb": 0.45359237,
        "st": 6.35029318,
    },
    "time": {
        "ms": 0.001,
        "s": 1.0,
        "min": 60.0,
        "h": 3600.0,
        "d": 86400.0,
        "wk": 604800.0,
    },
}

# Temperatures are not proportional: kelvin = (value + offset) * scale.
TEMPERATURES = {
    "°C": (1.0, 273.15),
    "°F": (5.0 / 9.0, 459.67),
    "K": (1.0, 0.0),
}

# Other names of the units, matched without regard to case or spaces.
ALIASES = {
    "mm": ["millimeter", "millimeters", "millimetre", "millimetres"],
    "cm": ["centimeter", "centimeters", "centimetre", "centimetres"],
    "m": ["meter", "meters", "metre", "metres"],
    "km": ["kilometer", "kilometers", "kilometre", "kilometres"],
    "in": ["inch", "inches", '"'],
    "ft": ["foot", "feet", "'"],
    "yd": ["yard", "yards"],
    "mi": ["mile", "miles"],
    "nmi": ["nautical mile", "nautical miles"],
    "mg": ["milligram", "milligrams"],
    "g": ["gram", "grams"],
    "kg": ["kilogram", "kilograms", "kilo", "kilos"],
    "t": ["tonne", "tonnes", "metric ton", "metric tons"],
    "oz": ["ounce", "ounces"],
    "lb": ["pound", "pounds", "lbs"],
    "st": ["stone", "stones"],
    "ms": ["millisecond", "milliseconds"],
    "s": ["second", "seconds", "sec", "secs"],
    "min": ["minute", "minutes", "mins"],
    "h": ["hour", "hours", "hr", "hrs"],
    "d": ["day", "days"],
    "wk": ["week", "weeks"],
    "°C": ["c", "celsius", "degc", "deg c", "degrees celsius"],
    "°F": ["f", "fahrenheit", "degf", "deg f", "degrees fahrenheit"],
    "K": ["kelvin", "kelvins"],
}

DIMENSIONS = {symbol: dimension for dimension, units in FACTORS.items() for symbol in units}
DIMENSIONS.update((symbol, "temperature") for symbol in TEMPERATURES)

LOOKUP = {symbol.lower(): symbol for symbol in DIMENSIONS}
LOOKUP.update((alias, symbol) for symbol, names in ALIASES.items() for alias in names)


def unit(name, argument):
    """The unit symbol `name` stands for, or an invalid-arguments error."""
    symbol = LOOKUP.get(" ".join(name.lower().split()))
    if symbol is None:
        known = ", ".join(DIMENSIONS)
        raise ToolError.invalid_arguments(
            f"unknown unit {name!r} in `{argument}`; known units: {known}"
        )
    return symbol


def number(value, digits):
    """`value` with `digits` significant digits: an int when it is whole."""
    rounded = float(f"{value:.{digits}g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded


def show(value):
    return f"{value:.15g}" if isinstance(value, float) else str(value)


CONVERT_SCHEMA = {
    "type": "object",
    "properties": {
        "value": {"type": "number", "description": "The quantity to convert."},
        "from_unit": {
            "type": "string",
            "description": "The unit of `value`, e.g. m, ft, kg, lb, °C, °F, K, min.",
        },
        "to_unit": {"type": "string", "description": "The unit to convert to."},
        "precision": {
            "type": "integer",
            "minimum": 1,
            "maximum": 15,
            "default": 6,
            "description": "Significant digits of the result.",
        },
    },
    "required": ["value", "from_unit", "to_unit"],
    "additionalProperties": False,
}


@tool(
    description="Converts a value between units of length (mm, cm, m, km, in, ft, yd, mi, "
    "nmi), mass (mg, g, kg, t, oz, lb, st), temperature (°C, °F, K) and time (ms, s, min, "
    "h, d, wk).",
    schema=CONVERT_SCHEMA,
    examples=[{"value": 1, "from_unit": "m", "to_unit": "ft"}],
)
def convert(value, from_unit, to_unit, precision=6):
    if not math.isfinite(value):
        raise ToolError.invalid_arguments("`value` must be a finite number")
    if isinstance(precision, float):
        precision = int(precision)
    if not 1 <= precision <= 15:
        raise ToolError.invalid_arguments("`precision` must be between 1 and 15")
    source = unit(from_unit, "from_unit")
    target = unit(to_unit, "to_unit")
    dimension = DIMENSIONS[source]
    if DIMENSIONS[target] != dimension:
        raise ToolError.invalid_arguments(
            f"cannot convert {source} ({dimension}) to {target} ({DIMENSIONS[target]})"
        )
    if dimension == "temperature":
        scale, offset = TEMPERATURES[source]
        kelvin = (value + offset) * scale
        if kelvin < 0:
            raise ToolError.invalid_arguments(f"{show(value)} {source} is below absolute zero")
        scale, offset = TEMPERATURES[target]
        result = kelvin / scale - offset
    else:
        result = value * FACTORS[dimension][source] / FACTORS[dimension][target]
    if not math.isfinite(result):
        raise ToolError.invalid_arguments(f"{show(value)} {source} is too large to convert")
    result = number(result, precision)
    return {
        "value": result,
        "unit": target,
        "dimension": dimension,
        "text": f"{show(value)} {source} = {show(result)} {target}",
    }


@tool
def units_list() -> dict:
    """Lists the units `convert` knows, by dimension."""
    units = {dimension: list(factors) for dimension, factors in FACTORS.items()}
    units["temperature"] = list(TEMPERATURES)
    return units


Tool = netra.tool_plugin()
