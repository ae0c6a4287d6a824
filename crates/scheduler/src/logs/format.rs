//! `LoggingConfig` as the platform honours it: Text or JSON platform records
//! (`{"time","type":"platform.start","record":{..}}`, as Lambda writes them with `LogFormat:
//! JSON`), the system log level that keeps or drops them, and the application log level that
//! drops function output records in JSON whose `level` is below it.

use kindling_model::function::LoggingConfig;
use kindling_runtime_api::telemetry::{Platform, write_platform_item};
use serde_json::Value;

/// Lambda's log levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "TRACE" => Self::Trace,
            "DEBUG" => Self::Debug,
            "INFO" => Self::Info,
            "WARN" | "WARNING" => Self::Warn,
            "ERROR" => Self::Error,
            "FATAL" | "CRITICAL" => Self::Fatal,
            _ => return None,
        })
    }
}

/// How a stream's records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFormat {
    pub json: bool,
    /// Platform records below this level are dropped (JSON only).
    pub system_level: Level,
    /// Function records in JSON with a `level` below this are dropped (JSON only).
    pub application_level: Level,
}

impl Default for LogFormat {
    fn default() -> Self {
        Self {
            json: false,
            system_level: Level::Info,
            application_level: Level::Trace,
        }
    }
}

impl LogFormat {
    pub fn of(config: &LoggingConfig) -> Self {
        if !config.log_format.eq_ignore_ascii_case("JSON") {
            return Self::default();
        }
        let level = |l: &Option<String>| l.as_deref().and_then(Level::parse).unwrap_or(Level::Info);
        Self {
            json: true,
            system_level: level(&config.system_log_level),
            application_level: level(&config.application_log_level),
        }
    }

    /// Whether a function output line is kept: in JSON format, a JSON record whose `level` is
    /// below the application log level is not.
    pub fn keeps_function_line(&self, line: &str) -> bool {
        if !self.json || self.application_level == Level::Trace || !line.starts_with('{') {
            return true;
        }
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
            return true;
        };
        let level = record
            .get("level")
            .or_else(|| record.get("log_level"))
            .and_then(Value::as_str)
            .and_then(Level::parse);
        level.is_none_or(|l| l >= self.application_level)
    }

    /// The JSON line of a platform record (`{"time","type","record"}`, the shape telemetry
    /// subscribers get).
    pub fn platform_line(&self, at_ms: i64, record: &Platform) -> String {
        let mut out = Vec::with_capacity(256);
        write_platform_item(&mut out, at_ms, record);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(format: &str, app: Option<&str>, sys: Option<&str>) -> LoggingConfig {
        LoggingConfig {
            log_format: format.into(),
            application_log_level: app.map(Into::into),
            system_log_level: sys.map(Into::into),
            log_group: "/aws/lambda/f".into(),
        }
    }

    #[test]
    fn text_keeps_everything_json_filters_by_level() {
        let text = LogFormat::of(&config("Text", Some("ERROR"), None));
        assert!(!text.json);
        assert!(text.keeps_function_line(r#"{"level":"DEBUG"}"#));
        let json = LogFormat::of(&config("JSON", Some("WARN"), Some("WARN")));
        assert!(!json.keeps_function_line(r#"{"level":"INFO","message":"x"}"#));
        assert!(json.keeps_function_line(r#"{"level":"ERROR","message":"x"}"#));
        assert!(json.keeps_function_line("plain print output"));
        assert!(json.keeps_function_line(r#"{"message":"no level"}"#));
        assert_eq!(json.system_level, Level::Warn);
        let info = LogFormat::of(&config("JSON", None, None));
        let line = info.platform_line(
            1_586_545_592_563,
            &Platform::Start {
                request_id: "r".into(),
                version: "$LATEST".into(),
            },
        );
        assert_eq!(
            line,
            r#"{"time":"2020-04-10T19:06:32.563Z","type":"platform.start","record":{"requestId":"r","version":"$LATEST"}}"#
        );
    }
}
