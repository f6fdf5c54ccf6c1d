//! Every id netra hands out: UUID v7 (time-ordered) behind a short readable
//! prefix, generated in this one place.

/// A new run id, `run_<uuid>`.
pub fn run_id() -> String {
    with_prefix("run")
}

/// A new thread id, `thr_<uuid>`.
pub fn thread_id() -> String {
    with_prefix("thr")
}

/// A new tool-call id, `call_<uuid>`.
pub fn tool_call_id() -> String {
    with_prefix("call")
}

/// A new question id (`input_requested`), `req_<uuid>`.
pub fn request_id() -> String {
    with_prefix("req")
}

fn with_prefix(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() {
        let a = super::run_id();
        let b = super::run_id();
        assert!(a.starts_with("run_") && a.len() == 36, "{a}");
        assert_ne!(a, b);
        assert!(a < b, "v7 ids sort by creation time");
        assert!(super::thread_id().starts_with("thr_"));
        assert!(super::tool_call_id().starts_with("call_"));
    }
}
