//! `NETRA_*` environment overrides.
//!
//! `NETRA_SERVER__LISTEN=0.0.0.0:9000` sets `server.listen`: the name after
//! `NETRA_`, lowercased, with `__` between path segments. The value is read
//! as a TOML value when it is one (`8`, `true`, `["a", "b"]`) and as a string
//! otherwise. Variables without `__` (`NETRA_TOKEN`, `NETRA_CONFIG`) are not
//! overrides. Overrides land in the same table as the file, so an override
//! of an unknown key is reported like one in the file.

use toml::{Table, Value};

use crate::problem::Report;

const PREFIX: &str = "NETRA_";

/// Applies the overrides in `vars` to `table`.
pub(crate) fn apply(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
    report: &mut Report,
) {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX) && name.contains("__"))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            report.hint(
                &name,
                "not a valid override name",
                "write NETRA_SECTION__KEY, with `__` between the parts of the key path",
            );
            continue;
        }
        let value = parse_value(&raw);
        if let Err(conflict) = set(table, &path, value) {
            report.hint(
                &name,
                format!("cannot set {}: `{conflict}` is not a table", path.join(".")),
                "check the spelling of the variable",
            );
        }
    }
}

/// Applies `overrides` (dotted key path, value) to `table`, after the
/// environment: command-line flags.
pub(crate) fn apply_values(
    table: &mut Table,
    overrides: Vec<(String, Value)>,
    report: &mut Report,
) {
    for (key, value) in overrides {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        if let Err(conflict) = set(table, &path, value) {
            report.add(&key, format!("cannot set it: `{conflict}` is not a table"));
        }
    }
}

fn parse_value(raw: &str) -> Value {
    match format!("v = {raw}").parse::<Table>() {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    }
}

fn set(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(t) => t,
            _ => return Err(part.clone()),
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}
