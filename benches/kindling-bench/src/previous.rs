//! The warm path next to the previous committed run: the rows of sections 1 and 2 of a
//! results file (`benches/run` passes the committed `results/latest.txt` with `--previous`),
//! and the warm-path targets with the arithmetic of what the machine's cores allow.

use std::fmt::Write;

/// One warm row of a results file: section 1 (single client) or 2 (throughput).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub server: String,
    /// "rust"/"python" in section 1; the number of clients in section 2.
    pub key: String,
    /// p50 (section 1, µs) or invoke/s (section 2).
    pub value: f64,
    pub srv_cpu: Option<f64>,
    pub fn_cpu: Option<f64>,
    pub cli_cpu: Option<f64>,
}

/// The warm rows of one results file: section 1's (single client), then section 2's
/// (throughput).
pub type Sections = (Vec<Row>, Vec<Row>);

/// The rows of sections 1 and 2 of a results file written by `kindling-bench all`.
pub fn parse(text: &str) -> Sections {
    let (mut lat, mut tp) = (Vec::new(), Vec::new());
    let mut section = 0;
    for line in text.lines() {
        if line.starts_with("1. WARM") {
            section = 1;
            continue;
        }
        if line.starts_with("2. THROUGHPUT") {
            section = 2;
            continue;
        }
        if line.starts_with("3. ") {
            break;
        }
        if section == 0 || line.starts_with(' ') || line.starts_with("server") {
            continue;
        }
        let Some((left, right)) = line.split_once('|') else {
            continue;
        };
        let words: Vec<&str> = left.split_whitespace().collect();
        // Server labels are two words ("kindling process", "cargo-lambda watch", "floor: ...").
        if words.len() < 4 || words[0] == "floor:" {
            continue;
        }
        let cpu: Vec<Option<f64>> = right
            .split_whitespace()
            .take(3)
            .map(|w| w.parse().ok())
            .collect();
        let Ok(value) = words[3].parse::<f64>() else {
            continue;
        };
        let row = Row {
            server: format!("{} {}", words[0], words[1]),
            key: words[2].to_string(),
            value,
            srv_cpu: cpu.first().copied().flatten(),
            fn_cpu: cpu.get(1).copied().flatten(),
            cli_cpu: cpu.get(2).copied().flatten(),
        };
        if section == 1 {
            lat.push(row)
        } else {
            tp.push(row)
        }
    }
    (lat, tp)
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn change(now: f64, before: Option<f64>) -> String {
    match before {
        Some(b) if b > 0.0 => format!("{:+.0}%", (now - b) / b * 100.0),
        _ => String::new(),
    }
}

/// Section 7: this run's warm rows (Rust function) next to `previous`'s, and the warm-path
/// targets. `now` holds this run's rows in the same shape.
pub fn render(o: &mut String, now: &Sections, previous: Option<(&str, &Sections)>, cores: f64) {
    let _ = writeln!(
        o,
        "\n7. WARM PATH - this run next to the previous committed results ({})",
        previous.map_or("none given", |(label, _)| label)
    );
    let _ = writeln!(
        o,
        "{:<22} {:<12} {:>9} {:>9} {:>7} | {:>7} {:>7} {:>7}",
        "server", "row", "now", "before", "change", "srvCPU", "before", "change"
    );
    let empty = (Vec::new(), Vec::new());
    let prev = previous.map_or(&empty, |(_, p)| p);
    let find = |rows: &[Row], r: &Row| {
        rows.iter()
            .find(|p| p.server == r.server && p.key == r.key)
            .cloned()
    };
    for r in now.0.iter().filter(|r| r.key == "rust") {
        let p = find(&prev.0, r);
        let _ = writeln!(
            o,
            "{:<22} {:<12} {:>9.1} {:>9} {:>7} | {:>7} {:>7} {:>7}",
            r.server,
            "p50 us x1",
            r.value,
            cell(p.as_ref().map(|p| p.value), 1),
            change(r.value, p.as_ref().map(|p| p.value)),
            cell(r.srv_cpu, 1),
            cell(p.as_ref().and_then(|p| p.srv_cpu), 1),
            r.srv_cpu
                .map(|v| change(v, p.as_ref().and_then(|p| p.srv_cpu)))
                .unwrap_or_default(),
        );
    }
    for r in &now.1 {
        let p = find(&prev.1, r);
        let _ = writeln!(
            o,
            "{:<22} {:<12} {:>9.0} {:>9} {:>7} | {:>7} {:>7} {:>7}",
            r.server,
            format!("invoke/s x{}", r.key),
            r.value,
            cell(p.as_ref().map(|p| p.value), 0),
            change(r.value, p.as_ref().map(|p| p.value)),
            cell(r.srv_cpu, 1),
            cell(p.as_ref().and_then(|p| p.srv_cpu), 1),
            r.srv_cpu
                .map(|v| change(v, p.as_ref().and_then(|p| p.srv_cpu)))
                .unwrap_or_default(),
        );
    }
    let _ = writeln!(
        o,
        "  srvCPU = Kindling's CPU microseconds per invoke (getrusage of the process over the measured invokes)."
    );

    let _ = writeln!(
        o,
        "\n8. WARM PATH TARGETS (issue 15) and what {cores:.0} cores allow"
    );
    let pass = |b: bool| if b { "PASS" } else { "MISS" };
    for r in now
        .0
        .iter()
        .filter(|r| r.key == "rust" && r.server.starts_with("kindling"))
    {
        let _ = writeln!(
            o,
            "  p50 single client <= 80 us ({}): {:.1} us  {}",
            r.server,
            r.value,
            pass(r.value <= 80.0)
        );
        if let Some(c) = r.srv_cpu {
            let _ = writeln!(
                o,
                "  server CPU per warm invoke <= 30 us ({}, 1 client): {c:.1} us  {}",
                r.server,
                pass(c <= 30.0)
            );
        }
    }
    for r in now.1.iter().filter(|r| r.server.starts_with("kindling")) {
        let conns: usize = r.key.parse().unwrap_or(0);
        if !(4..=16).contains(&conns) {
            continue;
        }
        let (Some(s), Some(f), Some(c)) = (r.srv_cpu, r.fn_cpu, r.cli_cpu) else {
            continue;
        };
        // Every invoke costs the server, the function's runtime and the client this much CPU;
        // the cores give `cores` CPU-seconds per second.
        let total = s + f + c;
        let bound = cores * 1e6 / total;
        let _ = writeln!(
            o,
            "  >= 15,000 invokes/s ({}, {} clients): {:.0}/s  {}   bound: {cores:.0} x 1e6 us / ({s:.1} srv + {f:.1} fn + {c:.1} client = {total:.1} us) = {bound:.0}/s",
            r.server,
            conns,
            r.value,
            pass(r.value >= 15000.0),
        );
        let _ = writeln!(
            o,
            "      15,000/s leaves {:.1} us per invoke for all three; with this fn and client CPU the server may use {:.1} us",
            cores * 1e6 / 15000.0,
            cores * 1e6 / 15000.0 - f - c
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_warm_rows() {
        let text = "x\n1. WARM INVOKE LATENCY - single\n   each)\nserver                 func      p50      (reps)    p90 | srvCPU  fnCPU cliCPU | a\nkindling process       rust    119.2              211.5   361.8   1502.6  143.0     1    0 |   85.0   40.0   20.4 |   35.7   13.5   22.5 |   28%\nfloor: http echo       -        11.6               90.6 |   10.0    0.0   16.1 |\n  (reps) = range\n\n2. THROUGHPUT - N\nserver conns\nkindling namespaces        4    10618                  352     797     8401    0     0    0 |   73.9   60.3   19.1 |   17.0   65.8 |    1%   64\n3. COLD\nkindling process 1 2 3 | 4\n";
        let (lat, tp) = parse(text);
        assert_eq!(lat.len(), 1);
        assert_eq!(lat[0].server, "kindling process");
        assert_eq!(lat[0].value, 119.2);
        assert_eq!(lat[0].srv_cpu, Some(85.0));
        assert_eq!(tp.len(), 1);
        assert_eq!(tp[0].key, "4");
        assert_eq!(tp[0].value, 10618.0);
        assert_eq!(tp[0].cli_cpu, Some(19.1));
    }
}
