//! AWS::IAM::Role/Policy/ManagedPolicy: recorded, with the values `Ref` and `Fn::GetAtt`
//! return; Kindling has no IAM, and the resource's event says so.

use serde_json::{Map, Value};

use super::props::string;
use super::{Kindling, generated};
use crate::provider::{Provisioned, ResourceContext};

const NOTE: &str = "Kindling has no IAM: this resource is recorded (Ref and Fn::GetAtt work) but grants and denies nothing";

/// A stable id of IAM's shape (`AROA` + 17 characters) derived from the name.
fn role_id(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..17)
        .map(|i| ALPHABET[((h >> ((i * 3) % 60)) & 31) as usize] as char)
        .collect();
    format!("AROA{tail}")
}

pub fn record(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
    existing: Option<&str>,
) -> Provisioned {
    let account = &k.account_id;
    let mut out = match ctx.resource_type.as_str() {
        "AWS::IAM::Role" => {
            let name = existing
                .map(str::to_string)
                .or_else(|| string(props, "RoleName"))
                .unwrap_or_else(|| generated(ctx, 64));
            let path = string(props, "Path").unwrap_or_else(|| "/".into());
            Provisioned::named(name.clone())
                .attr("Arn", format!("arn:aws:iam::{account}:role{path}{name}"))
                .attr("RoleId", role_id(&name))
        }
        "AWS::IAM::ManagedPolicy" => {
            let name = string(props, "ManagedPolicyName").unwrap_or_else(|| generated(ctx, 128));
            let arn = existing
                .map(str::to_string)
                .unwrap_or_else(|| format!("arn:aws:iam::{account}:policy/{name}"));
            Provisioned::named(arn.clone()).attr("PolicyArn", arn)
        }
        _ => {
            let id = existing
                .map(str::to_string)
                .unwrap_or_else(|| generated(ctx, 128));
            Provisioned::named(id.clone()).attr("Id", id)
        }
    };
    out.note = Some(NOTE.to_string());
    out
}
