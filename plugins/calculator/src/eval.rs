//! A recursive-descent evaluator for arithmetic expressions.
//!
//! Grammar, from loosest to tightest binding:
//!
//! ```text
//! expr    = term (("+" | "-") term)*
//! term    = unary (("*" | "/" | "%") unary)*
//! unary   = ("-" | "+") unary | power
//! power   = primary ("^" unary)?          right-associative
//! primary = number | "(" expr ")"
//! number  = digits ("." digits?)? | "." digits
//! ```
//!
//! `^` binds tighter than unary minus, as in mathematics: `-2^2` is `-4`, and
//! `2^-1` is `0.5`. Positions in error messages count characters from 0.
//! The expression is evaluated while it is parsed; there is no syntax tree.

use std::fmt;

/// How deeply parentheses, signs and powers may nest. The parser recurses once
/// per level, so the limit keeps a hostile expression from exhausting the stack.
pub const MAX_DEPTH: usize = 64;

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// The expression stopped where an operand or `)` was still needed.
    UnexpectedEnd { position: usize },
    /// A token that cannot appear where it does.
    Unexpected { found: String, position: usize },
    /// A `(` without its `)`.
    Unclosed { position: usize },
    /// A character that is not part of any token.
    BadCharacter { found: char, position: usize },
    /// Something like `1.2.3`.
    BadNumber { found: String, position: usize },
    /// `x / 0` or `x % 0`.
    DivisionByZero { position: usize },
    /// An operation whose result is infinite or not a number, like `10^400`.
    NotFinite { operator: char, position: usize },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep { position: usize },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd { position } => {
                write!(f, "unexpected end of expression at position {position}")
            }
            Self::Unexpected { found, position } => {
                write!(f, "unexpected `{found}` at position {position}")
            }
            Self::Unclosed { position } => {
                write!(f, "the `(` at position {position} is never closed")
            }
            Self::BadCharacter { found, position } => {
                write!(f, "unexpected character {found:?} at position {position}")
            }
            Self::BadNumber { found, position } => {
                write!(f, "invalid number `{found}` at position {position}")
            }
            Self::DivisionByZero { position } => {
                write!(f, "division by zero at position {position}")
            }
            Self::NotFinite { operator, position } => write!(
                f,
                "the result of `{operator}` at position {position} is not a finite number"
            ),
            Self::TooDeep { position } => write!(
                f,
                "expression nested too deeply at position {position} (at most {MAX_DEPTH} levels)"
            ),
        }
    }
}

impl std::error::Error for EvalError {}

