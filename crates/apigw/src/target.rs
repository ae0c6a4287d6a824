//! What an `AWS_PROXY` integration invokes: a function (with an optional version or alias)
//! named by its ARN, or by the `arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/
//! <function-arn>/invocations` URI that REST APIs (and SAM) use.

use kindling_model::{ArnContext, FunctionRef};

/// The function an integration invokes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionTarget {
    pub name: String,
    /// Version or alias, as written.
    pub qualifier: Option<String>,
}

impl FunctionTarget {
    /// The function ARN (qualified when a qualifier is set).
    pub fn arn(&self, ctx: &ArnContext) -> String {
        let base = ctx.function_arn(&self.name);
        match &self.qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }
}

/// Why an integration URI names no function Kindling can invoke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "Invalid integration URI specified: {0}. Expected a Lambda function ARN \
         (arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]) or \
         arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function-arn>/invocations"
    )]
    Malformed(String),
    #[error(
        "Invalid integration URI specified: {uri}. The function is in {region}/{account}; Kindling serves {ours}"
    )]
    Foreign {
        uri: String,
        region: String,
        account: String,
        ours: String,
    },
}

/// Parses an integration URI into the function it invokes.
pub fn parse(uri: &str, ctx: &ArnContext) -> Result<FunctionTarget, TargetError> {
    let malformed = || TargetError::Malformed(uri.to_string());
    let arn = if uri.starts_with("arn:aws:apigateway:")
        || uri.starts_with("arn:aws-") && uri.contains(":apigateway:")
    {
        let (_, rest) = uri.split_once(":lambda:path/").ok_or_else(malformed)?;
        let rest = rest
            .strip_prefix("2015-03-31/functions/")
            .ok_or_else(malformed)?;
        rest.strip_suffix("/invocations").ok_or_else(malformed)?
    } else {
        uri
    };
    if !arn.starts_with("arn:") {
        return Err(malformed());
    }
    let r = FunctionRef::parse(arn, false).map_err(|_| malformed())?;
    if r.is_foreign(ctx) {
        return Err(TargetError::Foreign {
            uri: uri.to_string(),
            region: r.region.unwrap_or_default(),
            account: r.account_id.unwrap_or_default(),
            ours: format!("{}/{}", ctx.region, ctx.account_id),
        });
    }
    Ok(FunctionTarget {
        name: r.name,
        qualifier: r.qualifier.map(|q| q.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ArnContext {
        ArnContext::new("us-east-1", "000000000000")
    }

    #[test]
    fn both_forms() {
        let plain = parse("arn:aws:lambda:us-east-1:000000000000:function:Fn", &ctx()).unwrap();
        assert_eq!(
            plain,
            FunctionTarget {
                name: "Fn".into(),
                qualifier: None
            }
        );
        let wrapped = parse(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:Fn:live/invocations",
            &ctx(),
        )
        .unwrap();
        assert_eq!(wrapped.qualifier.as_deref(), Some("live"));
        assert_eq!(
            wrapped.arn(&ctx()),
            "arn:aws:lambda:us-east-1:000000000000:function:Fn:live"
        );
        for bad in [
            "Fn",
            "arn:aws:lambda:us-east-1:000000000000:function:",
            "arn:aws:apigateway:us-east-1:lambda:path/functions/x",
            "https://example.com",
        ] {
            assert!(
                matches!(parse(bad, &ctx()), Err(TargetError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("arn:aws:lambda:eu-west-1:000000000000:function:Fn", &ctx()),
            Err(TargetError::Foreign { .. })
        ));
    }
}
