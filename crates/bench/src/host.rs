//! What the host's CPUs did during a measured window: the process's CPU time and the
//! whole machine's busy, idle and steal shares, from Linux's `/proc`.
//!
//! A run's throughput on a small VM depends on its neighbours as much as on the code
//! (pass 12 of `crates/bench/README.md`: the hypervisor's steal and the wake-up of
//! halted vCPUs move the same binary by 2x). These fields let a reader tell a slow
//! binary from a slow hour: `cpu_us_per_op` is the code's cost, `host_steal_pct` and
//! `host_idle_pct` are the machine's. Elsewhere (no `/proc`) the fields are left out.

use std::time::Instant;

/// Linux's `USER_HZ`: the unit of `/proc/self/stat` and `/proc/stat` times. It is
/// part of the kernel's user ABI and 100 on every mainstream architecture.
const USER_HZ: f64 = 100.0;

/// The CPU counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    /// This process's user + system time, in `USER_HZ` ticks.
    pub process_ticks: u64,
    /// The machine's `cpu` line: user, nice, system, idle, iowait, irq, softirq,
    /// steal (ticks summed over all CPUs).
    pub machine: [u64; 8],
    /// CPUs the machine has (`cpuN` lines).
    pub cpus: usize,
}

/// What happened between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUse {
    /// CPU seconds this process used.
    pub process_cpu_s: f64,
    /// Share of all CPUs' time that was busy (user, nice, system, irq, softirq), %.
    pub busy_pct: f64,
    /// Share that was idle (idle, iowait), %.
    pub idle_pct: f64,
    /// Share the hypervisor gave to someone else (steal), %.
    pub steal_pct: f64,
    /// CPUs that other processes of this machine kept busy meanwhile (busy time not
    /// this process's): a benchmark run next to another load is not comparable.
    pub other_cpus: f64,
}

/// Parses the `cpu` line of `/proc/stat` (the first eight counters; older kernels
/// without steal count it as 0). `None` if the line is missing or malformed.
pub fn parse_proc_stat(text: &str) -> Option<[u64; 8]> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let mut out = [0u64; 8];
    let mut n = 0;
    for (slot, field) in out.iter_mut().zip(line.split_whitespace().skip(1)) {
        *slot = field.parse().ok()?;
        n += 1;
    }
    // user, nice, system, idle are in every kernel's line.
    (n >= 4).then_some(out)
}

/// Parses `/proc/self/stat`: utime + stime. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_self_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The number of `cpuN` lines of `/proc/stat` (at least 1).
pub fn count_cpus(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count()
        .max(1)
}

/// The counters now, if `/proc` has them.
pub fn sample() -> Option<CpuSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let machine = parse_proc_stat(&stat)?;
    let process_ticks = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(CpuSample {
        process_ticks,
        machine,
        cpus: count_cpus(&stat),
    })
}

/// The use between `a` and a later `b`; `None` if no time passed or a counter went
/// backwards.
pub fn between(a: &CpuSample, b: &CpuSample) -> Option<CpuUse> {
    let mut d = [0u64; 8];
    for (i, slot) in d.iter_mut().enumerate() {
        *slot = b.machine[i].checked_sub(a.machine[i])?;
    }
    let total: u64 = d.iter().sum();
    if total == 0 {
        return None;
    }
    let pct = |x: u64| 100.0 * x as f64 / total as f64;
    let busy = d[0] + d[1] + d[2] + d[5] + d[6];
    let process = b.process_ticks.checked_sub(a.process_ticks)?;
    // The window's length in ticks of one CPU.
    let window = total as f64 / b.cpus.max(1) as f64;
    Some(CpuUse {
        process_cpu_s: process as f64 / USER_HZ,
        busy_pct: pct(busy),
        idle_pct: pct(d[3] + d[4]),
        steal_pct: pct(d[7]),
        other_cpus: (busy.saturating_sub(process) as f64 / window).max(0.0),
    })
}

/// Samples at `from` and at `to` on a small thread of its own (it sleeps in
/// between); join it for the use over that window.
pub fn watch(from: Instant, to: Instant) -> std::thread::JoinHandle<Option<CpuUse>> {
    std::thread::spawn(move || {
        std::thread::sleep(from.saturating_duration_since(Instant::now()));
        let a = sample()?;
        std::thread::sleep(to.saturating_duration_since(Instant::now()));
        let b = sample()?;
        between(&a, &b)
    })
}

