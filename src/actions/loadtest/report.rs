//! What a finished load test leaves behind: the pods' reports merged into one, judged
//! against the thresholds, stored as a run of its target (so the next run can show the
//! change), posted as a table with a chart, and the requester's own links to both.

use serde_json::{Value, json};

use super::{ask::Ask, bad};
use crate::{
    actions::{ActionContext, ActionError},
    attachments::{AttachmentRef, Attachments},
    loadgen::{Report, Verdict, chart, format_duration},
    loadtest::{
        results::{NewRun, PastRun, Results},
        summary,
    },
};

const CHART_SIZE: (u32, u32) = (1000, 600);

/// Stores and posts the run; its one-line result, or the failed thresholds as the error.
pub(super) async fn publish(
    ctx: &ActionContext,
    ask: &Ask,
    url: &str,
    reports: &[Report],
) -> Result<String, ActionError> {
    let report = Report::merge(reports).map_err(|e| bad(e.to_string()))?;
    let verdict = Verdict::of(&ask.thresholds, &report);
    let target = ask.target_key();
    let previous = store_run(ctx, ask, &target, url, &report, &verdict).await?;
    let title = format!(
        "Load test of {target} in {}: {}/s for {} from {} worker(s)",
        ask.env,
        ask.rate,
        format_duration(ask.duration),
        ask.workers
    );
    let table = summary::table(
        &title,
        &report,
        previous.as_ref().map(|p| (p.request_id.as_str(), &p.report)),
        &verdict,
    );
    let attachment = chart(ctx, &report, &title).await?;
    let data = fields(ask, &target, url, &report, &verdict, previous.as_ref());
    let chart = attachment.as_ref().map(|a| a.id.clone());
    ctx.output(table, crate::events::Output::fields(data).attach(attachment))
        .await?;
    if let Some(chart) = chart {
        chart_links(ctx, &chart).await?;
    }
    outcome(&report, &verdict)
}

/// Stores this run under its target; the run before it, if any, to compare with.
async fn store_run(
    ctx: &ActionContext,
    ask: &Ask,
    target: &str,
    url: &str,
    report: &Report,
    verdict: &Verdict,
) -> Result<Option<PastRun>, ActionError> {
    let results = Results::new(ctx.app.store.pool().clone());
    let previous = results
        .previous(ask.env.as_str(), target, ctx.request.id.as_str())
        .await?;
    results
        .insert(&NewRun {
            request_id: ctx.request.id.as_str(),
            env: ask.env.as_str(),
            target,
            url,
            requester: &ctx.request.requester,
            workers: ask.workers,
            report,
            verdict,
        })
        .await?;
    Ok(previous)
}

/// The latency chart, stored as the request's attachment; none when it cannot be drawn
/// (the table says it all anyway).
async fn chart(ctx: &ActionContext, report: &Report, title: &str) -> Result<Option<AttachmentRef>, ActionError> {
    let png = match chart::render(report, title, CHART_SIZE.0, CHART_SIZE.1) {
        Ok(png) => png,
        Err(e) => {
            tracing::warn!(error = %e, "no chart for the load test");
            return Ok(None);
        }
    };
    let id = ctx.request.id.as_str();
    let stored = Attachments::new(ctx.app.store.pool().clone())
        .put(id, &format!("loadtest-{id}.png"), "image/png", title, &png)
        .await?;
    Ok(Some(stored))
}

/// The run as typed data, for the API and the web page.
fn fields(ask: &Ask, target: &str, url: &str, report: &Report, verdict: &Verdict, previous: Option<&PastRun>) -> Value {
    json!({
        "target": target,
        "env": ask.env.as_str(),
        "url": url,
        "workers": ask.workers,
        "rate_requested": ask.rate,
        "duration_s": ask.duration.as_secs(),
        "rate_achieved": report.achieved_rate(),
        "requests": report.total(),
        "latency_us": {
            "p50": report.latency.quantile_us(0.5),
            "p90": report.latency.quantile_us(0.9),
            "p99": report.latency.quantile_us(0.99),
            "max": report.latency.max_us(),
        },
        "error_ratio": report.error_ratio(),
        "errors": summary::errors_by_kind(report),
        "verdict": verdict,
        "previous": previous.map(|p| p.request_id.clone()),
        "report": report,
    })
}

/// The run's one line; an error naming the thresholds it failed.
fn outcome(report: &Report, verdict: &Verdict) -> Result<String, ActionError> {
    let line = format!(
        "{:.1}/s, p99 {}, errors {:.2}%",
        report.achieved_rate(),
        crate::loadgen::report::ms(report.percentile(0.99)),
        report.error_ratio() * 100.0
    );
    if verdict.passed {
        return Ok(line);
    }
    let failed: Vec<String> = verdict
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} (actual {})", c.threshold, c.actual))
        .collect();
    Err(bad(format!("thresholds failed: {}; {line}", failed.join(", "))))
}

/// The requester's own links to the chart and the request's page, privately: the page
/// link is a credential (see `crate::pages`). A link that cannot be made costs the test
/// nothing; the chart is in the thread anyway.
async fn chart_links(ctx: &ActionContext, chart: &str) -> Result<(), ActionError> {
    let page = match crate::pages::mint(&ctx.app, ctx.request.id.as_str(), &ctx.request.requester).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "no page link for the load test");
            return Ok(());
        }
    };
    let chart_url = page.file_url(chart);
    let data =
        crate::events::Output::fields(json!({ "page": page.url, "chart": chart_url, "expires_at": page.expires_at }))
            .link(crate::command_buttons::LinkButton::new("Open chart", &chart_url))
            .link(page.page_button())
            .to(crate::visibility::Audience::Requester);
    ctx.output(
        format!(
            "Your links to the chart and the page of {} (personal, until {})",
            ctx.request.id,
            crate::domain::format_ms(page.expires_at)
        ),
        data,
    )
    .await
}
