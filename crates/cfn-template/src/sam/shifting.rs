//! Traffic shifting of an alias (from `DeploymentPreference`), as data for the engine.
//!
//! The transform generates what samtranslator generates (a CodeDeploy application, a
//! deployment group and the alias's `UpdatePolicy.CodeDeployLambdaAliasUpdate`); the engine
//! does not run CodeDeploy: it reads [`traffic_shifting`] for an alias and shifts the alias
//! weights itself.

use serde_json::Value;

use crate::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficShiftingKind {
    AllAtOnce,
    /// `percent` of traffic for `minutes`, then everything.
    Canary {
        percent: u32,
        minutes: u32,
    },
    /// `percent` more every `minutes`.
    Linear {
        percent: u32,
        every_minutes: u32,
    },
}

/// How an alias moves to a new version.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficShifting {
    /// The deployment preference type as written (`Canary10Percent5Minutes`, ...).
    pub config_name: String,
    pub kind: TrafficShiftingKind,
    /// `BeforeAllowTrafficHook` / `AfterAllowTrafficHook` functions (still intrinsics).
    pub pre_traffic_hook: Option<Value>,
    pub post_traffic_hook: Option<Value>,
}

/// Parses `Canary10Percent5Minutes`, `Linear10PercentEvery1Minute`, `AllAtOnce` (with or
/// without the `CodeDeployDefault.Lambda` prefix).
pub fn parse_config_name(name: &str) -> Option<TrafficShiftingKind> {
    let name = name
        .strip_prefix("CodeDeployDefault.Lambda")
        .unwrap_or(name);
    if name == "AllAtOnce" {
        return Some(TrafficShiftingKind::AllAtOnce);
    }
    let num = |s: &str| -> Option<(u32, String)> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        let n = digits.parse().ok()?;
        Some((n, s[digits.len()..].to_string()))
    };
    if let Some(rest) = name.strip_prefix("Canary") {
        let (percent, rest) = num(rest)?;
        let rest = rest.strip_prefix("Percent")?;
        let (minutes, rest) = num(rest)?;
        return matches!(rest.as_str(), "Minutes" | "Minute")
            .then_some(TrafficShiftingKind::Canary { percent, minutes });
    }
    if let Some(rest) = name.strip_prefix("Linear") {
        let (percent, rest) = num(rest)?;
        let rest = rest.strip_prefix("PercentEvery")?;
        let (every_minutes, rest) = num(rest)?;
        return matches!(rest.as_str(), "Minutes" | "Minute").then_some(
            TrafficShiftingKind::Linear {
                percent,
                every_minutes,
            },
        );
    }
    None
}

/// The traffic shifting of an alias in a processed template: follows the alias's
/// `UpdatePolicy.CodeDeployLambdaAliasUpdate` to its deployment group's
/// `DeploymentConfigName` (`Fn::Sub ["CodeDeployDefault.Lambda${ConfigName}", {ConfigName}]`
/// or a plain string).
pub fn traffic_shifting(template: &Template, alias_logical_id: &str) -> Option<TrafficShifting> {
    let alias = template.resources.get(alias_logical_id)?;
    let update = alias
        .update_policy
        .as_ref()?
        .get("CodeDeployLambdaAliasUpdate")?;
    let group_id = update.get("DeploymentGroupName")?.get("Ref")?.as_str()?;
    let group = template.resources.get(group_id)?;
    let config = group.properties.get("DeploymentConfigName")?;
    let config_name = match config {
        Value::String(s) => s.clone(),
        other => {
            let parts = other.get("Fn::Sub")?.as_array()?;
            let template_text = parts.first()?.as_str()?;
            let name = parts.get(1)?.get("ConfigName")?.as_str()?;
            template_text.replace("${ConfigName}", name)
        }
    };
    let kind = parse_config_name(&config_name)?;
    Some(TrafficShifting {
        config_name: config_name
            .strip_prefix("CodeDeployDefault.Lambda")
            .unwrap_or(&config_name)
            .to_string(),
        kind,
        pre_traffic_hook: update.get("BeforeAllowTrafficHook").cloned(),
        post_traffic_hook: update.get("AfterAllowTrafficHook").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names() {
        assert_eq!(
            parse_config_name("AllAtOnce"),
            Some(TrafficShiftingKind::AllAtOnce)
        );
        assert_eq!(
            parse_config_name("Canary10Percent5Minutes"),
            Some(TrafficShiftingKind::Canary {
                percent: 10,
                minutes: 5
            })
        );
        assert_eq!(
            parse_config_name("CodeDeployDefault.LambdaLinear10PercentEvery1Minute"),
            Some(TrafficShiftingKind::Linear {
                percent: 10,
                every_minutes: 1
            })
        );
        assert_eq!(parse_config_name("Bogus"), None);
    }
}
