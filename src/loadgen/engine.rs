//! Sending the requests. Each connection is a hyper HTTP/1.1 client connection of its own
//! (keep-alive, no pool layer in between); results are recorded without locks in the
//! closed model (one recorder per connection) and through one collector in the open model.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, Uri, client::conn::http1::SendRequest, header::HOST};
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpStream,
    sync::{Semaphore, mpsc},
    time::{Instant, sleep, sleep_until, timeout_at},
};

use super::{ErrorKind, MAX_IN_FLIGHT, Mode, Plan, Report, report::Recorder};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("the path of {0} is not a valid request target")]
    Path(String),
}

/// What every request shares, built once.
struct Shared {
    addrs: Vec<SocketAddr>,
    method: hyper::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    timeout: Duration,
}

type Conn = SendRequest<Full<Bytes>>;

/// Runs the plan to its end and returns what it measured.
pub async fn run(plan: &Plan) -> Result<Report, RunError> {
    let target = &plan.target;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&target.authority)
        .await
        .map_err(|e| RunError::Resolve {
            host: target.authority.clone(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(RunError::Resolve {
            host: target.authority.clone(),
            reason: "no addresses".into(),
        });
    }
    let mut headers = HeaderMap::new();
    if let Ok(host) = target.host.parse() {
        headers.insert(HOST, host);
    }
    for (name, value) in &target.headers {
        headers.append(name.clone(), value.clone());
    }
    let shared = Arc::new(Shared {
        addrs,
        method: target.method.clone(),
        uri: target.path.parse().map_err(|_| RunError::Path(target.url.clone()))?,
        headers,
        body: target.body.clone(),
        timeout: plan.timeout,
    });
    let start = Instant::now();
    let end = start + plan.duration;
    let recorder = match plan.mode {
        Mode::Concurrency(c) => closed(shared, c, start, end).await,
        Mode::Rate(r) => open(shared, r, start, end).await,
    };
    Ok(recorder.into_report(&target.url, target.method.as_str(), plan.mode, plan.duration))
}

/// C connections, each sending its next request as soon as the last is answered.
async fn closed(shared: Arc<Shared>, connections: u32, start: Instant, end: Instant) -> Recorder {
    let workers: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(closed_worker(shared.clone(), i as usize, start, end)))
        .collect();
    let mut total = Recorder::new();
    for w in workers {
        if let Ok(rec) = w.await {
            total.absorb(rec);
        }
    }
    total
}

