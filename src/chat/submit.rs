//! Submitting a command from chat and explaining a refusal: the same for every platform.
//! A refusal (unknown command, not allowed, wrong arguments, not an approver...) changed
//! nothing and is told to the person alone; only a store failure is the platform adapter's
//! to report as an error (so the platform may retry).

use std::sync::Arc;

use crate::{
    app::{App, AppError, Invocation, Submitted},
    store::StoreError,
};

/// What came of a submission.
#[derive(Debug)]
pub enum Submission {
    Stored(Box<Submitted>),
    /// The reply for the person: why nothing was done.
    Refused(String),
}

pub async fn submit(app: &Arc<App>, inv: Invocation) -> Result<Submission, StoreError> {
    match app.submit(inv).await {
        Ok(s) => Ok(Submission::Stored(Box::new(s))),
        Err(e) => explain(e).map(Submission::Refused),
    }
}

/// The person's reply for a refusal; a store failure stays an error.
pub fn explain(e: AppError) -> Result<String, StoreError> {
    match e {
        AppError::Store(e) => Err(e),
        other => Ok(other.to_string()),
    }
}
