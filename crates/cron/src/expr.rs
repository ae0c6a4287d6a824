//! Schedule expressions as EventBridge and EventBridge Scheduler read them:
//! `rate(5 minutes)`, `cron(Minutes Hours Day-of-month Month Day-of-week Year)` (UTC; one of
//! the day fields is `?`; `L`, `W`, `#`, names, ranges, lists and steps) and Scheduler's
//! one-time `at(yyyy-mm-ddThh:mm:ss)`.

use crate::civil::{civil_from_days, days_from_civil, days_in_month, weekday};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Why an expression is not valid (the message names the expression).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Parameter ScheduleExpression is not valid: {0}")]
pub struct ExprError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// Every so many milliseconds (from the schedule's start).
    Rate(i64),
    Cron(Box<Cron>),
    /// Once, at this instant.
    At(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    months: Vec<bool>,
    years: Option<Vec<bool>>,
    dom: Dom,
    dow: Dow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Dom {
    Any,
    Days(Vec<bool>),
    Last,
    NearestWeekday(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Dow {
    Any,
    Days(Vec<bool>),
    /// The last such weekday of the month (`6L`).
    Last(u32),
    /// The n-th such weekday of the month (`6#3`).
    Nth(u32, u32),
}

const YEAR_MIN: i64 = 1970;
const YEAR_MAX: i64 = 2199;

fn bad(expr: &str) -> ExprError {
    ExprError(expr.to_string())
}

fn name_value(s: &str, names: &[&str], base: u32) -> Option<u32> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + base)
}

/// A field's set of values in `lo..=hi` (`*`, `a`, `a-b`, `a/n`, `a-b/n`, `*/n`, lists).
fn field(text: &str, lo: u32, hi: u32, names: &[&str]) -> Option<Vec<bool>> {
    let mut set = vec![false; hi as usize + 1];
    let value = |s: &str| -> Option<u32> {
        s.parse::<u32>()
            .ok()
            .or_else(|| name_value(s, names, lo))
            .filter(|v| (lo..=hi).contains(v))
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a > b {
            return None;
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Some(set)
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_cron(expr: &str, body: &str) -> Result<Cron, ExprError> {
    let f: Vec<&str> = body.split_whitespace().collect();
    let [mi, h, dom, mo, dow, y] = f.as_slice() else {
        return Err(bad(expr));
    };
    let dom = match *dom {
        "?" => Dom::Any,
        "L" => Dom::Last,
        d if d.ends_with('W') => Dom::NearestWeekday(
            d.trim_end_matches('W')
                .parse()
                .ok()
                .filter(|n| (1..=31).contains(n))
                .ok_or_else(|| bad(expr))?,
        ),
        d => Dom::Days(field(d, 1, 31, &[]).ok_or_else(|| bad(expr))?),
    };
    let day = |s: &str| -> Option<u32> {
        s.parse::<u32>()
            .ok()
            .or_else(|| name_value(s, DAYS, 1))
            .filter(|d| (1..=7).contains(d))
    };
    let dow = match *dow {
        "?" => Dow::Any,
        d if d.ends_with('L') && d.len() > 1 => {
            Dow::Last(day(&d[..d.len() - 1]).ok_or_else(|| bad(expr))?)
        }
        d if d.contains('#') => {
            let (a, n) = d.split_once('#').ok_or_else(|| bad(expr))?;
            let n = n.parse().ok().filter(|n| (1..=5).contains(n));
            Dow::Nth(
                day(a).ok_or_else(|| bad(expr))?,
                n.ok_or_else(|| bad(expr))?,
            )
        }
        d => Dow::Days(field(d, 1, 7, DAYS).ok_or_else(|| bad(expr))?),
    };
    // Exactly one of the day fields is `?`.
    if matches!(dom, Dom::Any) == matches!(dow, Dow::Any) {
        return Err(bad(expr));
    }
    let years = if *y == "*" {
        None
    } else {
        Some(field(y, YEAR_MIN as u32, YEAR_MAX as u32, &[]).ok_or_else(|| bad(expr))?)
    };
    Ok(Cron {
        minutes: field(mi, 0, 59, &[]).ok_or_else(|| bad(expr))?,
        hours: field(h, 0, 23, &[]).ok_or_else(|| bad(expr))?,
        months: field(mo, 1, 12, MONTHS).ok_or_else(|| bad(expr))?,
        years,
        dom,
        dow,
    })
}

fn parse_rate(expr: &str, body: &str) -> Result<i64, ExprError> {
    let (n, unit) = body.trim().split_once(' ').ok_or_else(|| bad(expr))?;
    let n: i64 = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(expr))?;
    let unit_ms = match (unit.trim(), n) {
        ("minute", 1) | ("minutes", 2..) => MINUTE_MS,
        ("hour", 1) | ("hours", 2..) => 60 * MINUTE_MS,
        ("day", 1) | ("days", 2..) => DAY_MS,
        _ => return Err(bad(expr)),
    };
    // A period so long that it overflows (or that `next_after`'s sums would) is no rate: it
    // panicked a debug build's worker and, wrapped, could be a few milliseconds.
    n.checked_mul(unit_ms)
        .filter(|p| *p <= MAX_PERIOD_MS)
        .ok_or_else(|| bad(expr))
}

/// Longest rate accepted: far beyond any schedule, small enough that a start time plus a few
/// periods stays within `i64`.
const MAX_PERIOD_MS: i64 = i64::MAX / 8;

fn parse_at(expr: &str, body: &str) -> Result<i64, ExprError> {
    let b = body.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> { body.get(r)?.parse().ok() };
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad(expr));
    }
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    match (y, m, d, hh, mm, ss) {
        (Some(y), Some(m), Some(d), Some(hh), Some(mm), Some(ss))
            if (1..=12).contains(&m)
                && d >= 1
                && d <= days_in_month(i64::from(y), m)
                && hh < 24
                && mm < 60
                && ss < 60 =>
        {
            let days = days_from_civil(i64::from(y), m, d);
            Ok(days * DAY_MS + i64::from(hh * 3600 + mm * 60 + ss) * 1000)
        }
        _ => Err(bad(expr)),
    }
}

impl Expression {
    pub fn parse(expr: &str) -> Result<Self, ExprError> {
        let t = expr.trim();
        let inner = |prefix: &str| {
            t.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(body) = inner("rate(") {
            Ok(Self::Rate(parse_rate(expr, body)?))
        } else if let Some(body) = inner("cron(") {
            Ok(Self::Cron(Box::new(parse_cron(expr, body)?)))
        } else if let Some(body) = inner("at(") {
            Ok(Self::At(parse_at(expr, body)?))
        } else {
            Err(bad(expr))
        }
    }

    /// The first tick strictly after `after_ms`; `start_ms` anchors rates.
    pub fn next_after(&self, after_ms: i64, start_ms: i64) -> Option<i64> {
        match self {
            Self::Rate(period) => {
                if after_ms < start_ms {
                    return Some(start_ms + period);
                }
                let n = (after_ms - start_ms) / period + 1;
                Some(start_ms + n * period)
            }
            Self::At(t) => (*t > after_ms).then_some(*t),
            Self::Cron(c) => c.next_after(after_ms),
        }
    }
}

impl Cron {
    fn day_matches(&self, days: i64) -> bool {
        let (y, m, d) = civil_from_days(days);
        let dim = days_in_month(y, m);
        let wd = weekday(days);
        let dom_ok = match &self.dom {
            Dom::Any => true,
            Dom::Days(set) => set[d as usize],
            Dom::Last => d == dim,
            Dom::NearestWeekday(n) => {
                let target = (*n).min(dim);
                let tdays = days - i64::from(d) + i64::from(target);
                let twd = weekday(tdays);
                let chosen = match twd {
                    7 if target == 1 => target + 2, // Saturday the 1st: Monday the 3rd
                    7 => target - 1,
                    1 if target == dim => target - 2, // Sunday the last: Friday
                    1 => target + 1,
                    _ => target,
                };
                d == chosen
            }
        };
        let dow_ok = match &self.dow {
            Dow::Any => true,
            Dow::Days(set) => set[wd as usize],
            Dow::Last(w) => wd == *w && d + 7 > dim,
            Dow::Nth(w, n) => wd == *w && (d - 1) / 7 + 1 == *n,
        };
        dom_ok && dow_ok
    }

    fn next_after(&self, after_ms: i64) -> Option<i64> {
        // The next whole minute after `after_ms`.
        let start = after_ms.div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS;
        let mut day = start.div_euclid(DAY_MS);
        let mut minute_of_day = (start.rem_euclid(DAY_MS) / MINUTE_MS) as u32;
        loop {
            let (y, m, _) = civil_from_days(day);
            if y > YEAR_MAX {
                return None;
            }
            let year_ok = self
                .years
                .as_ref()
                .is_none_or(|set| (YEAR_MIN..=YEAR_MAX).contains(&y) && set[y as usize]);
            if year_ok && self.months[m as usize] && self.day_matches(day) {
                for mod_ in minute_of_day..1440 {
                    if self.hours[(mod_ / 60) as usize] && self.minutes[(mod_ % 60) as usize] {
                        return Some(day * DAY_MS + i64::from(mod_) * MINUTE_MS);
                    }
                }
            }
            day += 1;
            minute_of_day = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, hh: i64, mm: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + (hh * 60 + mm) * MINUTE_MS
    }

    fn next(expr: &str, after: i64) -> i64 {
        Expression::parse(expr)
            .expect("valid")
            .next_after(after, 0)
            .expect("a tick")
    }

    #[test]
    fn rates() {
        let e = Expression::parse("rate(5 minutes)").expect("valid");
        assert_eq!(e, Expression::Rate(300_000));
        assert_eq!(e.next_after(1_000, 1_000), Some(301_000));
        assert_eq!(e.next_after(301_000, 1_000), Some(601_000));
        assert_eq!(
            Expression::parse("rate(1 day)").expect("valid"),
            Expression::Rate(DAY_MS)
        );
        let long = Expression::parse("rate(1000000 days)").expect("valid");
        assert_eq!(long.next_after(5, 1), Some(1 + 1_000_000 * DAY_MS));
        for bad in [
            "rate(1 minutes)",
            "rate(0 minutes)",
            "rate(2 minute)",
            "rate(5 weeks)",
            "rate()",
            "rate(9223372036854775807 minutes)",
            "rate(153722867280913 minutes)",
            "rate(106751991167301 days)",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn crons() {
        let base = at(2026, 12, 6, 5, 46); // a Sunday
        assert_eq!(next("cron(0/15 * * * ? *)", base), at(2026, 12, 6, 6, 0));
        assert_eq!(next("cron(0 10 * * ? *)", base), at(2026, 12, 6, 10, 0));
        assert_eq!(
            next("cron(15 10 ? * 6L 2027)", base),
            at(2027, 1, 29, 10, 15)
        );
        assert_eq!(
            next("cron(0 18 ? * MON-FRI *)", base),
            at(2026, 12, 7, 18, 0)
        );
        assert_eq!(next("cron(0 8 1 * ? *)", base), at(2027, 1, 1, 8, 0));
        assert_eq!(next("cron(0 0 L * ? *)", base), at(2026, 12, 31, 0, 0));
        assert_eq!(next("cron(0 9 ? * 2#1 *)", base), at(2026, 12, 7, 9, 0));
        assert_eq!(
            next("cron(30 12 ? JAN SUN *)", base),
            at(2027, 1, 3, 12, 30)
        );
        assert_eq!(next("cron(* * * * ? *)", base), base + MINUTE_MS);
        // 2027-05-01 is a Saturday: 1W is Monday the 3rd.
        assert_eq!(next("cron(0 0 1W MAY ? 2027)", base), at(2027, 5, 3, 0, 0));
        assert!(Expression::parse("cron(0 0 2099 * * *)").is_err());
        for bad in [
            "cron(0 0 * * * *)",
            "cron(0 0 ? * ? *)",
            "cron(60 * * * ? *)",
            "cron(* * * *)",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_time() {
        let e = Expression::parse("at(2027-01-02T03:04:05)").expect("valid");
        let t = at(2027, 1, 2, 3, 4) + 5_000;
        assert_eq!(e.next_after(t - 1, 0), Some(t));
        assert_eq!(e.next_after(t, 0), None);
        assert!(Expression::parse("at(2027-02-30T00:00:00)").is_err());
    }
}
