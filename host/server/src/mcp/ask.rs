//! A tool's questions (`interaction`) as requests to the MCP client that
//! called it, on the stream of the call that asks: `ask` is
//! `elicitation/create` (the client's user answers a form), `sample` is
//! `sampling/createMessage` (the client's model writes).
//!
//! An elicitation form is an object of primitive properties, so a question
//! whose schema is one primitive is asked as a form of one property,
//! `value`, and free text (no schema) as one string property, `answer`; the
//! plugin gets the bare value back. Every accepted answer is checked against
//! the plugin's schema before the plugin sees it.

use std::sync::Arc;

use netra_runtime::{AskError, AskFuture, Interaction, Question, Role, SampleRequest};
use rmcp::model::{
    ClientResult, CreateMessageRequest, CreateMessageRequestParams, ElicitRequest,
    ElicitRequestParams, ElicitationAction, ElicitationSchema, GetExtensions, RequestId,
    SamplingMessage, ServerRequest,
};
use rmcp::service::{OriginatingRequestId, Peer, RequestContext, RoleServer, ServiceError};
use serde_json::{Value, json};

/// Asks the client of one call.
pub(super) struct ClientAsk {
    peer: Peer<RoleServer>,
    /// The call's request: the client's answers come back on its stream.
    origin: RequestId,
}

impl ClientAsk {
    /// Asks the client of the call `cx`.
    pub(super) fn new(cx: &RequestContext<RoleServer>) -> Arc<Self> {
        Arc::new(Self {
            peer: cx.peer.clone(),
            origin: cx.id.clone(),
        })
    }

    /// Sends `request` to the client on the call's stream.
    async fn send(&self, mut request: ServerRequest) -> Result<ClientResult, AskError> {
        request
            .extensions_mut()
            .insert(OriginatingRequestId(self.origin.clone()));
        self.peer
            .send_request(request)
            .await
            .map_err(|err| match err {
                ServiceError::McpError(err) => {
                    AskError::Failed(format!("the client answered: {}", err.message))
                }
                ServiceError::Cancelled { .. } => AskError::Cancelled,
                ServiceError::Timeout { .. } => AskError::Timeout,
                other => AskError::Failed(format!("cannot reach the client: {other}")),
            })
    }

    /// The capabilities the client declared, if it declared any.
    fn capabilities(&self) -> Option<rmcp::model::ClientCapabilities> {
        self.peer.peer_info().map(|info| info.capabilities.clone())
    }
}

impl Interaction for ClientAsk {
    fn ask(self: Arc<Self>, question: Question) -> AskFuture<Value> {
        Box::pin(async move {
            if self.capabilities().and_then(|c| c.elicitation).is_none() {
                return Err(AskError::Unsupported(
                    "the MCP client did not declare the elicitation capability".into(),
                ));
            }
            let form = Form::of(question.schema)?;
            let requested_schema = serde_json::from_value::<ElicitationSchema>(form.schema.clone())
                .map_err(|err| {
                    AskError::Invalid(format!(
                        "MCP elicitation cannot show this schema (it takes an object of string, \
                         number, integer, boolean and enum properties): {err}"
                    ))
                })?;
            let params = ElicitRequestParams::FormElicitationParams {
                meta: None,
                message: question.prompt,
                requested_schema,
            };
            let answer = self
                .send(ServerRequest::ElicitRequest(ElicitRequest::new(params)))
                .await?;
            let ClientResult::ElicitResult(answer) = answer else {
                return Err(AskError::Failed(
                    "the client answered an elicitation with something else".into(),
                ));
            };
            match answer.action {
                ElicitationAction::Accept => {
                    form.answer(answer.content.unwrap_or_else(|| json!({})))
                }
                ElicitationAction::Decline => Err(AskError::Declined),
                // Cancel, and whatever later revisions add.
                _ => Err(AskError::Cancelled),
            }
        })
    }

