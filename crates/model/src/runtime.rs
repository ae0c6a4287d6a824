//! The runtime identifiers Lambda's API accepts, and the families Kindling can execute.

/// Every value of the `Runtime` enum in Lambda's current API model.
pub const ALL_RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "nodejs4.3-edge",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "ruby4.0",
    "provided",
    "provided.al2",
    "provided.al2023",
];

/// How Kindling starts a function of a given runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeFamily {
    /// `provided*`: the code's (or a layer's) `bootstrap` executable.
    Provided,
    /// `python3.x`, with the wanted minor version.
    Python { minor: u32 },
    /// `nodejsN.x`, with the wanted major version.
    Node { major: u32 },
    /// `javaN` (`java8.al2` included), with the wanted major version.
    Java { major: u32 },
    /// `rubyX.Y`, with the wanted version.
    Ruby { major: u32, minor: u32 },
    /// Known to Lambda but not executable by Kindling (.NET, Go 1.x's own runtime).
    Unsupported,
}

/// True when `name` is a runtime identifier Lambda accepts.
pub fn is_known(name: &str) -> bool {
    ALL_RUNTIMES.contains(&name)
}

/// Classifies a runtime identifier.
pub fn family(name: &str) -> RuntimeFamily {
    if name.starts_with("provided") {
        return RuntimeFamily::Provided;
    }
    if let Some(minor) = name.strip_prefix("python3.").and_then(|m| m.parse().ok()) {
        return RuntimeFamily::Python { minor };
    }
    if let Some(major) = name
        .strip_prefix("nodejs")
        .and_then(|v| v.strip_suffix(".x"))
        .and_then(|m| m.parse().ok())
    {
        return RuntimeFamily::Node { major };
    }
    if let Some(major) = name
        .strip_prefix("java")
        .map(|v| v.strip_suffix(".al2").unwrap_or(v))
        .and_then(|m| m.parse().ok())
    {
        return RuntimeFamily::Java { major };
    }
    if let Some((major, minor)) = name
        .strip_prefix("ruby")
        .and_then(|v| v.split_once('.'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
    {
        return RuntimeFamily::Ruby { major, minor };
    }
    RuntimeFamily::Unsupported
}

/// Runtimes Lambda no longer accepts for new or updated functions (their "block function
/// create" and "block function update" dates have passed), with the runtime Lambda's message
/// recommends instead.
const DEPRECATED: &[(&str, &str)] = &[
    ("nodejs", "nodejs22.x"),
    ("nodejs4.3", "nodejs22.x"),
    ("nodejs4.3-edge", "nodejs22.x"),
    ("nodejs6.10", "nodejs22.x"),
    ("nodejs8.10", "nodejs22.x"),
    ("nodejs10.x", "nodejs22.x"),
    ("nodejs12.x", "nodejs22.x"),
    ("nodejs14.x", "nodejs22.x"),
    ("nodejs16.x", "nodejs22.x"),
    ("java8", "java21"),
    ("python2.7", "python3.13"),
    ("python3.6", "python3.13"),
    ("python3.7", "python3.13"),
    ("python3.8", "python3.13"),
    ("dotnetcore1.0", "dotnet8"),
    ("dotnetcore2.0", "dotnet8"),
    ("dotnetcore2.1", "dotnet8"),
    ("dotnetcore3.1", "dotnet8"),
    ("dotnet6", "dotnet8"),
    ("go1.x", "provided.al2023"),
    ("ruby2.5", "ruby3.3"),
    ("ruby2.7", "ruby3.3"),
    ("provided", "provided.al2023"),
];

/// Lambda's refusal of a deprecated runtime at CreateFunction / UpdateFunctionConfiguration,
/// or `None` when `name` may be used.
pub fn deprecation_message(name: &str) -> Option<String> {
    let (_, instead) = DEPRECATED.iter().find(|(rt, _)| *rt == name)?;
    Some(format!(
        "The runtime parameter of {name} is no longer supported for creating or updating AWS \
         Lambda functions. We recommend you use the new runtime ({instead}) while creating or \
         updating functions."
    ))
}

/// How the host can run a runtime on an architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// As asked.
    Exact,
    /// On another version or through emulation; the text says what and reaches the user.
    Substitute(String),
    /// Not at all; the text names what is missing.
    Missing(String),
}

/// What the host can run, asked by the control plane at CreateFunction and
/// UpdateFunctionConfiguration (implemented by the data plane, which knows the host).
pub trait RuntimeSupport: Send + Sync {
    /// Whether functions of `runtime` (`None`: a container image) for `architecture`
    /// (`x86_64` / `arm64`) can run here. May take a while the first time (a one-off build).
    fn availability(&self, runtime: Option<&str>, architecture: &str) -> Availability;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_runtimes() {
        assert_eq!(family("provided.al2023"), RuntimeFamily::Provided);
        assert_eq!(family("python3.12"), RuntimeFamily::Python { minor: 12 });
        assert_eq!(family("nodejs20.x"), RuntimeFamily::Node { major: 20 });
        assert_eq!(family("java21"), RuntimeFamily::Java { major: 21 });
        assert_eq!(family("java8.al2"), RuntimeFamily::Java { major: 8 });
        assert_eq!(
            family("ruby3.3"),
            RuntimeFamily::Ruby { major: 3, minor: 3 }
        );
        assert_eq!(family("dotnet8"), RuntimeFamily::Unsupported);
        assert_eq!(family("go1.x"), RuntimeFamily::Unsupported);
        assert!(is_known("python3.11"));
        assert!(!is_known("python4"));
    }

    #[test]
    fn deprecated_runtimes_are_named() {
        let m = deprecation_message("python3.7").unwrap_or_default();
        assert!(m.contains("python3.7 is no longer supported"), "{m}");
        assert!(deprecation_message("nodejs14.x").is_some());
        assert!(deprecation_message("go1.x").is_some());
        assert!(deprecation_message("java8").is_some());
        assert!(deprecation_message("java8.al2").is_none());
        assert!(deprecation_message("python3.12").is_none());
        assert!(deprecation_message("ruby3.2").is_none());
    }
}