/// Adds the fields of `used` (if any) to `rep`: CPU per op of `rep.ops`, CPUs per
/// second of `rep.measured_s`, and the host's shares.
pub fn report(rep: &mut crate::Report, used: Option<CpuUse>) {
    let Some(u) = used else { return };
    let ops = rep.ops.max(1) as f64;
    rep.push("cpu_us_per_op", u.process_cpu_s * 1e6 / ops);
    if rep.measured_s > 0.0 {
        rep.push("process_cpus", u.process_cpu_s / rep.measured_s);
    }
    rep.push("host_busy_pct", u.busy_pct);
    rep.push("host_idle_pct", u.idle_pct);
    rep.push("host_steal_pct", u.steal_pct);
    rep.push("host_other_cpus", u.other_cpus);
    if u.other_cpus > OTHER_CPUS_WARN {
        eprintln!(
            "warning: other processes kept {:.2} CPUs busy during this run; its numbers are not comparable",
            u.other_cpus
        );
    }
}

/// Other processes' load above which a run warns that it is not comparable.
pub const OTHER_CPUS_WARN: f64 = 0.25;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn proc_stat_cpu_line_parses_and_bad_input_is_none() {
        let t = "cpu  100 5 50 800 10 2 3 30 0 0\ncpu0 50 2 25 400 5 1 1 15 0 0\n";
        assert_eq!(parse_proc_stat(t), Some([100, 5, 50, 800, 10, 2, 3, 30]));
        // A kernel without steal (four to seven counters).
        assert_eq!(
            parse_proc_stat("cpu 1 2 3 4\n"),
            Some([1, 2, 3, 4, 0, 0, 0, 0])
        );
        assert_eq!(parse_proc_stat(""), None);
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 2 x 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 2 3\n"), None);
    }

    #[test]
    fn cpus_are_the_numbered_lines() {
        let t = "cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 3 4\ncpufreq x\nintr 5\n";
        assert_eq!(count_cpus(t), 2);
        assert_eq!(count_cpus(""), 1);
    }

    #[test]
    fn self_stat_counts_fields_after_the_last_parenthesis() {
        let t = "42 (a) (b c) S 1 42 42 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 9 0";
        assert_eq!(parse_self_stat(t), Some(287));
        assert_eq!(parse_self_stat("42 (x) S 1 2"), None);
        assert_eq!(parse_self_stat("no parenthesis"), None);
        assert_eq!(parse_self_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 u 3"), None);
    }

    #[test]
    fn shares_add_up_and_backwards_counters_are_refused() {
        let a = CpuSample {
            process_ticks: 10,
            machine: [100, 0, 20, 300, 0, 0, 0, 10],
            cpus: 2,
        };
        let b = CpuSample {
            process_ticks: 160,
            machine: [220, 0, 40, 330, 10, 5, 5, 50],
            cpus: 2,
        };
        let u = between(&a, &b).unwrap();
        assert!((u.process_cpu_s - 1.5).abs() < 1e-9);
        // Deltas: busy 120 + 20 + 5 + 5 = 150, idle 30 + 10 = 40, steal 40; of 230.
        assert!((u.busy_pct - 100.0 * 150.0 / 230.0).abs() < 1e-9);
        assert!((u.idle_pct - 100.0 * 40.0 / 230.0).abs() < 1e-9);
        assert!((u.steal_pct - 100.0 * 40.0 / 230.0).abs() < 1e-9);
        assert!((u.busy_pct + u.idle_pct + u.steal_pct - 100.0).abs() < 1e-9);
        // 230 ticks over 2 CPUs is a 115-tick window; busy 150, this process 150.
        assert!(u.other_cpus.abs() < 1e-9);
        let busier = CpuSample {
            machine: [335, 0, 40, 330, 10, 5, 5, 50],
            ..b
        };
        // 115 more busy ticks, none of them this process's, in a 172.5-tick window.
        let u = between(&a, &busier).unwrap();
        assert!((u.other_cpus - 115.0 / 172.5).abs() < 1e-9);
        assert_eq!(between(&b, &a), None);
        assert_eq!(between(&a, &a), None);
    }

    #[test]
    fn report_fields_are_per_op_and_per_second() {
        let mut rep = crate::Report::new(&crate::Options::defaults());
        rep.ops = 1000;
        rep.measured_s = 2.0;
        report(
            &mut rep,
            Some(CpuUse {
                process_cpu_s: 3.0,
                busy_pct: 70.0,
                idle_pct: 20.0,
                steal_pct: 10.0,
                other_cpus: 0.5,
            }),
        );
        let j = rep.to_json();
        for k in [
            "\"cpu_us_per_op\":3000",
            "\"process_cpus\":1.5",
            "\"host_busy_pct\":70",
            "\"host_idle_pct\":20",
            "\"host_steal_pct\":10",
            "\"host_other_cpus\":0.5",
        ] {
            assert!(j.contains(k), "{k} missing in {j}");
        }
        let mut none = crate::Report::new(&crate::Options::defaults());
        report(&mut none, None);
        assert!(!none.to_json().contains("cpu_us_per_op"));
    }

    #[test]
    fn this_machine_can_be_sampled_when_it_has_proc() {
        if std::path::Path::new("/proc/stat").exists() {
            let a = sample().expect("a /proc/stat that parses");
            assert!(a.machine.iter().sum::<u64>() > 0);
        }
    }
}
