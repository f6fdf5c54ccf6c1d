//! Parsing the `timezone` argument of `now`.

use jiff::tz::{Offset, TimeZone};

/// A time zone as the caller named it.
#[derive(Debug, Clone)]
pub struct Zone {
    time_zone: TimeZone,
    /// The name echoed back: `UTC`, a normalised `±HH:MM`, or the IANA name.
    name: String,
}

impl Zone {
    /// Parses `UTC` (any case, or `Z`), a fixed offset `±HH:MM`, `±HHMM` or
    /// `±HH`, or an IANA time zone name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Self {
                time_zone: TimeZone::UTC,
                name: "UTC".to_owned(),
            });
        }
        if text.starts_with(['+', '-']) {
            let seconds = parse_offset(text).ok_or_else(|| {
                format!(
                    "invalid UTC offset `{text}`: expected `+HH:MM` or `-HH:MM`, such as `+05:30`"
                )
            })?;
            let offset = Offset::from_seconds(seconds)
                .map_err(|error| format!("invalid UTC offset `{text}`: {error}"))?;
            return Ok(Self {
                time_zone: TimeZone::fixed(offset),
                name: format_offset(seconds),
            });
        }
        let time_zone = TimeZone::get(text).map_err(|_| {
            format!(
                "unknown time zone `{text}`: use `UTC`, an offset such as `+05:30`, \
                 or an IANA name such as `Europe/Berlin`"
            )
        })?;
        let name = time_zone.iana_name().unwrap_or(text).to_owned();
        Ok(Self { time_zone, name })
    }

    /// The jiff time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The name to report.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Parses `±HH:MM`, `±HHMM` or `±HH` into seconds east of UTC; hours up to 23.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let (hours, minutes) = match rest.len() {
        2 => (rest, "00"),
        4 => rest.split_at_checked(2)?,
        5 if rest.as_bytes()[2] == b':' => (rest.get(..2)?, rest.get(3..)?),
        _ => return None,
    };
    // `str::parse` alone would also accept a sign, as in `+-5:00`.
    let number = |digits: &str| -> Option<i32> {
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let (hours, minutes) = (number(hours)?, number(minutes)?);
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
}

/// Formats seconds east of UTC as `±HH:MM`.
fn format_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_in_any_spelling() {
        for text in ["UTC", "utc", "Utc", "Z", " UTC "] {
            assert_eq!(Zone::parse(text).map(|z| z.name), Ok("UTC".to_owned()));
        }
    }

    #[test]
    fn offsets_in_three_forms() {
        assert_eq!(parse_offset("+05:30"), Some(19_800));
        assert_eq!(parse_offset("+0530"), Some(19_800));
        assert_eq!(parse_offset("-08"), Some(-28_800));
        assert_eq!(parse_offset("-00:00"), Some(0));
        assert_eq!(
            Zone::parse("+0530").map(|z| z.name),
            Ok("+05:30".to_owned())
        );
        assert_eq!(Zone::parse("-08").map(|z| z.name), Ok("-08:00".to_owned()));
    }

    #[test]
    fn malformed_offsets_are_rejected() {
        for text in [
            "+5:30",
            "+05:3",
            "+24:00",
            "+05:60",
            "+05-30",
            "+",
            "-x1:00",
            "+05:30:00",
            "+٠٥:٣٠",
        ] {
            assert_eq!(parse_offset(text), None, "{text}");
            assert!(Zone::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn iana_names_come_from_the_bundled_database() {
        assert_eq!(
            Zone::parse("America/New_York").map(|z| z.name),
            Ok("America/New_York".to_owned())
        );
        let error = Zone::parse("Mars/Olympus_Mons").map(|z| z.name);
        assert!(error.is_err_and(|e| e.starts_with("unknown time zone `Mars/Olympus_Mons`")));
    }
}
