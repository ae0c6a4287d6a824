//! What an API keeps of its deployments, HTTP and REST APIs alike: the snapshots stages serve
//! and those of the latest explicit deployments, and at most a fixed number of deployments.

use std::collections::BTreeMap;

/// Forgets what nothing needs any more, after a deployment or a stage change:
/// - a snapshot is kept while a stage serves its deployment (`served`) or while its deployment
///   is one of the `recent` latest explicit ones (`explicit`: not made by auto-deploy; a stage
///   made after its deployment, as CloudFormation makes it, finds it);
/// - beyond `max` deployments, the oldest that no stage serves are dropped.
pub(crate) fn forget<D, S>(
    deployments: &mut Vec<D>,
    snapshots: &mut BTreeMap<String, S>,
    served: &[String],
    (max, recent): (usize, usize),
    id: impl Fn(&D) -> &String,
    explicit: impl Fn(&D) -> bool,
) {
    let kept: Vec<&String> = deployments
        .iter()
        .rev()
        .filter(|d| explicit(d))
        .take(recent)
        .map(&id)
        .collect();
    snapshots.retain(|id, _| served.contains(id) || kept.contains(&id));
    while deployments.len() > max {
        match deployments.iter().position(|d| !served.contains(id(d))) {
            Some(i) => {
                deployments.remove(i);
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_served_and_recent_explicit_snapshots_and_drops_oldest_unserved() {
        // (id, explicit)
        let mut deployments: Vec<(String, bool)> =
            (1..=6).map(|i| (format!("d{i}"), i != 5)).collect();
        let mut snapshots: BTreeMap<String, ()> =
            deployments.iter().map(|d| (d.0.clone(), ())).collect();
        let served = vec!["d1".to_string()];
        forget(
            &mut deployments,
            &mut snapshots,
            &served,
            (4, 2),
            |d| &d.0,
            |d| d.1,
        );
        // d6 and d4: the two latest explicit ones (d5 was auto-deployed); d1: served.
        assert_eq!(snapshots.keys().collect::<Vec<_>>(), ["d1", "d4", "d6"]);
        // Six deployments, four kept: d2 and d3 (the oldest unserved) go, d1 stays.
        let ids: Vec<&str> = deployments.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(ids, ["d1", "d4", "d5", "d6"]);
    }
}
