//! What a load test asks for, read from its arguments and checked against the configured
//! limits before anything runs: where the load goes (an environment's Service or a URL as
//! typed, and whether that is inside the environment), how hard and for how long. The same
//! reading serves the approval facts, the approver's detail and the run, so they agree.

use std::time::Duration;

use super::bad;
use crate::{
    actions::{ActionContext, ActionError},
    commands::Args,
    domain::Name,
    loadgen::{Target, Threshold},
    loadtest::{
        LoadtestConfig,
        target::{self, Outside, Reach},
    },
};

/// Where the load goes: a Service of the environment, or a URL as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Aim {
    Service {
        name: Name,
        port: Option<u16>,
        path: String,
    },
    Url(String),
}

impl Aim {
    fn parse(text: &str) -> Result<Self, ActionError> {
        if text.contains("://") {
            Target::new(text).map_err(|e| bad(e.to_string()))?;
            return Ok(Aim::Url(text.to_owned()));
        }
        let (head, path) = match text.find('/') {
            Some(i) => (&text[..i], text[i..].to_owned()),
            None => (text, "/".to_owned()),
        };
        let (name, port) = match head.split_once(':') {
            Some((n, p)) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(format!("'{p}' in `{text}` is not a port (1-65535)")))?;
                (n, Some(port))
            }
            None => (head, None),
        };
        let name = Name::parse(name).map_err(|_| {
            bad(format!(
                "`{text}` is neither an app's Service (app, app:port, app:port/path) nor an http:// URL"
            ))
        })?;
        Ok(Aim::Service { name, port, path })
    }
}

impl Aim {
    /// Where the load goes, read as the load generator reads the URL (loadtest/target.rs).
    pub(super) fn reach(&self, env: &Name) -> Reach {
        match self {
            Aim::Url(url) => target::classify(url, env.as_str()),
            Aim::Service { name, .. } => Reach::Inside {
                service: name.as_str().to_owned(),
            },
        }
    }

    /// An http:// URL with a user@ part is refused with what it means here, before the load
    /// generator's own check (written for its command line) answers.
    fn parse_in(text: &str, env: &Name) -> Result<Self, ActionError> {
        if text.contains("://") && target::classify(text, env.as_str()) == Reach::Outside(Outside::Userinfo) {
            return Err(bad(format!(
                "`{text}` has a user@ part: the host of such a URL is not a Service of {env}, and the load generator sends no credentials from a URL; give the Service (`app:port/path`) or a URL without user@"
            )));
        }
        Self::parse(text)
    }
}

/// Everything the arguments say, checked against the configured limits.
pub(super) struct Ask {
    pub(super) aim: Aim,
    pub(super) env: Name,
    pub(super) rate: u32,
    pub(super) duration: Duration,
    pub(super) workers: u32,
    pub(super) thresholds: Vec<Threshold>,
}

impl Ask {
    pub(super) fn from_args(args: &Args, cfg: &LoadtestConfig) -> Result<Self, ActionError> {
        let env = Args::require(args.name("env"), "env")?;
        let aim = Aim::parse_in(args.get("target").unwrap_or_default(), &env)?;
        let rate = Args::require(args.int("rate"), "rate")?;
        let duration = Args::require(args.duration("duration"), "duration")?;
        let workers = args.int("workers")?.unwrap_or(1);
        let rate = u32::try_from(rate)
            .ok()
            .filter(|r| *r <= cfg.max_rate)
            .ok_or_else(|| bad(format!("rate={rate} is above loadtest.max_rate ({})", cfg.max_rate)))?;
        let workers = u32::try_from(workers)
            .ok()
            .filter(|w| *w <= cfg.max_workers)
            .ok_or_else(|| {
                bad(format!(
                    "workers={workers} is above loadtest.max_workers ({})",
                    cfg.max_workers
                ))
            })?;
        if duration > cfg.max_duration {
            return Err(bad(format!(
                "duration={duration} is above loadtest.max_duration ({})",
                cfg.max_duration
            )));
        }
        if rate < workers {
            return Err(bad(format!(
                "rate={rate} spread over workers={workers} leaves a worker under 1 request per second; use fewer workers"
            )));
        }
        let thresholds = args
            .get("thresholds")
            .unwrap_or_default()
            .split_whitespace()
            .map(|t| t.parse::<Threshold>().map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ask {
            aim,
            env,
            rate,
            duration: duration.as_duration(),
            workers,
            thresholds,
        })
    }

