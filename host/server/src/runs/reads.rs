//! What runs read from the store: a thread's history for its next run, an
//! ended run's events for `run.subscribe`, and threads for `thread.get` and
//! `threads.list`. Another user's thread or run reads as missing.

use super::*;

impl Runs {
    /// Messages of `user`'s thread, as `read` picks them from the store.
    /// Another user's thread is reported exactly like a missing one, so
    /// existence does not leak.
    pub(super) async fn owned_messages(
        &self,
        user: &str,
        thread_id: &str,
        read: impl FnOnce(&dyn Store, &str) -> Result<Vec<StoredMessage>, StoreError> + Send + 'static,
    ) -> Result<Vec<StoredMessage>, RunRefused> {
        let id = thread_id.to_string();
        let (owner, messages) = self
            .read(move |store| {
                let owner = store.thread_owner(&id)?;
                let messages = match owner {
                    Some(_) => read(store, &id)?,
                    None => Vec::new(),
                };
                Ok((owner, messages))
            })
            .await?;
        if owner.as_deref() != Some(user) {
            return Err(no_thread(thread_id));
        }
        Ok(messages)
    }

    /// The history of `user`'s thread for its next run: its latest messages,
    /// at most `history_messages` of them and `history_bytes` of content.
    pub(super) async fn history(
        &self,
        user: &str,
        thread_id: &str,
    ) -> Result<Vec<Message>, RunRefused> {
        let count = self.limits.history_messages;
        let mut messages = self
            .owned_messages(user, thread_id, move |store, id| {
                store.thread_tail(id, count)
            })
            .await?;
        let mut bytes = 0;
        let keep = messages
            .iter()
            .rev()
            .take_while(|m| {
                bytes += m.content.len();
                bytes <= self.limits.history_bytes
            })
            .count();
        let skip = messages.len() - keep;
        messages.drain(..skip);
        Ok(messages.into_iter().map(to_message).collect())
    }

    /// Sends the stored events of an ended run after `after_seq`, page by
    /// page, waiting for room in the outbox. Stops quietly if the session
    /// goes away; an error if the store fails part-way.
    pub async fn replay(
        &self,
        record: &RunRecord,
        after_seq: u64,
        outbox: &Outbox,
    ) -> Result<(), RunRefused> {
        const PAGE: usize = 256;
        let mut cursor = after_seq;
        while cursor < record.last_seq {
            let (id, after) = (record.id.clone(), cursor);
            let frames = self
                .read(move |store| store.events_after(&id, after, PAGE))
                .await?;
            if frames.is_empty() {
                break;
            }
            for frame in frames {
                if !outbox.send(frame.into()).await {
                    return Ok(());
                }
                cursor += 1;
            }
        }
        Ok(())
    }

    /// `user`'s thread: messages with seq > `after_seq`, at most `limit` and
    /// `max_bytes` of content (but at least one), and whether more follow.
    pub async fn thread(
        &self,
        user: &str,
        thread_id: &str,
        after_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<(Vec<StoredMessage>, bool), RunRefused> {
        let mut page = self
            .owned_messages(user, thread_id, move |store, id| {
                store.thread_page(id, after_seq, limit.saturating_add(1))
            })
            .await?;
        let mut bytes = 0;
        let fit = page
            .iter()
            .take(limit)
            .enumerate()
            .take_while(|(i, m)| {
                bytes += m.content.len();
                *i == 0 || bytes <= max_bytes
            })
            .count();
        let more = page.len() > fit;
        page.truncate(fit);
        Ok((page, more))
    }

    /// `user`'s threads, most recently active first.
    pub async fn threads(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<ThreadSummary>, RunRefused> {
        let user = user.to_string();
        self.read(move |store| store.list_threads(&user, limit))
            .await
    }
}

/// A thread's title: the start of its first message, on one line.
pub(super) fn title(input: &str) -> String {
    let line: String = input.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn to_message(message: StoredMessage) -> Message {
    let role = match message.role {
        netra_store::Role::System => Role::System,
        netra_store::Role::User => Role::User,
        netra_store::Role::Assistant => Role::Assistant,
        netra_store::Role::Tool => Role::Tool,
    };
    Message {
        role,
        content: message.content,
    }
}
