//! `deckhand loadgen`: the load generator on its own, as the pods of `loadtest` run it.

use std::{io::Write, time::Duration};

use anyhow::Context;
use clap::Args;
use deckhand::loadgen::{self, Mode, Plan, Target};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("model").required(true).args(["rate", "concurrency"])))]
pub struct LoadgenArgs {
    /// The target, e.g. http://shop.checkout.svc:8080/health
    #[arg(long)]
    url: String,
    /// Open model: requests per second, sent on schedule whatever the target does.
    #[arg(long)]
    rate: Option<f64>,
    /// Closed model: connections, each sending back to back.
    #[arg(long)]
    concurrency: Option<u32>,
    /// How long to send, e.g. 30s, 5m.
    #[arg(long, value_parser = duration)]
    duration: Duration,
    #[arg(long, default_value = "GET")]
    method: String,
    /// A request header, `Name: value`; repeat for more.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// The request body, or @FILE to read it from a file.
    #[arg(long)]
    body: Option<String>,
    /// Per request, connecting included.
    #[arg(long, value_parser = duration, default_value = "10s")]
    timeout: Duration,
    /// Print the result as JSON (mergeable with other runs' JSON) instead of a summary.
    #[arg(long)]
    json: bool,
    /// Also draw the latency chart as a PNG into this file.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
}

fn duration(s: &str) -> Result<Duration, String> {
    loadgen::parse_duration(s).map_err(|e| e.to_string())
}

pub async fn loadgen(args: LoadgenArgs) -> anyhow::Result<u8> {
    let mut target = Target::new(&args.url)?.method(&args.method)?;
    for h in &args.headers {
        target = target.header(h)?;
    }
    if let Some(body) = &args.body {
        let bytes = match body.strip_prefix('@') {
            Some(path) => std::fs::read(path).with_context(|| format!("cannot read the body from {path}"))?,
            None => body.clone().into_bytes(),
        };
        target = target.body(bytes);
    }
    let mode = match (args.rate, args.concurrency) {
        (Some(r), _) => Mode::rate(r)?,
        (None, Some(c)) => Mode::concurrency(c)?,
        (None, None) => anyhow::bail!("give --rate R (requests per second) or --concurrency C (connections)"),
    };
    let plan = Plan {
        target,
        mode,
        duration: args.duration,
        timeout: args.timeout,
    };
    let report = loadgen::run(&plan).await?;
    if let Some(path) = &args.chart {
        let png = loadgen::chart::render(&report, &format!("loadgen {}", report.url), 1000, 600)?;
        std::fs::write(path, png).with_context(|| format!("cannot write the chart to {}", path.display()))?;
    }
    let text = match args.json {
        true => serde_json::to_string(&report)?,
        false => report.to_string(),
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}
