//! The Prometheus text exposition format (0.0.4): `# HELP`, `# TYPE`, then one sample per line
//! with escaped label values.

use std::fmt::Write;

use crate::Histogram;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// A document being written. Each metric's samples must follow its [`Exposition::header`].
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Exposition {
    pub fn content_type() -> &'static str {
        CONTENT_TYPE
    }

    /// `# HELP` and `# TYPE` of a metric (counters are named without `_total` here).
    pub fn header(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
        self
    }

    /// A histogram's `_bucket`, `_sum` and `_count` samples.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        let (buckets, sum, count) = h.snapshot();
        for (bound, n) in buckets {
            let mut le = String::new();
            write_value(&mut le, bound);
            self.out.push_str(name);
            self.out.push_str("_bucket");
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {n}");
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn write_value(out: &mut String, v: f64) {
    if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_samples_and_histograms() {
        let h = Histogram::new(&[0.5]);
        h.observe(std::time::Duration::from_millis(250));
        let mut e = Exposition::default();
        e.header("x_total", MetricType::Counter, "Things.").sample(
            "x_total",
            &[("fn", "a\"b\\c\nd")],
            3.0,
        );
        e.header("d_seconds", MetricType::Histogram, "Durations.")
            .histogram("d_seconds", &[("fn", "a")], &h);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{fn=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{fn=\"a\",le=\"0.5\"} 1\nd_seconds_bucket{fn=\"a\",le=\"+Inf\"} 1\n\
             d_seconds_sum{fn=\"a\"} 0.25\nd_seconds_count{fn=\"a\"} 1\n"
        );
    }
}
