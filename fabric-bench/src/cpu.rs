//! What a run costs in CPU: this process's (every thread's, with its context switches), another
//! process's (a server run as a child), and the broker's Erlang VM's, all read from the kernel.
//!
//! Take a [`Usage`] or a broker reading before and after an interval and subtract; divide by
//! the calls made in between for a cost per call.

use std::collections::HashSet;
use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};

/// Linux's clock tick for CPU times in `/proc/<pid>/stat` (USER_HZ): 100 per second on every
/// common configuration. Readings from there are thus good to 10 ms.
const TICK: Duration = Duration::from_millis(10);

/// CPU time and context switches of a process, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User plus system time.
    pub cpu: Duration,
    /// Times a thread gave up the CPU to wait (for a lock, a socket, a condvar).
    pub voluntary_switches: u64,
    /// Times a thread was made to give it up (its time slice ran out).
    pub involuntary_switches: u64,
}

impl Usage {
    /// This process, every thread counted, the ones that ended included (getrusage).
    pub fn of_self() -> Usage {
        let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
            return Usage::default();
        };
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec().max(0) as u64)
                + Duration::from_micros(t.tv_usec().max(0) as u64)
        };
        Usage {
            cpu: micros(usage.user_time()) + micros(usage.system_time()),
            voluntary_switches: usage.voluntary_context_switches().max(0) as u64,
            involuntary_switches: usage.involuntary_context_switches().max(0) as u64,
        }
    }

    /// Another process, from `/proc/<pid>/stat` (CPU, every thread, in ticks of 10 ms) and its
    /// threads' `status` (switches of the threads alive now: the ones that ended are not
    /// counted, so read it for processes whose threads live long, as a server's do).
    pub fn of_process(pid: u32) -> Option<Usage> {
        let cpu = process_cpu(pid)?;
        let (mut voluntary, mut involuntary) = (0, 0);
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                let value = |prefix: &str| {
                    line.strip_prefix(prefix)
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                if let Some(v) = value("voluntary_ctxt_switches:") {
                    voluntary += v;
                } else if let Some(v) = value("nonvoluntary_ctxt_switches:") {
                    involuntary += v;
                }
            }
        }
        Some(Usage {
            cpu,
            voluntary_switches: voluntary,
            involuntary_switches: involuntary,
        })
    }

    /// What was used between `earlier` and this reading.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }

    /// Both kinds of context switch.
    pub fn switches(&self) -> u64 {
        self.voluntary_switches + self.involuntary_switches
    }
}

/// User plus system time of process `pid` so far, every thread, the ended ones included.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u32 = fields.get(11)?.parse().ok()?;
    let system: u32 = fields.get(12)?.parse().ok()?;
    Some(TICK * (user + system))
}

/// The broker's Erlang VM: the `beam.smp` process of the RabbitMQ node that listens on the
/// bench's port, found once. Its CPU counts every AMQP connection, channel and queue process
/// of the node, this bench's and anyone else's on the same broker.
#[derive(Debug, Clone, Copy)]
pub struct Broker {
    pid: u32,
}

impl Broker {
    /// The `beam.smp` that listens on TCP `port` (5672 for the main broker): the process
    /// holding the listening socket, which tells the main node from private test nodes
    /// (`fabric-test-*`, on ports of their own). Without the right to read other processes'
    /// sockets, the one `beam.smp` whose command line and environment do not name a
    /// `fabric-test-` node, if there is exactly one.
    pub fn find(port: u16) -> Option<Broker> {
        let listening: HashSet<u64> = tcp_sockets()
            .into_iter()
            .filter(|s| s.listening && s.local_port == port)
            .map(|s| s.inode)
            .collect();
        let beams = beam_processes();
        if let Some(&pid) = beams
            .iter()
            .find(|&&pid| socket_inodes(pid).iter().any(|i| listening.contains(i)))
        {
            return Some(Broker { pid });
        }
        let mut others = beams.into_iter().filter(|&pid| {
            ["cmdline", "environ"].iter().all(|file| {
                std::fs::read(format!("/proc/{pid}/{file}"))
                    .map(|bytes| !String::from_utf8_lossy(&bytes).contains("fabric-test-"))
                    .unwrap_or(true)
            })
        });
        match (others.next(), others.next()) {
            (Some(pid), None) => Some(Broker { pid }),
            _ => None,
        }
    }

