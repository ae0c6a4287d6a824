//! `kindling nodes`: the cluster as a running node sees it, read from its
//! `/_kindling/nodes` endpoint: every node with its heartbeat, load and what it holds, and who
//! owns each event source mapping and schedule.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use kindling_cluster::ClusterView;

use crate::cli::NodesArgs;
use crate::deploy_cli::client::Client;

pub fn run(args: &NodesArgs) -> anyhow::Result<()> {
    // Signed like every API call (the environment's key; in local mode the signature is not
    // checked): in shared mode the membership is for signed callers only.
    let client = Client::with_timeout(&args.endpoint, &args.region, Duration::from_secs(10))?;
    let url = format!("{}/_kindling/nodes", client.endpoint());
    let view: ClusterView = client
        .get("/_kindling/nodes", "lambda")?
        .error_for_status()
        .with_context(|| format!("reading {url}"))?
        .json()
        .with_context(|| format!("decoding {url}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    print!("{}", render(&view, now_ms()));
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The table `kindling nodes` prints.
pub fn render(view: &ClusterView, now_ms: i64) -> String {
    let mut out = format!(
        "cluster: {} (seen from {}{})\n",
        view.mode,
        view.node_id,
        if view.healthy { "" } else { ", FENCED" }
    );
    out.push_str(&format!(
        "{:<20} {:<22} {:<6} {:>9} {:>5} {:>6} {:>7}\n",
        "NODE", "ADDRESS", "STATE", "HEARTBEAT", "LOAD", "OWNED", "EVENTS"
    ));
    for n in &view.nodes {
        let age = (now_ms - n.heartbeat_ms).max(0) as f64 / 1000.0;
        out.push_str(&format!(
            "{:<20} {:<22} {:<6} {:>8.1}s {:>5} {:>6} {:>7}\n",
            n.node_id,
            n.address,
            if n.alive { "alive" } else { "dead" },
            age,
            n.load,
            n.owned,
            n.leased_events
        ));
    }
    if !view.leases.is_empty() {
        out.push_str(&format!(
            "\n{:<60} {:<20} {:>5}\n",
            "RESOURCE", "OWNER", "EPOCH"
        ));
        for l in &view.leases {
            out.push_str(&format!(
                "{:<60} {:<20} {:>5}\n",
                l.resource,
                l.owner.as_deref().unwrap_or("-"),
                l.epoch
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use kindling_cluster::{LeaseView, NodeView};

    use super::*;

    #[test]
    fn renders_nodes_and_owners() {
        let view = ClusterView {
            mode: "shared".into(),
            node_id: "node-a".into(),
            healthy: true,
            nodes: vec![NodeView {
                node_id: "node-a".into(),
                address: "127.0.0.1:9001".into(),
                incarnation: 2,
                started_ms: 0,
                heartbeat_ms: 9_500,
                load: 3,
                alive: true,
                owned: 1,
                leased_events: 4,
            }],
            leases: vec![LeaseView {
                resource: "esm:u1".into(),
                owner: None,
                epoch: 2,
            }],
        };
        let text = render(&view, 10_000);
        assert!(
            text.starts_with("cluster: shared (seen from node-a)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "node-a               127.0.0.1:9001         alive       0.5s     3      1       4"
            ),
            "{text}"
        );
        assert!(text.contains("esm:u1"), "{text}");
        let last: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last, ["esm:u1", "-", "2"], "{text}");
    }
}
