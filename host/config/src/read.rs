//! Reading raw values out of a TOML table without stopping at the first
//! mistake: every getter records a problem (with the key path) and returns
//! `None`, and [`Section::finish`] reports the keys nobody asked for.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use toml::{Table, Value};

use crate::problem::Report;

/// One table of the file (or an absent one), with its dotted path.
pub(crate) struct Section<'t> {
    path: String,
    table: Option<&'t Table>,
    read: RefCell<BTreeSet<String>>,
}

impl<'t> Section<'t> {
    pub(crate) fn root(table: &'t Table) -> Self {
        Self {
            path: String::new(),
            table: Some(table),
            read: RefCell::default(),
        }
    }

    /// The key's full path.
    pub(crate) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn value(&self, key: &str) -> Option<&'t Value> {
        self.read.borrow_mut().insert(key.to_string());
        self.table.and_then(|t| t.get(key))
    }

    fn wrong_type(&self, key: &str, want: &str, got: &Value, report: &mut Report) {
        report.hint(
            &self.key_path(key),
            format!("expected {want}, found {}", kind(got)),
            format!("write it as {}", example(want)),
        );
    }

    /// A sub-table (absent is fine: every key in it is then at its default).
    pub(crate) fn table(&self, key: &str, report: &mut Report) -> Section<'t> {
        let table = match self.value(key) {
            None => None,
            Some(Value::Table(table)) => Some(table),
            Some(other) => {
                self.wrong_type(key, "a table", other, report);
                None
            }
        };
        Section {
            path: self.key_path(key),
            table,
            read: RefCell::default(),
        }
    }

    /// The keys of a table of tables (`[plugin.NAME]`), in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.table
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn string(&self, key: &str, report: &mut Report) -> Option<String> {
        match self.value(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(key, "a string", other, report);
                None
            }
        }
    }

    pub(crate) fn bool(&self, key: &str, report: &mut Report) -> Option<bool> {
        match self.value(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(key, "true or false", other, report);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub(crate) fn integer(
        &self,
        key: &str,
        min: u64,
        max: u64,
        report: &mut Report,
    ) -> Option<u64> {
        match self.value(key)? {
            Value::Integer(n) => match u64::try_from(*n) {
                Ok(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    report.hint(
                        &self.key_path(key),
                        format!("{n} is out of range"),
                        format!("use a value from {min} to {max}"),
                    );
                    None
                }
            },
            other => {
                self.wrong_type(key, "an integer", other, report);
                None
            }
        }
    }

    /// A duration written as `"30s"`, `"10m"`, `"1h 30m"`, in `min..=max`.
    pub(crate) fn duration(
        &self,
        key: &str,
        min: Duration,
        max: Duration,
        report: &mut Report,
    ) -> Option<Duration> {
        let text = self.string(key, report)?;
        match humantime::parse_duration(&text) {
            Ok(d) if d >= min && d <= max => Some(d),
            Ok(_) => {
                report.hint(
                    &self.key_path(key),
                    format!("{text:?} is out of range"),
                    format!(
                        "use a duration from {} to {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                );
                None
            }
            Err(err) => {
                report.hint(
                    &self.key_path(key),
                    format!("{text:?} is not a duration: {err}"),
                    "write it like \"500ms\", \"30s\", \"10m\" or \"7d\"",
                );
                None
            }
        }
    }

    /// A size in bytes, written as an integer or as `"64MiB"`, `"512KiB"`, `"1GiB"`.
    pub(crate) fn bytes(&self, key: &str, min: u64, max: u64, report: &mut Report) -> Option<u64> {
        let n = match self.value(key)? {
            Value::Integer(n) => u64::try_from(*n).ok(),
            Value::String(s) => parse_size(s),
            other => {
                self.wrong_type(key, "a size", other, report);
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                report.hint(
                    &self.key_path(key),
                    format!("{} is out of range", show_size(n)),
                    format!("use a size from {} to {}", show_size(min), show_size(max)),
                );
                None
            }
            None => {
                report.hint(
                    &self.key_path(key),
                    "not a size",
                    "write it as bytes (65536) or with a unit: \"64KiB\", \"32MiB\", \"1GiB\"",
                );
                None
            }
        }
    }

    pub(crate) fn strings(&self, key: &str, report: &mut Report) -> Option<Vec<String>> {
        match self.value(key)? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => report.hint(
                            &format!("{}[{i}]", self.key_path(key)),
                            format!("expected a string, found {}", kind(other)),
                            "write it in double quotes",
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.wrong_type(key, "a list of strings", other, report);
                None
            }
        }
    }

    /// The raw value, for keys whose shape is checked by the caller.
    pub(crate) fn raw(&self, key: &str) -> Option<&'t Value> {
        self.value(key)
    }

    /// Reports every key of the table nobody read, with the closest known key.
    pub(crate) fn finish(&self, report: &mut Report) {
        let Some(table) = self.table else { return };
        let read = self.read.borrow();
        for key in table.keys().filter(|k| !read.contains(*k)) {
            let closest = read
                .iter()
                .map(|known| (strsim::jaro_winkler(key, known), known))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            match closest {
                Some((_, known)) => {
                    report.hint(&path, "unknown key", format!("did you mean `{known}`?"))
                }
                None => {
                    let known: Vec<&str> = read.iter().map(String::as_str).collect();
                    report.hint(
                        &path,
                        "unknown key",
                        format!("known keys here: {}", known.join(", ")),
                    )
                }
            }
        }
    }
}

/// `"64MiB"` -> 67108864. Binary units (KiB, MiB, GiB) and plain bytes (B).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// 67108864 -> "64MiB".
pub(crate) fn show_size(n: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= scale && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    format!("{n}B")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

fn example(want: &str) -> &'static str {
    match want {
        "a string" => "\"text\" (in double quotes)",
        "an integer" => "a whole number without quotes, e.g. 8",
        "true or false" => "true or false, without quotes",
        "a table" => "a [section] or { key = value }",
        "a size" => "65536 or \"64KiB\"",
        _ => "[\"one\", \"two\"]",
    }
}
