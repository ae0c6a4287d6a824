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
    /// Known to Lambda but not executable by Kindling (Java, .NET, Ruby, old versions).
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
    RuntimeFamily::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_runtimes() {
        assert_eq!(family("provided.al2023"), RuntimeFamily::Provided);
        assert_eq!(family("python3.12"), RuntimeFamily::Python { minor: 12 });
        assert_eq!(family("nodejs20.x"), RuntimeFamily::Node { major: 20 });
        assert_eq!(family("java21"), RuntimeFamily::Unsupported);
        assert!(is_known("python3.11"));
        assert!(!is_known("python4"));
    }
}