    /// The process id of the broker's VM.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The VM's user plus system time so far, from `/proc/<pid>/stat` (good to 10 ms).
    pub fn cpu(&self) -> Duration {
        process_cpu(self.pid).unwrap_or_default()
    }

    /// The VM's time on a CPU so far, to the nanosecond: the sum over its threads of
    /// `/proc/<pid>/task/<tid>/schedstat`, for readings too small for [`cpu`](Self::cpu)'s
    /// ticks (a broker at idle). Counts the threads alive now, which for an Erlang VM are all
    /// it ever starts. `cpu` where the kernel keeps no schedstat.
    pub fn cpu_precise(&self) -> Duration {
        threads_on_cpu(self.pid).unwrap_or_else(|| self.cpu())
    }
}

/// The sum of the first field of each thread's schedstat (ns on a CPU), if every one read.
fn threads_on_cpu(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The processes named `beam.smp`.
fn beam_processes() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "beam.smp")
        })
        .collect()
}

/// One TCP socket of the machine (of this network namespace), from `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, Copy)]
pub struct TcpSocket {
    pub local_port: u16,
    pub remote_port: u16,
    pub listening: bool,
    pub established: bool,
    pub inode: u64,
}

/// Every TCP socket of the machine, IPv4 and IPv6.
pub fn tcp_sockets() -> Vec<TcpSocket> {
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |address: &str| {
                let hex = address.rsplit(':').next()?;
                u16::from_str_radix(hex, 16).ok()
            };
            let (Some(local), Some(remote), Some(state), Some(inode)) = (
                fields.get(1).and_then(|a| port(a)),
                fields.get(2).and_then(|a| port(a)),
                fields.get(3),
                fields.get(9).and_then(|i| i.parse().ok()),
            ) else {
                continue;
            };
            sockets.push(TcpSocket {
                local_port: local,
                remote_port: remote,
                listening: *state == "0A",
                established: *state == "01",
                inode,
            });
        }
    }
    sockets
}

/// The inodes of the sockets process `pid` has open (none if its descriptors cannot be read).
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The local ports of process `pid`'s TCP connections to `remote_port`: how the broker,
/// which knows each connection's peer port, tells that process's connections from others.
pub fn connection_ports(pid: u32, remote_port: u16) -> HashSet<u16> {
    let inodes = socket_inodes(pid);
    tcp_sockets()
        .into_iter()
        .filter(|s| s.established && s.remote_port == remote_port && inodes.contains(&s.inode))
        .map(|s| s.local_port)
        .collect()
}

/// The bench process's and the broker's CPU and switches at one moment, for costs per call.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    own: Usage,
    broker: Duration,
}

/// What a unit of work (a call, a message) cost between two samples.
#[derive(Debug, Clone, Copy)]
pub struct PerUnit {
    /// µs of bench-process CPU (clients and servers in it).
    pub process_us: f64,
    /// µs of broker CPU.
    pub broker_us: f64,
    /// Context switches of the bench process's threads.
    pub switches: f64,
}

/// Reads the bench process's and the broker's counters.
pub struct Meter {
    broker: Option<Broker>,
}

impl Meter {
    /// A meter; the broker is found once (its figures read 0 when it cannot be, e.g. another
    /// user's process).
    pub fn new() -> Meter {
        let broker = Broker::find(5672);
        if broker.is_none() {
            eprintln!("fabric-bench: the broker's process was not found; its CPU reads as 0");
        }
        Meter { broker }
    }

    /// The counters now.
    pub fn sample(&self) -> Sample {
        Sample {
            own: Usage::of_self(),
            broker: self.broker.map(|b| b.cpu_precise()).unwrap_or_default(),
        }
    }

    /// The counters since `before`, divided by `units`.
    pub fn since(&self, before: Sample, units: usize) -> PerUnit {
        let now = self.sample();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / units as f64;
        let own = now.own.since(&before.own);
        PerUnit {
            process_us: per(own.cpu),
            broker_us: per(now.broker.saturating_sub(before.broker)),
            switches: own.switches() as f64 / units as f64,
        }
    }
}

/// This process's CPU time so far (every thread).
pub fn own_cpu() -> Duration {
    Usage::of_self().cpu
}

/// Context switches of this process's threads alive now, summed by thread name (worker
/// threads `name-N` count as `name`; amiquip's I/O threads, one per connection, one by one),
/// for `--client`'s breakdown.
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
