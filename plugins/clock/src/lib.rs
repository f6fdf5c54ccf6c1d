//! The `now` tool: the current date and time in UTC, a fixed offset or an IANA
//! time zone.
//!
//! The time zone database is compiled into the component, so zone names work
//! without any filesystem access.

mod zone;

use jiff::Timestamp;
use netra_sdk::{Context, Tool, ToolError, schema_of};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `now`.
#[derive(Deserialize, JsonSchema)]
struct Args {
    /// `UTC` (the default), a fixed offset such as `+05:30` or `-08:00`, or an
    /// IANA time zone name such as `Europe/Berlin`.
    #[serde(default)]
    timezone: Option<String>,
}

/// The current time, as `now` returns it.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
struct Now {
    /// The local date and time with its offset, e.g. `2025-03-01T13:45:07+01:00`.
    iso8601: String,
    /// Seconds since 1970-01-01T00:00:00Z.
    unix_seconds: i64,
    /// The time zone the time is given in: `UTC`, an offset or an IANA name.
    timezone: String,
    /// The zone's offset from UTC at this instant, e.g. `+01:00`.
    utc_offset: String,
}

struct CurrentTime;

impl Tool for CurrentTime {
    const NAME: &'static str = "now";
    const DESCRIPTION: &'static str = "Returns the current date and time in UTC, a fixed UTC \
         offset, or an IANA time zone such as Europe/Berlin.";
    type Args = Args;
    type Output = Now;

    fn call(_ctx: &Context, args: Args) -> Result<Now, ToolError> {
        let zone = zone::Zone::parse(args.timezone.as_deref().unwrap_or("UTC"))
            .map_err(ToolError::invalid)?;
        at(Timestamp::now(), &zone).map_err(ToolError::failed)
    }

    fn output_schema() -> Option<String> {
        Some(schema_of::<Now>())
    }
}

netra_sdk::export_tools!(CurrentTime);

/// Describes the instant `timestamp` in `zone`.
fn at(timestamp: Timestamp, zone: &zone::Zone) -> Result<Now, String> {
    let local = timestamp.to_zoned_datetime(zone.time_zone().clone());
    let format = |pattern: &str| {
        jiff::fmt::strtime::format(pattern, &local)
            .map_err(|error| format!("could not format the time: {error}"))
    };
    Ok(Now {
        iso8601: format("%Y-%m-%dT%H:%M:%S%:z")?,
        unix_seconds: timestamp.as_second(),
        timezone: zone.name().to_owned(),
        utc_offset: format("%:z")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_str(timestamp: &str, zone: &str) -> Now {
        let timestamp: Timestamp = timestamp.parse().expect("a valid timestamp");
        let zone = zone::Zone::parse(zone).expect("a known zone");
        at(timestamp, &zone).expect("formats")
    }

    #[test]
    fn utc_is_the_default_and_has_offset_zero() {
        let args: Args = netra_sdk::serde_json::from_str("{}").expect("parses");
        assert_eq!(args.timezone, None);
        assert_eq!(
            at_str("2025-01-15T12:00:00Z", "UTC"),
            Now {
                iso8601: "2025-01-15T12:00:00+00:00".into(),
                unix_seconds: 1_736_942_400,
                timezone: "UTC".into(),
                utc_offset: "+00:00".into(),
            }
        );
    }

    #[test]
    fn iana_zones_follow_daylight_saving() {
        let winter = at_str("2025-01-15T12:00:00Z", "Europe/Berlin");
        assert_eq!(winter.iso8601, "2025-01-15T13:00:00+01:00");
        assert_eq!(winter.utc_offset, "+01:00");
        assert_eq!(winter.timezone, "Europe/Berlin");
        let summer = at_str("2025-07-15T12:00:00Z", "Europe/Berlin");
        assert_eq!(summer.utc_offset, "+02:00");
    }

    #[test]
    fn fixed_offsets_shift_the_local_time() {
        let india = at_str("2025-01-15T12:00:00Z", "+05:30");
        assert_eq!(india.iso8601, "2025-01-15T17:30:00+05:30");
        assert_eq!(india.timezone, "+05:30");
        let pacific = at_str("2025-01-15T12:00:00Z", "-08:00");
        assert_eq!(pacific.iso8601, "2025-01-15T04:00:00-08:00");
        assert_eq!(pacific.unix_seconds, 1_736_942_400);
    }
}
