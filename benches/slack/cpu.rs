//! The CPU a command costs, measured over the fixed-rate phase: the whole machine's busy time
//! (deckhand, its database, the Slack sink and the load generator, all on the same cores) and
//! this process's share, each divided by the commands sent. At a fixed rate these figures move
//! far less between runs than the capacity phase's acks/s does, and on a machine where every
//! part shares the cores, capacity is about the cores divided by the machine's CPU per command.

use std::time::Duration;

/// Busy time so far: the machine's (from /proc/stat) and this process's (getrusage).
#[derive(Clone, Copy)]
pub struct Sample {
    machine: Duration,
    process: Duration,
}

/// CPU per command between two samples.
pub struct PerCommand {
    pub machine: Duration,
    pub process: Duration,
}

pub fn sample() -> Sample {
    Sample {
        machine: machine_busy().unwrap_or_default(),
        process: process_cpu(),
    }
}

impl Sample {
    pub fn per_command(&self, later: &Sample, commands: usize) -> PerCommand {
        let n = commands.max(1) as u32;
        PerCommand {
            machine: later.machine.saturating_sub(self.machine) / n,
            process: later.process.saturating_sub(self.process) / n,
        }
    }
}

/// The busy ticks on /proc/stat's first line (all but idle and iowait), as time.
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = ticks[..] else {
        return None;
    };
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let busy = user + nice + system + irq + softirq + steal;
    Some(Duration::from_micros(busy * 1_000_000 / hz))
}

fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