/// Evaluates `expression` to a finite number.
pub fn evaluate(expression: &str) -> Result<f64, EvalError> {
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens: &tokens,
        next: 0,
        end: expression.chars().count(),
    };
    let value = parser.expr(0)?;
    match parser.peek() {
        None => Ok(value),
        Some(token) => Err(parser.unexpected(token)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number(f64),
    Operator(char),
    Open,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Token {
    kind: Kind,
    /// The character index where the token starts.
    position: usize,
}

fn tokenize(expression: &str) -> Result<Vec<Token>, EvalError> {
    let mut tokens = Vec::new();
    let mut chars = expression.chars().enumerate().peekable();
    while let Some((position, c)) = chars.next() {
        let kind = match c {
            c if c.is_whitespace() => continue,
            '+' | '-' | '*' | '/' | '%' | '^' => Kind::Operator(c),
            '(' => Kind::Open,
            ')' => Kind::Close,
            '0'..='9' | '.' => {
                let mut text = String::from(c);
                while let Some(&(_, c)) = chars.peek() {
                    if !(c.is_ascii_digit() || c == '.') {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                Kind::Number(parse_number(&text, position)?)
            }
            found => return Err(EvalError::BadCharacter { found, position }),
        };
        tokens.push(Token { kind, position });
    }
    Ok(tokens)
}

/// Parses digits with at most one `.` and at least one digit. Rust's own float
/// parser would also accept forms like `inf` or `1e5`, which never reach here
/// because the tokenizer collects only digits and dots.
fn parse_number(text: &str, position: usize) -> Result<f64, EvalError> {
    let bad = || EvalError::BadNumber {
        found: text.to_owned(),
        position,
    };
    if text.matches('.').count() > 1 || text == "." {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

struct Parser<'a> {
    tokens: &'a [Token],
    next: usize,
    /// The position just past the last character, for errors at the end.
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.next).copied()
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.peek();
        self.next += 1;
        token
    }

    /// Consumes the next token if it is one of `operators`.
    fn operator(&mut self, operators: &[char]) -> Option<(char, usize)> {
        match self.peek()?.kind {
            Kind::Operator(op) if operators.contains(&op) => {
                let position = self.peek()?.position;
                self.next += 1;
                Some((op, position))
            }
            _ => None,
        }
    }

    fn unexpected(&self, token: Token) -> EvalError {
        let found = match token.kind {
            Kind::Number(n) => n.to_string(),
            Kind::Operator(op) => op.to_string(),
            Kind::Open => "(".to_owned(),
            Kind::Close => ")".to_owned(),
        };
        EvalError::Unexpected {
            found,
            position: token.position,
        }
    }

    /// Enters one more level of nesting, opened by the `(`, sign or `^` at
    /// `position`; fails past [`MAX_DEPTH`].
    fn descend(depth: usize, position: usize) -> Result<usize, EvalError> {
        if depth >= MAX_DEPTH {
            return Err(EvalError::TooDeep { position });
        }
        Ok(depth + 1)
    }

    fn expr(&mut self, depth: usize) -> Result<f64, EvalError> {
        let mut value = self.term(depth)?;
        while let Some((op, position)) = self.operator(&['+', '-']) {
            let rhs = self.term(depth)?;
            value = apply(op, value, rhs, position)?;
        }
        Ok(value)
    }

    fn term(&mut self, depth: usize) -> Result<f64, EvalError> {
        let mut value = self.unary(depth)?;
        while let Some((op, position)) = self.operator(&['*', '/', '%']) {
            let rhs = self.unary(depth)?;
            value = apply(op, value, rhs, position)?;
        }
        Ok(value)
    }

    fn unary(&mut self, depth: usize) -> Result<f64, EvalError> {
        match self.operator(&['-', '+']) {
            Some((sign, position)) => {
                let value = self.unary(Self::descend(depth, position)?)?;
                Ok(if sign == '-' { -value } else { value })
            }
            None => self.power(depth),
        }
    }

    fn power(&mut self, depth: usize) -> Result<f64, EvalError> {
        let base = self.primary(depth)?;
        match self.operator(&['^']) {
            Some((op, position)) => {
                // The exponent is a `unary`, which recurses back into `power`:
                // that is what makes `^` right-associative.
                let exponent = self.unary(Self::descend(depth, position)?)?;
                apply(op, base, exponent, position)
            }
            None => Ok(base),
        }
    }

    fn primary(&mut self, depth: usize) -> Result<f64, EvalError> {
        let Some(token) = self.bump() else {
            return Err(EvalError::UnexpectedEnd { position: self.end });
        };
        match token.kind {
            Kind::Number(n) => Ok(n),
            Kind::Open => {
                let depth = Self::descend(depth, token.position)?;
                let value = self.expr(depth)?;
                match self.bump() {
                    Some(Token {
                        kind: Kind::Close, ..
                    }) => Ok(value),
                    Some(other) => Err(self.unexpected(other)),
                    None => Err(EvalError::Unclosed {
                        position: token.position,
                    }),
                }
            }
            Kind::Operator(_) | Kind::Close => Err(self.unexpected(token)),
        }
    }
}

/// Applies a binary operator, rejecting division by zero and results that are
/// not finite (the operands are always finite).
fn apply(op: char, lhs: f64, rhs: f64, position: usize) -> Result<f64, EvalError> {
    let value = match op {
        '+' => lhs + rhs,
        '-' => lhs - rhs,
        '*' => lhs * rhs,
        '/' | '%' if rhs == 0.0 => return Err(EvalError::DivisionByZero { position }),
        '/' => lhs / rhs,
        '%' => lhs % rhs,
        _ => lhs.powf(rhs),
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(EvalError::NotFinite {
            operator: op,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(expression: &str) -> f64 {
        match evaluate(expression) {
            Ok(value) => value,
            Err(error) => panic!("{expression:?} failed: {error}"),
        }
    }

    fn err(expression: &str) -> String {
        match evaluate(expression) {
            Ok(value) => panic!("{expression:?} evaluated to {value}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(ok("2+3*4"), 14.0);
        assert_eq!(ok("(2+3)*4"), 20.0);
        assert_eq!(ok("10-4-3"), 3.0);
        assert_eq!(ok("64/4/2"), 8.0);
        assert_eq!(ok("2^3^2"), 512.0);
        assert_eq!(ok("7 % 4 * 2"), 6.0);
    }

    #[test]
    fn unary_signs() {
        assert_eq!(ok("-3"), -3.0);
        assert_eq!(ok("--3"), 3.0);
        assert_eq!(ok("+3"), 3.0);
        assert_eq!(ok("-2^2"), -4.0);
        assert_eq!(ok("2^-1"), 0.5);
        assert_eq!(ok("4*-2"), -8.0);
        assert_eq!(ok("-(1+2)"), -3.0);
    }

    #[test]
    fn decimals_and_whitespace() {
        assert_eq!(ok("1.5 + .5"), 2.0);
        assert_eq!(ok("3."), 3.0);
        assert_eq!(ok(" \t( 1 +\n 2 ) "), 3.0);
        assert_eq!(ok("0.1 + 0.2"), 0.1 + 0.2);
        assert_eq!(ok("-7 % 3"), -1.0);
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(err("2+"), "unexpected end of expression at position 2");
        assert_eq!(err(""), "unexpected end of expression at position 0");
        assert_eq!(err("2 3"), "unexpected `3` at position 2");
        assert_eq!(err("2*)"), "unexpected `)` at position 2");
        assert_eq!(err("(1+2"), "the `(` at position 0 is never closed");
        assert_eq!(err("1+2)"), "unexpected `)` at position 3");
        assert_eq!(err("2(3)"), "unexpected `(` at position 1");
        assert_eq!(err("2 x 3"), "unexpected character 'x' at position 2");
        assert_eq!(err("1.2.3"), "invalid number `1.2.3` at position 0");
        assert_eq!(err(". + 1"), "invalid number `.` at position 0");
        assert_eq!(err("é+1"), "unexpected character 'é' at position 0");
        assert_eq!(err("é 2+"), "unexpected character 'é' at position 0");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(
            err("1 +\u{a0}"),
            "unexpected end of expression at position 4"
        );
    }

    #[test]
    fn division_by_zero_and_overflow_are_errors() {
        assert_eq!(err("1/0"), "division by zero at position 1");
        assert_eq!(err("5 % (2-2)"), "division by zero at position 2");
        assert_eq!(
            err("10^400"),
            "the result of `^` at position 2 is not a finite number"
        );
        assert_eq!(
            err("(-8)^0.5"),
            "the result of `^` at position 4 is not a finite number"
        );
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(ok(&nested(MAX_DEPTH)), 1.0);
        assert_eq!(
            err(&nested(MAX_DEPTH + 1)),
            format!(
                "expression nested too deeply at position {MAX_DEPTH} (at most {MAX_DEPTH} levels)"
            )
        );
        assert!(err(&nested(1000)).starts_with("expression nested too deeply"));
        assert!(err(&"-".repeat(1000)).starts_with("expression nested too deeply"));
        assert!(err(&"2^".repeat(1000)).starts_with("expression nested too deeply"));
    }
}
