//! Rows as read back into records: a malformed value is `StoreError::Corrupt`, never a panic.

use std::str::FromStr;

use sqlx::{Row, any::AnyRow};

use super::{Event, EventKind, RequestRecord, StoreError};
use crate::{
    commands::ApprovalPolicy,
    domain::{RequestId, State, Surface},
    events::EventData,
};

pub(super) fn events_from_rows(id: &RequestId, rows: &[AnyRow]) -> Result<Vec<Event>, StoreError> {
    rows.iter().map(|r| event_from_row(id, r)).collect()
}

pub(super) fn event_from_row(id: &RequestId, r: &AnyRow) -> Result<Event, StoreError> {
    let kind: String = r.try_get("kind")?;
    let data: Option<String> = r.try_get("data")?;
    let kind = EventKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("event kind '{kind}'")))?;
    let message: String = r.try_get("message")?;
    Ok(Event {
        request_id: id.clone(),
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        kind,
        data: EventData::load(kind, &message, data.as_deref()),
        message,
    })
}

pub(super) fn request_from_row(r: &AnyRow) -> Result<RequestRecord, StoreError> {
    let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("{what} '{v}'"));
    let id: String = r.try_get("id")?;
    let state: String = r.try_get("state")?;
    let surface: String = r.try_get("surface")?;
    let args: String = r.try_get("args")?;
    let approval: Option<String> = r.try_get("approval")?;
    Ok(RequestRecord {
        id: RequestId::parse(&id).ok_or_else(|| corrupt("request id", &id))?,
        command: r.try_get("command")?,
        action: r.try_get("action")?,
        text: r.try_get("text")?,
        args: serde_json::from_str(&args).map_err(|_| corrupt("args", &args))?,
        state: State::from_str(&state).map_err(|_| corrupt("state", &state))?,
        requester: r.try_get("requester")?,
        surface: Surface::from_str(&surface).map_err(|_| corrupt("surface", &surface))?,
        channel: r.try_get("channel")?,
        thread: r.try_get("thread")?,
        requester_groups: r
            .try_get::<Option<String>, _>("requester_groups")?
            .and_then(|g| serde_json::from_str(&g).ok())
            .unwrap_or_default(),
        surface_data: r
            .try_get::<Option<String>, _>("surface_data")?
            .and_then(|d| serde_json::from_str(&d).ok()),
        approval: approval
            .map(|a| serde_json::from_str::<ApprovalPolicy>(&a).map_err(|_| corrupt("approval", &a)))
            .transpose()?,
        approval_expires_at: r.try_get("approval_expires_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        worker: r.try_get("worker")?,
        lease_until: r.try_get("lease_until")?,
        attempts: r.try_get("attempts")?,
        outcome: r.try_get("outcome")?,
    })
}
