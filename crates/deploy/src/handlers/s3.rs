//! AWS::S3::Bucket over the object store.

use kindling_objects::ObjectError;
use serde_json::{Map, Value};

use super::props::string;
use super::{Kindling, Outcome, generated};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};

/// The template's name, else a generated one in S3's alphabet (lowercase, ≤ 63).
pub fn bucket_name(ctx: &ResourceContext, props: &Map<String, Value>) -> String {
    string(props, "BucketName").unwrap_or_else(|| {
        generated(ctx, 63)
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    })
}

pub fn outcome(k: &Kindling, name: &str) -> Provisioned {
    Provisioned::named(name)
        .attr("Arn", format!("arn:aws:s3:::{name}"))
        .attr("DomainName", format!("{name}.s3.amazonaws.com"))
        .attr(
            "DualStackDomainName",
            format!("{name}.s3.dualstack.{}.amazonaws.com", k.region),
        )
        .attr(
            "RegionalDomainName",
            format!("{name}.s3.{}.amazonaws.com", k.region),
        )
        .attr(
            "WebsiteURL",
            format!("http://{name}.s3-website-{}.amazonaws.com", k.region),
        )
}

pub async fn create_bucket(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let name = bucket_name(ctx, props);
    let location = (k.region != "us-east-1").then_some(k.region.as_str());
    k.objects
        .create_bucket(&name, location)
        .await
        .map_err(|e| match e {
            ObjectError::BucketAlreadyOwnedByYou { .. } => {
                ProvisionError::new(format!("{name} already exists"))
            }
            e => ProvisionError::new(e.to_string()),
        })?;
    Ok(outcome(k, &name))
}

pub async fn delete_bucket(k: &Kindling, name: &str) -> Result<(), ProvisionError> {
    match k.objects.delete_bucket(name).await {
        Ok(()) | Err(ObjectError::NoSuchBucket { .. }) => Ok(()),
        Err(e) => Err(ProvisionError::new(e.to_string())),
    }
}
