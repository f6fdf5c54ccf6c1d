"""Tests of pyagent's reading of a request, run with the host's CPython:

    python3 -m unittest discover -s plugins/pyagent
"""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent / "sdk" / "python")]

import app  # noqa: E402
from netra import AgentError, ToolError  # noqa: E402


class ExpressionTests(unittest.TestCase):
    def test_arithmetic_is_extracted_from_the_sentence(self):
        cases = {
            "what is 2+3*4": "2+3*4",
            "(1+2)^3?": "(1+2)^3",
            "Compute 10 / 4 please.": "10 / 4",
            "What's 7 % 3?": "7 % 3",
            "what is -3 * -2": "-3 * -2",
            "what is 2+2.": "2+2",
            "(what is 2+2)": "2+2",
            "((2+3)*4": "(2+3)*4",
            "I am 30, what is 12 * (3 + 4)?": "12 * (3 + 4)",
            "what is 1 / (2 + 3": "1 / (2 + 3",
        }
        for text, expected in cases.items():
            with self.subTest(text=text):
                self.assertEqual(app.expression(text), expected)

    def test_numbers_without_an_operator_between_them_are_not_arithmetic(self):
        for text in ["what is 5", "-3", "50% off", "a well-known fact", "5 times 3", "hello"]:
            with self.subTest(text=text):
                self.assertIsNone(app.expression(text))

    def test_chunks_add_up_to_the_answer(self):
        self.assertEqual(app.chunks("2+3*4 = 14"), ["2+3*4 ", "= ", "14"])
        self.assertEqual("".join(app.chunks(app.HELP)), app.HELP)


class CalculateTests(unittest.TestCase):
    def answer(self, outcome):
        def call(name, arguments):
            self.assertEqual((name, arguments), ("calculate", {"expression": "1/0"}))
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        original = app.netra.tools.call
        app.netra.tools.call = call
        try:
            return app.calculate("1/0")
        finally:
            app.netra.tools.call = original

    def test_the_result_or_the_failure_is_the_answer(self):
        self.assertEqual(self.answer(0.25), "1/0 = 0.25")
        self.assertEqual(
            self.answer(ToolError.invalid_arguments("division by zero")),
            "I couldn't calculate that: division by zero",
        )

    def test_a_tool_the_agent_may_not_call_makes_it_unavailable(self):
        with self.assertRaises(AgentError) as caught:
            self.answer(ToolError.not_found("calculate"))
        self.assertEqual(caught.exception.kind, "unavailable")


if __name__ == "__main__":
    unittest.main()