/// One connection of the closed model. The connection is driven inside this task, next to
/// the requests on it, rather than in a task of its own: at saturation, the wake-ups
/// between two tasks per request cost more than the request itself.
async fn closed_worker(shared: Arc<Shared>, n: usize, start: Instant, end: Instant) -> Recorder {
    let mut rec = Recorder::new();
    let mut backoff = Duration::from_millis(5);
    while Instant::now() < end {
        let connecting = Instant::now();
        let (mut sender, connection) = match timeout_at(connecting + shared.timeout, handshake(&shared, n)).await {
            Ok(Ok(parts)) => parts,
            failed => {
                let kind = match failed {
                    Ok(Err(kind)) => kind,
                    _ => ErrorKind::Timeout,
                };
                rec.error(connecting - start, kind);
                // A refused connection fails in microseconds: without a pause the run
                // would count millions of them.
                sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(200));
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        let mut connection = std::pin::pin!(connection);
        let mut open = true;
        // The first request's latency includes connecting, as it would for a client.
        let mut first = Some(connecting);
        while Instant::now() < end && open && !sender.is_closed() {
            let sent = first.take().unwrap_or_else(Instant::now);
            let request = timeout_at(sent + shared.timeout, request(&mut sender, &shared));
            let mut request = std::pin::pin!(request);
            let result = loop {
                if !open {
                    break (&mut request).await;
                }
                tokio::select! {
                    biased;
                    r = &mut request => break r,
                    _ = connection.as_mut() => open = false,
                }
            };
            match outcome(result) {
                Ok(status) => rec.response(sent - start, status, sent.elapsed()),
                Err(kind) => {
                    rec.error(sent - start, kind);
                    break;
                }
            }
        }
    }
    rec
}

enum Sample {
    Response {
        at: Duration,
        status: u16,
        latency: Duration,
    },
    Error {
        at: Duration,
        kind: ErrorKind,
    },
}

/// Requests start at a constant rate whatever the target does; each one's latency counts
/// from when it was meant to start, so waiting for a connection or a slow answer shows.
async fn open(shared: Arc<Shared>, rate: f64, start: Instant, end: Instant) -> Recorder {
    let idle: Arc<Mutex<Vec<Conn>>> = Arc::default();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let collector = tokio::spawn(async move {
        let mut rec = Recorder::new();
        while let Some(sample) = rx.recv().await {
            match sample {
                Sample::Response { at, status, latency } => rec.response(at, status, latency),
                Sample::Error { at, kind } => rec.error(at, kind),
            }
        }
        rec
    });
    let mut i: u64 = 0;
    loop {
        let at = Duration::from_secs_f64(i as f64 / rate);
        let intended = start + at;
        if intended >= end {
            break;
        }
        sleep_until(intended).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (shared, idle, tx) = (shared.clone(), idle.clone(), tx.clone());
        tokio::spawn(async move {
            let mut conn = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let result = timeout_at(
                Instant::now() + shared.timeout,
                exchange(&mut conn, &shared, i as usize),
            )
            .await;
            let sample = match outcome(result) {
                Ok(status) => Sample::Response {
                    at,
                    status,
                    latency: intended.elapsed(),
                },
                Err(kind) => {
                    conn = None;
                    Sample::Error { at, kind }
                }
            };
            if let Some(c) = conn.filter(|c| !c.is_closed()) {
                idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
            }
            let _ = tx.send(sample);
            drop(slot);
        });
        i += 1;
    }
    drop(tx);
    // Every request holds a slot until it has sent its sample: taking them all waits for
    // the last one.
    let _ = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
    collector.await.unwrap_or_else(|_| Recorder::new())
}

fn outcome(result: Result<Result<u16, ErrorKind>, tokio::time::error::Elapsed>) -> Result<u16, ErrorKind> {
    result.unwrap_or(Err(ErrorKind::Timeout))
}

/// One request and its whole response body on `conn`, connecting first if needed.
async fn exchange(conn: &mut Option<Conn>, shared: &Shared, n: usize) -> Result<u16, ErrorKind> {
    // The server may have closed a kept-alive connection (Connection: close, idle
    // timeout): that is a reason to reconnect, not an error.
    if conn.as_ref().is_some_and(|c| c.is_closed()) {
        *conn = None;
    }
    if conn.is_none() {
        *conn = Some(connect(shared, n).await?);
    }
    let Some(sender) = conn.as_mut() else {
        return Err(ErrorKind::Connect);
    };
    request(sender, shared).await
}

/// One request on an open connection, its whole response body read.
async fn request(sender: &mut Conn, shared: &Shared) -> Result<u16, ErrorKind> {
    sender.ready().await.map_err(|e| classify(&e))?;
    let mut req = Request::new(Full::new(shared.body.clone()));
    *req.method_mut() = shared.method.clone();
    *req.uri_mut() = shared.uri.clone();
    *req.headers_mut() = shared.headers.clone();
    let resp = sender.send_request(req).await.map_err(|e| classify(&e))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| classify(&e))?;
    }
    Ok(status)
}

type Connection = hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

async fn handshake(shared: &Shared, n: usize) -> Result<(Conn, Connection), ErrorKind> {
    let addr = shared.addrs[n % shared.addrs.len()];
    let stream = TcpStream::connect(addr).await.map_err(|_| ErrorKind::Connect)?;
    // Requests are small and latency is what is measured: no Nagle delay.
    let _ = stream.set_nodelay(true);
    hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorKind::Connect)
}

/// A connection driven by a task of its own, for the open model's shared pool.
async fn connect(shared: &Shared, n: usize) -> Result<Conn, ErrorKind> {
    let (sender, connection) = handshake(shared, n).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::trace!(error = %e, "load generator connection ended");
        }
    });
    Ok(sender)
}

fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        ErrorKind::Protocol
    } else {
        // Closed, cancelled, incomplete message, reset by peer: the connection went away.
        ErrorKind::Reset
    }
}
