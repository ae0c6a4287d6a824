//! `kindling deploy` and `kindling delete-stack`: a CloudFormation client over HTTP that
//! packages local code, creates and executes a change set, streams each resource event as it
//! happens, prints the outputs, and fails with the failing resource's reason.

pub(crate) mod client;
mod package;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kindling_protocol::xml_read::Element;

use crate::cli::{DeleteStackArgs, DeployArgs};
use client::{ApiError, Client, members};

const NO_CHANGES: &str = "The submitted information didn't contain changes.";

fn text(e: &Element, name: &str) -> String {
    e.child_text(name).unwrap_or_default().to_string()
}

/// The stack's name from the current folder (`my_app` → `my-app`).
fn default_stack_name() -> String {
    let dir = std::env::current_dir()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "kindling-app".into());
    let mut name: String = dir
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "stack-");
    }
    name
}

/// Whether a stack of that name exists (and is more than a review placeholder).
fn stack_status(client: &Client, name: &str) -> anyhow::Result<Option<(String, String)>> {
    match client.cfn("DescribeStacks", &[("StackName".into(), name.into())]) {
        Ok(r) => {
            let s = members(&r, "Stacks");
            Ok(s.first()
                .map(|s| (text(s, "StackId"), text(s, "StackStatus"))))
        }
        Err(e)
            if e.downcast_ref::<ApiError>()
                .is_some_and(|a| a.message.contains("does not exist")) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Prints the stack's new events (oldest first) and returns them.
fn print_new_events(
    client: &Client,
    stack: &str,
    seen: &mut HashSet<String>,
) -> anyhow::Result<Vec<Element>> {
    let r = client.cfn("DescribeStackEvents", &[("StackName".into(), stack.into())])?;
    let mut fresh: Vec<Element> = members(&r, "StackEvents")
        .into_iter()
        .filter(|e| !seen.contains(&text(e, "EventId")))
        .cloned()
        .collect();
    fresh.reverse();
    for e in &fresh {
        seen.insert(text(e, "EventId"));
        let time = text(e, "Timestamp");
        let clock = time.get(11..19).unwrap_or(&time);
        let reason = text(e, "ResourceStatusReason");
        println!(
            "{clock}  {:<36} {:<32} {}{}",
            text(e, "ResourceStatus"),
            text(e, "ResourceType"),
            text(e, "LogicalResourceId"),
            if reason.is_empty() {
                String::new()
            } else {
                format!("  {reason}")
            }
        );
    }
    Ok(fresh)
}

fn is_root_terminal(e: &Element, stack_id: &str) -> bool {
    text(e, "ResourceType") == "AWS::CloudFormation::Stack"
        && text(e, "PhysicalResourceId") == stack_id
        && !text(e, "ResourceStatus").ends_with("_IN_PROGRESS")
}

/// Streams events until the stack settles; returns its final status and every new event.
fn follow(
    client: &Client,
    stack_id: &str,
    seen: &mut HashSet<String>,
) -> anyhow::Result<(String, Vec<Element>)> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut all = Vec::new();
    loop {
        let fresh = print_new_events(client, stack_id, seen)?;
        let done = fresh.iter().any(|e| is_root_terminal(e, stack_id));
        all.extend(fresh);
        if done {
            break;
        }
        if Instant::now() > deadline {
            bail!("the stack did not settle within an hour");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = stack_status(client, stack_id)?
        .map(|(_, s)| s)
        .unwrap_or_default();
    Ok((status, all))
}

fn print_outputs(client: &Client, stack: &str) -> anyhow::Result<()> {
    let r = client.cfn("DescribeStacks", &[("StackName".into(), stack.into())])?;
    let Some(s) = members(&r, "Stacks").first().copied().cloned() else {
        return Ok(());
    };
    let outputs = members(&s, "Outputs");
    if outputs.is_empty() {
        return Ok(());
    }
    println!("\nOutputs");
    for o in outputs {
        let desc = text(o, "Description");
        let value = text(o, "OutputValue");
        println!("  {:<28} {}", text(o, "OutputKey"), value);
        if let Some(local) = served_at(client.endpoint(), &value) {
            println!("  {:<28} (served by Kindling at {local})", "");
        }
        if !desc.is_empty() {
            println!("  {:<28} ({desc})", "");
        }
    }
    Ok(())
}

/// Where Kindling serves an API Gateway URL as AWS prints it
/// (`https://<api-id>.execute-api.<region>.amazonaws.com/<path>`): the host form under
/// `localhost` (which resolves to the loopback address) at the endpoint's port.
fn served_at(endpoint: &str, value: &str) -> Option<String> {
    let rest = value.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (api, aws) = host.split_once(".execute-api.")?;
    if api.is_empty() || !aws.ends_with(".amazonaws.com") {
        return None;
    }
    let authority = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))?;
    let port = authority.rsplit_once(':').map(|(_, p)| p)?;
    let scheme = if endpoint.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    Some(format!(
        "{scheme}://{api}.execute-api.localhost:{port}/{path}"
    ))
}

fn wait_change_set(client: &Client, id: &str) -> anyhow::Result<Element> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let cs = client.cfn("DescribeChangeSet", &[("ChangeSetName".into(), id.into())])?;
        let status = text(&cs, "Status");
        if !status.ends_with("_PENDING") && !status.ends_with("_IN_PROGRESS") {
            return Ok(cs);
        }
        if Instant::now() > deadline {
            bail!("the change set was not ready within 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let client = Client::new(&args.endpoint.endpoint, &args.endpoint.region)?;
    let template_file = args.template_file.clone().unwrap_or_else(|| {
        let built = Path::new(".aws-sam/build/template.yaml");
        if built.is_file() {
            built.to_path_buf()
        } else {
            "template.yaml".into()
        }
    });
    let body = std::fs::read_to_string(&template_file)
        .with_context(|| format!("reading {}", template_file.display()))?;
    let mut doc = kindling_cfn_template::parse_document(&body)
        .map_err(|e| anyhow::anyhow!("{}: {e}", template_file.display()))?;
    let base = template_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stack = args.stack_name.clone().unwrap_or_else(default_stack_name);
    package::package(&client, &mut doc, base, &args.bucket)?;
    let template = serde_json::to_string(&doc).context("writing the template")?;
    let mut params: Vec<(String, String)> = vec![("StackName".into(), stack.clone())];
    if template.len() > kindling_cfn_template::MAX_TEMPLATE_BODY_BYTES {
        let key = format!(
            "{}.template",
            &client::sha256_hex(template.as_bytes())[..32]
        );
        client.ensure_bucket(&args.bucket)?;
        client.put_object(&args.bucket, &key, template.into_bytes())?;
        params.push((
            "TemplateURL".into(),
            format!("{}/{}/{key}", client.endpoint(), args.bucket),
        ));
    } else {
        params.push(("TemplateBody".into(), template));
    }
    let existing = stack_status(&client, &stack)?;
    let kind = match &existing {
        Some((_, s)) if s != "REVIEW_IN_PROGRESS" => "UPDATE",
        _ => "CREATE",
    };
    for (i, cap) in [
        "CAPABILITY_IAM",
        "CAPABILITY_NAMED_IAM",
        "CAPABILITY_AUTO_EXPAND",
    ]
    .iter()
    .enumerate()
    {
        params.push((format!("Capabilities.member.{}", i + 1), (*cap).into()));
    }
    for (i, o) in args.parameter_overrides.iter().enumerate() {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--parameter-overrides takes KEY=VALUE, not {o}"))?;
        params.push((
            format!("Parameters.member.{}.ParameterKey", i + 1),
            k.into(),
        ));
        params.push((
            format!("Parameters.member.{}.ParameterValue", i + 1),
            v.into(),
        ));
    }
    let name = format!(
        "kindling-deploy-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    params.push(("ChangeSetName".into(), name));
    params.push(("ChangeSetType".into(), kind.into()));
    let created = client.cfn("CreateChangeSet", &params)?;
    let cs_id = text(&created, "Id");
    let stack_id = text(&created, "StackId");
    let cs = wait_change_set(&client, &cs_id)?;
    if text(&cs, "Status") == "FAILED" {
        let reason = text(&cs, "StatusReason");
        if reason.starts_with(NO_CHANGES) {
            println!("No changes to deploy: stack {stack} is up to date");
            client.cfn("DeleteChangeSet", &[("ChangeSetName".into(), cs_id)])?;
            print_outputs(&client, &stack)?;
            return Ok(());
        }
        bail!("the change set failed: {reason}");
    }
    println!(
        "Deploying stack {stack} ({} change(s))",
        members(&cs, "Changes").len()
    );
    let mut seen: HashSet<String> = HashSet::new();
    // Events before this deployment are not shown.
    if kind == "UPDATE" {
        let r = client.cfn(
            "DescribeStackEvents",
            &[("StackName".into(), stack_id.clone())],
        )?;
        seen.extend(
            members(&r, "StackEvents")
                .iter()
                .map(|e| text(e, "EventId")),
        );
    }
    // ExecuteChangeSet answers once the stack settles (or after the server's linger): run
    // it beside the event stream.
    let exec = {
        let client = Client::new(&args.endpoint.endpoint, &args.endpoint.region)?;
        let cs_id = cs_id.clone();
        std::thread::spawn(move || {
            client
                .cfn("ExecuteChangeSet", &[("ChangeSetName".into(), cs_id)])
                .map(|_| ())
        })
    };
    let (status, events) = follow(&client, &stack_id, &mut seen)?;
    exec.join()
        .map_err(|_| anyhow::anyhow!("the ExecuteChangeSet call panicked"))??;
    if status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE" {
        print_outputs(&client, &stack)?;
        println!(
            "\nStack {stack}: {status} in {:.2}s",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let failure = events
        .iter()
        .find(|e| {
            text(e, "ResourceStatus").ends_with("_FAILED")
                && text(e, "ResourceType") != "AWS::CloudFormation::Stack"
        })
        .map(|e| {
            format!(
                "{} ({}): {}",
                text(e, "LogicalResourceId"),
                text(e, "ResourceType"),
                text(e, "ResourceStatusReason")
            )
        })
        .unwrap_or_else(|| status.clone());
    bail!("deploying stack {stack} failed ({status}): {failure}")
}

pub fn delete_stack(args: &DeleteStackArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.endpoint.endpoint, &args.endpoint.region)?;
    let Some((stack_id, _)) = stack_status(&client, &args.stack_name)? else {
        println!("Stack {} does not exist", args.stack_name);
        return Ok(());
    };
    let mut seen: HashSet<String> = HashSet::new();
    let r = client.cfn(
        "DescribeStackEvents",
        &[("StackName".into(), stack_id.clone())],
    )?;
    seen.extend(
        members(&r, "StackEvents")
            .iter()
            .map(|e| text(e, "EventId")),
    );
    let exec = {
        let client = Client::new(&args.endpoint.endpoint, &args.endpoint.region)?;
        let id = stack_id.clone();
        std::thread::spawn(move || {
            client
                .cfn("DeleteStack", &[("StackName".into(), id)])
                .map(|_| ())
        })
    };
    let (status, events) = follow(&client, &stack_id, &mut seen)?;
    exec.join()
        .map_err(|_| anyhow::anyhow!("the DeleteStack call panicked"))??;
    if status == "DELETE_COMPLETE" {
        println!("Stack {} deleted", args.stack_name);
        return Ok(());
    }
    let failure = events
        .iter()
        .find(|e| text(e, "ResourceStatus") == "DELETE_FAILED")
        .map(|e| {
            format!(
                "{}: {}",
                text(e, "LogicalResourceId"),
                text(e, "ResourceStatusReason")
            )
        })
        .unwrap_or_else(|| status.clone());
    bail!(
        "deleting stack {} failed ({status}): {failure}",
        args.stack_name
    )
}

#[cfg(test)]
mod tests {
    use super::served_at;

    #[test]
    fn api_urls_as_kindling_serves_them() {
        assert_eq!(
            served_at(
                "http://127.0.0.1:9001",
                "https://abc123.execute-api.us-east-1.amazonaws.com/Prod/hello/"
            )
            .as_deref(),
            Some("http://abc123.execute-api.localhost:9001/Prod/hello/")
        );
        assert_eq!(
            served_at("http://127.0.0.1:9001", "https://example.com/x"),
            None
        );
        assert_eq!(
            served_at(
                "http://127.0.0.1:9001",
                "arn:aws:lambda:us-east-1:1:function:f"
            ),
            None
        );
    }
}