    /// The name results are kept under: what was typed for a URL, `app` or `app:port/path`.
    pub(super) fn target_key(&self) -> String {
        match &self.aim {
            Aim::Url(u) => u.clone(),
            Aim::Service { name, port, path } => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let path = if path == "/" { String::new() } else { path.clone() };
                format!("{name}{port}{path}")
            }
        }
    }
}

/// The URL the pods use: a Service becomes its in-cluster DNS name on the right port.
pub(super) async fn resolve(ctx: &ActionContext, ask: &Ask) -> Result<String, ActionError> {
    let (name, asked, path) = match &ask.aim {
        Aim::Url(u) => return Ok(u.clone()),
        Aim::Service { name, port, path } => (name, *port, path),
    };
    let ns = ask.env.as_str();
    let what = format!("service {name} in {ns}");
    let svc = match ctx.app.clusters.locate(ns).await?.service(ns, name.as_str()).await {
        Ok(svc) => svc,
        Err(crate::cluster::ClusterError::NotFound(_)) => {
            return Err(bad(format!(
                "there is no Service {name} in {ns}: deploy the app with a port (`deploy IMAGE to {ns} as {name} port=8080`) or give an http:// URL"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let ports: Vec<u16> = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| u16::try_from(p.port).ok())
        .collect();
    let port = match (asked, ports.first()) {
        (Some(p), _) if ports.contains(&p) => p,
        (Some(p), _) => return Err(bad(format!("{what} has no port {p}; it has {ports:?}"))),
        (None, Some(p)) => *p,
        (None, None) => return Err(bad(format!("{what} has no ports"))),
    };
    Ok(format!("http://{name}.{ns}.svc:{port}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_services_or_urls() {
        assert_eq!(
            Aim::parse("shop").unwrap(),
            Aim::Service {
                name: Name::parse("shop").unwrap(),
                port: None,
                path: "/".into()
            }
        );
        assert_eq!(
            Aim::parse("shop:8080/api/cart?x=1").unwrap(),
            Aim::Service {
                name: Name::parse("shop").unwrap(),
                port: Some(8080),
                path: "/api/cart?x=1".into()
            }
        );
        assert_eq!(Aim::parse("http://x.y:81/").unwrap(), Aim::Url("http://x.y:81/".into()));
        for bad in ["Shop", "shop:0", "shop:http", "https://x/", "ftp://x/"] {
            assert!(Aim::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_outside_the_environment_are_told_apart() {
        let env = Name::parse("lt").unwrap();
        for (url, outside) in [
            ("http://shop.lt.svc:8080/", false),
            ("http://shop.lt.svc.cluster.local/x", false),
            ("http://shop.lt:8080/", false),
            ("http://shop:8080/", false),
            ("http://shop.other.svc:8080/", true),
            ("http://a.shop.lt.svc/", true),
            ("http://example.com/", true),
            ("http://lt.svc/", true),
            ("http://2852039166#x.lt.svc", true),
            ("http://shop#.lt.svc", true),
            ("http://0xA9FEA9FE/", true),
        ] {
            assert_eq!(Aim::parse(url).unwrap().reach(&env).is_outside(), outside, "{url}");
        }
        assert!(!Aim::parse("shop").unwrap().reach(&env).is_outside());
        let err = Aim::parse_in("http://u@shop.lt.svc/", &env).unwrap_err().to_string();
        assert!(err.contains("user@") && err.contains("not a Service of lt"), "{err}");
    }
}
