//! The `calculate` tool: evaluates an arithmetic expression such as `2 + 3 * 4`.
//!
//! The evaluator is a small hand-written parser in [`eval`]; this file only
//! adapts it to the [`Tool`] trait.

mod eval;

use netra_sdk::serde_json::{Number, Value};
use netra_sdk::{Context, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;

/// Arguments of `calculate`.
#[derive(Deserialize, JsonSchema)]
struct Args {
    /// An arithmetic expression such as `2 + 3 * 4`. Supports `+ - * / % ^`
    /// (`^` is power and binds right to left), unary minus, parentheses and
    /// decimal numbers.
    expression: String,
}

struct Calculate;

impl Tool for Calculate {
    const NAME: &'static str = "calculate";
    const DESCRIPTION: &'static str = "Evaluates an arithmetic expression with + - * / % ^ and \
         parentheses, and returns the number it is equal to.";
    type Args = Args;
    type Output = Value;

    fn call(_ctx: &Context, args: Args) -> Result<Value, ToolError> {
        let value =
            eval::evaluate(&args.expression).map_err(|e| ToolError::invalid(e.to_string()))?;
        Ok(to_json(value))
    }
}

netra_sdk::export_tools!(Calculate);

/// The largest integer up to which every integer is exactly an `f64` (2^53).
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Encodes `value` as a JSON integer when it is a whole number that an `f64`
/// holds exactly, so that `2+3*4` answers `14` rather than `14.0`.
fn to_json(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() <= EXACT_INTEGER_LIMIT {
        // The cast is exact: the value is whole and within ±2^53. It also turns
        // `-0` into `0`.
        Value::from(value as i64)
    } else {
        // `evaluate` only returns finite numbers, which always have a JSON form.
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calculate(expression: &str) -> Result<String, ToolError> {
        let args = Args {
            expression: expression.to_owned(),
        };
        Calculate::call(&Context::default(), args).map(|value| value.to_string())
    }

    #[test]
    fn whole_results_are_json_integers() {
        assert_eq!(calculate("2+3*4").as_deref(), Ok("14"));
        assert_eq!(calculate("10 / 2").as_deref(), Ok("5"));
        assert_eq!(calculate("-0").as_deref(), Ok("0"));
        assert_eq!(calculate("2^53").as_deref(), Ok("9007199254740992"));
    }

    #[test]
    fn other_results_are_json_floats() {
        assert_eq!(calculate("1/4").as_deref(), Ok("0.25"));
        assert_eq!(calculate("2^60").as_deref(), Ok("1.152921504606847e+18"));
    }

    #[test]
    fn bad_expressions_are_invalid_arguments() {
        assert_eq!(
            calculate("2+"),
            Err(ToolError::invalid(
                "unexpected end of expression at position 2"
            ))
        );
        assert!(matches!(
            calculate("1/0"),
            Err(ToolError::InvalidArguments(_))
        ));
    }
}
