//! CPU time and context switches: this process's, and the broker's (the Erlang VM of the
//! RabbitMQ that listens on 127.0.0.1:5672), read from `/proc` so that a figure can say what
//! a call cost each side, not only how long it took.

use std::time::Duration;

/// Linux reports CPU times in clock ticks of 1/100 s on every common configuration.
const TICK: Duration = Duration::from_millis(10);

/// CPU time and context switches of the bench process and the broker at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// This process's user and system time.
    pub process: Duration,
    /// This process's voluntary and involuntary context switches.
    pub switches: u64,
    /// The broker VM's user and system time; zero when it could not be read.
    pub broker: Duration,
}

/// What happened between two samples, per unit of work (a call, a message).
#[derive(Debug, Clone, Copy)]
pub struct PerUnit {
    /// µs of bench-process CPU.
    pub process_us: f64,
    /// µs of broker CPU.
    pub broker_us: f64,
    /// Context switches of the bench process.
    pub switches: f64,
}

/// Reads the bench process's and the broker's counters.
pub struct Meter {
    broker_pid: Option<u32>,
}

impl Meter {
    /// A meter; finds the broker's process once (none when it cannot be found, e.g. another
    /// user's process: its figures are then 0).
    pub fn new() -> Meter {
        let broker_pid = broker_pid(5672);
        if broker_pid.is_none() {
            eprintln!("fabric-bench: the broker's process was not found; its CPU reads as 0");
        }
        Meter { broker_pid }
    }

    /// The counters now.
    pub fn sample(&self) -> Sample {
        Sample {
            process: process_cpu(),
            switches: process_switches(),
            broker: self.broker_pid.map(pid_cpu).unwrap_or_default(),
        }
    }

    /// The counters since `before`, divided by `units`.
    pub fn since(&self, before: Sample, units: usize) -> PerUnit {
        let now = self.sample();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / units as f64;
        PerUnit {
            process_us: per(now.process.saturating_sub(before.process)),
            broker_us: per(now.broker.saturating_sub(before.broker)),
            switches: now.switches.saturating_sub(before.switches) as f64 / units as f64,
        }
    }
}

/// CPU time used by this process so far (user and system).
pub fn process_cpu() -> Duration {
    stat_cpu("/proc/self/stat")
}

fn pid_cpu(pid: u32) -> Duration {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// utime + stime of a `/proc/.../stat` file.
fn stat_cpu(path: &str) -> Duration {
    let ticks = std::fs::read_to_string(path)
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which may hold spaces and ends with ')'.
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    TICK * ticks as u32
}

/// Voluntary and involuntary context switches of all this process's threads.
fn process_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Context switches of this process's threads, summed by thread name (worker threads
/// `name-N` count as `name`), for `--client`'s breakdown.
pub fn switches_by_thread() -> std::collections::BTreeMap<String, u64> {
    let mut totals = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return totals;
    };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let name = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .unwrap_or("?")
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches('-')
            .to_owned();
        // amiquip's I/O threads one by one: one per connection.
        let name = if name == "amiquip-io" {
            format!("{name} {}", task.file_name().to_string_lossy())
        } else {
            name
        };
        let switches: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        *totals.entry(name).or_insert(0) += switches;
    }
    totals
}

/// The process listening on TCP `port` (of any address): the socket's inode from
/// `/proc/net/tcp{,6}`, then the process holding it.
fn broker_pid(port: u16) -> Option<u32> {
    let port_hex = format!(":{port:04X}");
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local address, state 0A = LISTEN, inode.
                    let listening = fields.get(1)?.ends_with(&port_hex) && fields.get(3)? == &"0A";
                    listening.then(|| fields.get(9).map(|s| s.to_string()))?
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let targets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if targets.iter().any(|t| link.as_os_str() == t.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}