    fn sample(self: Arc<Self>, request: SampleRequest) -> AskFuture<String> {
        Box::pin(async move {
            if self.capabilities().and_then(|c| c.sampling).is_none() {
                return Err(AskError::Unsupported(
                    "the MCP client did not declare the sampling capability".into(),
                ));
            }
            let mut system = Vec::new();
            let mut messages = Vec::new();
            for message in request.messages {
                match message.role {
                    Role::System => system.push(message.content),
                    Role::Assistant => {
                        messages.push(SamplingMessage::assistant_text(message.content))
                    }
                    Role::User | Role::Tool => {
                        messages.push(SamplingMessage::user_text(message.content));
                    }
                }
            }
            if messages.is_empty() {
                return Err(AskError::Invalid(
                    "there is no user or assistant message to continue".into(),
                ));
            }
            let mut params = CreateMessageRequestParams::new(messages, request.max_tokens);
            if !system.is_empty() {
                params.system_prompt = Some(system.join("\n\n"));
            }
            let answer = self
                .send(ServerRequest::CreateMessageRequest(
                    CreateMessageRequest::new(params),
                ))
                .await?;
            let ClientResult::CreateMessageResult(answer) = answer else {
                return Err(AskError::Failed(
                    "the client answered a sampling request with something else".into(),
                ));
            };
            let text: Vec<&str> = answer
                .message
                .content
                .iter()
                .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
                .collect();
            if text.is_empty() {
                return Err(AskError::Failed(
                    "the client's model answered without text".into(),
                ));
            }
            Ok(text.concat())
        })
    }
}

/// A question's schema as an elicitation form, and how to read its answer.
#[derive(Debug)]
struct Form {
    /// What the client is sent: always an object.
    schema: Value,
    /// The property the answer is in, when the plugin's schema is not an
    /// object (`value`) or there is none (`answer`).
    field: Option<&'static str>,
    /// What the plugin asked for, which the answer must match.
    wanted: Value,
}

impl Form {
    fn of(schema: Option<Value>) -> Result<Self, AskError> {
        match schema {
            None => {
                let wanted = json!({"type": "string"});
                Ok(Self::wrapped("answer", wanted))
            }
            Some(schema @ Value::Object(_))
                if schema.get("type").and_then(Value::as_str) == Some("object") =>
            {
                Ok(Self {
                    schema: schema.clone(),
                    field: None,
                    wanted: schema,
                })
            }
            Some(schema @ Value::Object(_)) => Ok(Self::wrapped("value", schema)),
            Some(_) => Err(AskError::Invalid(
                "the schema is not a JSON Schema object".into(),
            )),
        }
    }

    fn wrapped(field: &'static str, wanted: Value) -> Self {
        Self {
            schema: json!({
                "type": "object",
                "properties": { field: wanted },
                "required": [field],
            }),
            field: Some(field),
            wanted,
        }
    }

    /// The plugin's answer from the client's `content`, if it matches.
    fn answer(&self, content: Value) -> Result<Value, AskError> {
        let value = match self.field {
            Some(field) => content.get(field).cloned().unwrap_or(Value::Null),
            None => content,
        };
        let validator = jsonschema::validator_for(&self.wanted)
            .map_err(|err| AskError::Invalid(format!("the schema is not valid: {err}")))?;
        validator.validate(&value).map_err(|err| {
            AskError::Failed(format!(
                "the client's answer does not match the schema: {err}"
            ))
        })?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_wrap_primitives_and_check_answers() {
        let Ok(text) = Form::of(None) else {
            panic!("free text is a form");
        };
        assert_eq!(text.schema["properties"]["answer"]["type"], "string");
        assert_eq!(
            text.answer(json!({"answer": "yes"})).ok(),
            Some(json!("yes"))
        );
        assert!(matches!(
            text.answer(json!({"answer": 3})),
            Err(AskError::Failed(_))
        ));

        let Ok(choice) = Form::of(Some(json!({"type": "string", "enum": ["a", "b"]}))) else {
            panic!("an enum is a form");
        };
        assert_eq!(choice.schema["required"], json!(["value"]));
        assert_eq!(choice.answer(json!({"value": "b"})).ok(), Some(json!("b")));
        assert!(choice.answer(json!({"value": "c"})).is_err());

        let object = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        });
        let Ok(form) = Form::of(Some(object.clone())) else {
            panic!("an object is a form");
        };
        assert_eq!(form.schema, object);
        assert_eq!(
            form.answer(json!({"name": "Ada"})).ok(),
            Some(json!({"name": "Ada"}))
        );
        assert!(form.answer(json!({})).is_err());

        assert!(matches!(
            Form::of(Some(json!(true))),
            Err(AskError::Invalid(_))
        ));
    }
}
