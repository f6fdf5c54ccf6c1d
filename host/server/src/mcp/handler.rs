//! The MCP server handler: who the caller is, what they may list and call,
//! and the logging level of their session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use netra_auth::Principal;
use rmcp::ErrorData;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, LoggingLevel,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, SetLevelRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer};

use super::{Kind, Mcp};

/// Serves one MCP session (or, statelessly, one request). Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    mcp: Arc<Mcp>,
    /// The user of every call (stdio); `None` takes it from the request's
    /// token (HTTP).
    local_user: Option<Arc<str>>,
    /// The session's lowest level of log notifications; [`LOG_OFF`] until
    /// the client sets one.
    log_level: Arc<AtomicU8>,
}

/// No log notifications.
pub(super) const LOG_OFF: u8 = u8::MAX;

impl Handler {
    /// A handler for HTTP requests: the user comes from each request's token.
    pub fn http(mcp: Arc<Mcp>) -> Self {
        Self {
            mcp,
            local_user: None,
            log_level: Arc::new(AtomicU8::new(LOG_OFF)),
        }
    }

    /// A handler whose every call is made for `user` (stdio).
    pub fn local(mcp: Arc<Mcp>, user: &str) -> Self {
        Self {
            local_user: Some(Arc::from(user)),
            ..Self::http(mcp)
        }
    }

    /// The user a request is made for.
    fn user(&self, cx: &RequestContext<RoleServer>) -> Result<String, ErrorData> {
        if let Some(user) = &self.local_user {
            return Ok(user.to_string());
        }
        cx.extensions
            .get::<hyper::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .map(|p| p.user_id.clone())
            // The HTTP layer authenticates before the SDK sees a request.
            .ok_or_else(|| ErrorData::internal_error("the request carries no user", None))
    }

    /// Notifications one call may send.
    pub(super) fn max_notifications(&self) -> u64 {
        self.mcp.settings.max_notifications_per_call
    }

    /// The session's log level, as a rank (see [`rank`]).
    pub(super) fn log_level(&self) -> u8 {
        self.log_level.load(Ordering::Relaxed)
    }
}

/// Orders MCP log levels, debug lowest.
pub(super) fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_logging()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("netra", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools and agents served by netra: each call runs in a fresh, sandboxed \
                 WebAssembly instance for the caller.",
            )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.user(&cx)?;
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        let registry = self.mcp.runs.registry();
        let (tools, next) = self
            .mcp
            .page(&registry, cursor)
            .map_err(|message| ErrorData::invalid_params(message, None))?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let user = self.user(&cx)?;
        let registry = self.mcp.runs.registry();
        let name = request.name.as_ref();
        match self.mcp.kind(&registry, name) {
            Some(Kind::Tool) => {
                let Some(entry) = registry.tool(name).cloned() else {
                    return Err(unknown_tool(name));
                };
                drop(registry);
                let result = super::call::call(self, &user, &entry, request, &cx).await?;
                Ok(result.into())
            }
            Some(Kind::Agent) => {
                drop(registry);
                let result = super::agent::run(self, &self.mcp.runs, &user, request, &cx).await?;
                Ok(result.into())
            }
            None if registry.tool(name).is_some() || registry.agent(name).is_some() => {
                Err(ErrorData::invalid_params(
                    format!("{name:?} is not granted to MCP clients (mcp.tools, mcp.agents)"),
                    None,
                ))
            }
            None => Err(unknown_tool(name)),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.user(&cx)?;
        self.log_level.store(rank(request.level), Ordering::Relaxed);
        // Its calls now send log notifications: not for the direct path.
        if let Some(session) = cx
            .extensions
            .get::<hyper::http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
        {
            crate::lock(&self.mcp.logging).insert(session.to_string());
        }
        Ok(())
    }

    async fn on_initialized(&self, cx: NotificationContext<RoleServer>) {
        self.mcp.add_peer(cx.peer);
    }
}

fn unknown_tool(name: &str) -> ErrorData {
    ErrorData::invalid_params(format!("no tool named {name:?}"), None)
}
