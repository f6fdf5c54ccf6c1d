//! The published JSON Schema of the wire types (`docs/protocol.schema.json`):
//! every frame a test receives is checked against it.

use std::sync::OnceLock;

use serde_json::Value;

const SCHEMA: &str = include_str!("../../../docs/protocol.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
    })
}

/// What is wrong with `frame`, one line per violation; empty if it matches.
pub fn violations(frame: &Value) -> Vec<String> {
    validator()
        .iter_errors(frame)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Panics with every violation if `frame` does not match the schema.
pub fn check_frame(frame: &Value) {
    let errors = violations(frame);
    assert!(
        errors.is_empty(),
        "frame violates docs/protocol.schema.json: {frame}\n{}",
        errors.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_rejects_a_wrong_frame() {
        // The check must be able to fail: a run event without `seq`.
        let frame = serde_json::json!({
            "type": "agent_thinking", "run_id": "run_0195f0a0b0c0d0e0f000000000000000",
            "thread_id": "thr_0195f0a0b0c0d0e0f000000000000000", "ts": "2026-11-25T01:02:03.456Z",
            "text": "hm"
        });
        assert!(!violations(&frame).is_empty());
    }
}
