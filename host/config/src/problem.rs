//! What `netra config check` reports: every problem, with its key path and a hint.

use std::fmt;

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: a dotted key path (`server.listen`, `plugin.helper.limits.memory`),
    /// or the file when the problem is the file itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one pass; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} problem{} in the configuration:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Collects problems while a configuration is read.
#[derive(Default, Debug)]
pub(crate) struct Report(pub(crate) Vec<Problem>);

impl Report {
    pub(crate) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.to_string(),
            message: message.into(),
            hint: None,
        });
    }

    pub(crate) fn hint(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.0.push(Problem {
            path: path.to_string(),
            message: message.into(),
            hint: Some(hint.into()),
        });
    }
}
