"""Tests of the units tool's logic, run with the host's CPython:

    python3 -m unittest discover -s plugins/units
"""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent / "sdk" / "python")]

import app  # noqa: E402
from netra import ToolError  # noqa: E402


class ConvertTests(unittest.TestCase):
    def test_conversions(self):
        cases = [
            ((1, "m", "ft"), 3.28084, "1 m = 3.28084 ft"),
            ((100, "celsius", "F"), 212, "100 °C = 212 °F"),
            ((-40, "°F", "c"), -40, "-40 °F = -40 °C"),
            ((0, "K", "C"), -273.15, "0 K = -273.15 °C"),
            ((90, "Minutes", "h"), 1.5, "90 min = 1.5 h"),
            ((1, "lb", "g"), 453.592, "1 lb = 453.592 g"),
            ((2.5, "nautical miles", "km"), 4.63, "2.5 nmi = 4.63 km"),
        ]
        for args, value, text in cases:
            with self.subTest(args=args):
                result = app.convert(*args)
                self.assertEqual((result["value"], result["text"]), (value, text))

    def test_precision(self):
        self.assertEqual(app.convert(1, "m", "ft", precision=10)["value"], 3.280839895)

    def test_bad_units_are_invalid_arguments(self):
        cases = [
            ((1, "furlong", "m"), "unknown unit 'furlong' in `from_unit`"),
            ((1, "kg", "m"), "cannot convert kg (mass) to m (length)"),
            ((-1, "K", "C"), "below absolute zero"),
            ((1e308, "mi", "mm"), "too large"),
            ((1, "m", "ft", 0), "`precision`"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                with self.assertRaises(ToolError) as caught:
                    app.convert(*args)
                self.assertEqual(caught.exception.kind, "invalid-arguments")
                self.assertIn(message, caught.exception.message)

    def test_every_unit_is_listed_and_converts_to_itself(self):
        for dimension, units in app.units_list().items():
            for unit in units:
                with self.subTest(unit=unit):
                    self.assertEqual(app.convert(7, unit, unit)["value"], 7)


if __name__ == "__main__":
    unittest.main()
