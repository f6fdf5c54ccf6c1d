//! What one run or call may spend of what the host shares: events, bytes,
//! tool calls, nested runs, guest log output, kv space. Read from
//! `[limits.agent]`, `[limits.tool]`, `[plugin.NAME.limits]` and a manifest's
//! `[limits]`, next to `memory`, `deadline` and `fuel`.

use crate::problem::Report;
use crate::read::Section;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;

/// Declares every budget once: its key, how it is written, its default and
/// its range. The structs, defaults, merging and reading follow from it.
macro_rules! budgets {
    ($( $(#[$doc:meta])* $key:ident: $kind:ident = $default:expr, $min:expr, $max:expr; )*) => {
        /// Every budget, resolved.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Budgets {
            $( $(#[$doc])* pub $key: u64, )*
        }

        impl Default for Budgets {
            fn default() -> Self {
                Self { $( $key: $default, )* }
            }
        }

        impl Budgets {
            /// Every budget set to its value here.
            pub fn fixed(&self) -> BudgetOverrides {
                BudgetOverrides { $( $key: Some(self.$key), )* }
            }
        }

        /// Budgets set in one section; unset ones come from elsewhere.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct BudgetOverrides {
            $( #[doc = concat!("`", stringify!($key), "`.")] pub $key: Option<u64>, )*
        }

        impl BudgetOverrides {
            /// These overrides over `defaults`.
            pub fn over(&self, defaults: Budgets) -> Budgets {
                Budgets { $( $key: self.$key.unwrap_or(defaults.$key), )* }
            }

            /// `granted`, lowered wherever these (asked for) are tighter.
            pub fn tighter(&self, granted: Budgets) -> Budgets {
                Budgets { $( $key: self.$key.map_or(granted.$key, |a| a.min(granted.$key)), )* }
            }

            pub(crate) fn read(s: &Section<'_>, report: &mut Report) -> Self {
                Self { $( $key: budgets!(@read $kind, s, stringify!($key), $min, $max, report), )* }
            }
        }
    };
    (@read count, $s:expr, $key:expr, $min:expr, $max:expr, $report:expr) => {
        $s.integer($key, $min, $max, $report)
    };
    (@read bytes, $s:expr, $key:expr, $min:expr, $max:expr, $report:expr) => {
        $s.bytes($key, $min, $max, $report)
    };
    (@read millis, $s:expr, $key:expr, $min:expr, $max:expr, $report:expr) => {
        $s.duration(
            $key,
            std::time::Duration::from_millis($min),
            std::time::Duration::from_millis($max),
            $report,
        )
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
}

budgets! {
    /// Events one run may emit besides its start and end (agents); a run
    /// over it ends with `budget_events`.
    max_events: count = 10_000, 1, 10_000_000;
    /// Bytes one run's events take in the store (agents): their frames and
    /// what the store spends on them (SQLite spills a long frame to whole
    /// overflow pages); `budget_event_bytes`.
    max_event_bytes: bytes = 16 * MIB, 4 * KIB, 4096 * MIB;
    /// Tool calls one run may make (agents); `budget_tool_calls`.
    max_tool_calls: count = 500, 1, 1_000_000;
    /// Bytes of one tool call's JSON arguments (agents); the call fails with
    /// `arguments_too_large`.
    max_tool_arguments_bytes: bytes = 256 * KIB, 64, 64 * MIB;
    /// Bytes of one tool result (tools); the call fails with `result_too_large`.
    max_result_bytes: bytes = MIB, 64, 64 * MIB;
    /// Bytes of a run's final answer (agents); `budget_answer_bytes`.
    max_answer_bytes: bytes = MIB, 64, 64 * MIB;
    /// Agents one run may start as tools (agents); `budget_nested_runs`.
    max_nested_runs: count = 16, 0, 10_000;
    /// Lines of guest stdout/stderr one run or call may log per second; the
    /// excess is dropped and counted in one summary line.
    log_lines_per_second: count = 100, 1, 1_000_000;
    /// Bytes of guest stdout/stderr one run or call may log per second.
    log_bytes_per_second: bytes = 64 * KIB, 64, 1024 * MIB;
    /// Keys one user may keep in one plugin's kv; `set` of a new key over it
    /// answers `too-large`.
    kv_max_keys: count = 10_000, 1, 100_000_000;
    /// Bytes (keys plus values) one user may keep in one plugin's kv.
    kv_max_bytes: bytes = 64 * MIB, KIB, 1024 * 1024 * MIB;
    /// Progress reports (`tool_progress` events) one tool call of a run may
    /// send per second, in a burst of as many (agents); the excess is
    /// dropped. Each one sent counts in `max_events`.
    tool_progress_per_second: count = 10, 1, 10_000;
    /// How long one question of a plugin (`interaction.ask`, `sample`) may
    /// wait for its answer, in milliseconds, written as a duration ("10m").
    /// The call's deadline stands still while it waits; past this the
    /// plugin gets `timeout`.
    ask_wait: millis = 10 * MINUTE, SECOND, 7 * 24 * 60 * MINUTE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighter_keeps_the_lower_of_asked_and_granted() {
        let granted = Budgets::default();
        let asked = BudgetOverrides {
            max_events: Some(10),
            max_tool_calls: Some(granted.max_tool_calls + 1),
            ..BudgetOverrides::default()
        };
        let got = asked.tighter(granted);
        assert_eq!(got.max_events, 10);
        assert_eq!(got.max_tool_calls, granted.max_tool_calls);
        assert_eq!(got.max_answer_bytes, granted.max_answer_bytes);
    }
}
