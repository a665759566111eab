//! Actions: what a command does once it is allowed, approved and claimed. New actions plug
//! in through the registry; the router and the store never learn their names.

mod app;
mod builtin;
mod env;
mod env_clusters;
mod env_create;
mod env_names;
mod exec;
mod loadtest;
mod proxy;
mod service;
mod service_bind;
mod service_list;
mod service_provision;
mod shell;

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::Arc,
};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use env::reap;

/// Every action this build has.
pub fn register_all(registry: &mut ActionRegistry) {
    builtin::register_builtin(registry);
    env::register(registry);
    app::register(registry);
    proxy::register(registry);
    exec::register(registry);
    shell::register(registry);
    service::register(registry);
    loadtest::register(registry);
}

use crate::{
    app::{App, AppError},
    commands::{Args, args::ArgAccessError},
    events::{EventData, Output, Progress},
    identity::Principal,
    store::{RequestRecord, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The action ran and could not do what was asked; the message is shown as is.
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Arg(#[from] ArgAccessError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    App(#[from] Box<AppError>),
}

impl From<AppError> for ActionError {
    fn from(e: AppError) -> Self {
        ActionError::App(Box::new(e))
    }
}

#[async_trait]
pub trait Action: Send + Sync {
    fn name(&self) -> &'static str;

    /// Read-only or instant actions run during submission, so the answer comes back in the
    /// acknowledgement; everything else waits for the worker.
    fn inline(&self) -> bool {
        false
    }

    /// Whether running it twice does no harm, so a request interrupted by a crash can be
    /// run again instead of being marked failed.
    fn rerunnable(&self) -> bool {
        false
    }

    /// The argument naming the environment the action works in, if any. It gives approval
    /// rules the environment's facts (`tier`, `owner`, `mine`) and rejects a command whose
    /// environment deckhand does not manage before anything is stored.
    fn target_env(&self) -> Option<&'static str> {
        None
    }

    /// Facts `facts` can tell an approval rule, checked against the specs' `when` at start-up.
    fn fact_names(&self) -> &'static [&'static str] {
        if self.target_env().is_some() {
            env::ENV_FACTS
        } else {
            &[]
        }
    }

    /// Looks up, at submission, what an approval rule may depend on beyond the arguments.
    /// An error here rejects the command before anything is stored.
    async fn facts(&self, app: &App, args: &Args, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        match self.target_env() {
            Some(arg) => env::env_facts(app, Args::require(args.name(arg), arg)?.as_str(), who).await,
            None => Ok(BTreeMap::new()),
        }
    }

    /// A line for approvers beyond the command text, e.g. the parameters a command left at
    /// their defaults; shown in the approval prompt.
    fn approval_detail(&self, _app: &App, _args: &Args) -> Option<String> {
        None
    }

    /// Returns the one-line outcome shown when the request ends.
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError>;
}

/// What an action sees while it runs.
pub struct ActionContext {
    pub app: Arc<App>,
    pub request: RequestRecord,
    /// The requester as the configuration knows them now.
    pub principal: Principal,
    pub cancel: CancellationToken,
}

impl ActionContext {
    /// A progress line: stored, then pushed to the surface the request came from.
    pub async fn progress(&self, message: impl Into<String>) -> Result<(), ActionError> {
        self.app
            .emit(&self.request, &message.into(), EventData::Progress(Progress::default()))
            .await?;
        Ok(())
    }

    /// Longer output meant to be read in full (lists, help, logs).
    pub async fn output(&self, message: impl Into<String>, data: Output) -> Result<(), ActionError> {
        self.app
            .emit(&self.request, &message.into(), EventData::Output(data))
            .await?;
        Ok(())
    }
}

/// Runs `work`, which reports progress through the callback it is given, and posts each
/// line as it comes (the cluster helpers report synchronously; posting is async).
pub async fn with_progress<T, Fut>(ctx: &ActionContext, work: impl FnOnce(Box<dyn FnMut(String) + Send>) -> Fut) -> T
where
    Fut: Future<Output = T>,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let work = work(Box::new(move |line| {
        let _ = tx.send(line);
    }));
    let forward = async {
        while let Some(line) = rx.recv().await {
            let _ = ctx.progress(line).await;
        }
    };
    let (result, ()) = tokio::join!(work, forward);
    result
}

#[derive(Default, Clone)]
pub struct ActionRegistry {
    actions: HashMap<String, Arc<dyn Action>>,
}

impl ActionRegistry {
    pub fn register(&mut self, action: Arc<dyn Action>) {
        self.actions.insert(action.name().to_owned(), action);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Action>> {
        self.actions.get(name)
    }

    /// Every action's name with the facts it can tell approval rules.
    pub fn catalog(&self) -> HashMap<String, Vec<String>> {
        self.actions
            .iter()
            .map(|(name, a)| (name.clone(), a.fact_names().iter().map(|f| f.to_string()).collect()))
            .collect()
    }
}
