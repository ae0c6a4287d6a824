//! Engine tests with a fake provider over an in-memory store: ordering, rollback, update
//! cleanup, and recovery of an operation a crash interrupted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kindling_store::SqliteStore;
use serde_json::{Map, Value};

use crate::provider::{
    BoxFuture, Provider, ProvisionError, Provisioned, ResourceContext, TemplateSource,
};
use crate::{DeployConfig, Deployer, StackInput, TemplateInput};

/// Records calls; fails creates of resources whose `Fail` property is set; blocks forever on
/// `Hang` (a crash mid-operation).
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    live: Mutex<BTreeMap<String, Map<String, Value>>>,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }
    fn live(&self) -> Vec<String> {
        self.live.lock().expect("lock").keys().cloned().collect()
    }
}

impl Provider for Arc<Fake> {
    fn supports(&self, t: &str) -> bool {
        t != "AWS::Logs::LogGroup"
    }
    fn expected_physical_id(
        &self,
        ctx: &ResourceContext,
        _: &Map<String, Value>,
    ) -> Option<String> {
        Some(format!("phys-{}", ctx.logical_id))
    }
    fn create<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        props: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<Provisioned, ProvisionError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .expect("lock")
                .push(format!("create {}", ctx.logical_id));
            let id = format!("phys-{}", ctx.logical_id);
            if props.contains_key("Hang") {
                self.live
                    .lock()
                    .expect("lock")
                    .insert(id.clone(), props.clone());
                std::future::pending::<()>().await;
            }
            if props.contains_key("Fail") {
                return Err(ProvisionError::new("it failed"));
            }
            self.live
                .lock()
                .expect("lock")
                .insert(id.clone(), props.clone());
            // Each create makes a new "version" (for aliases' `FunctionVersion`).
            let version = self.calls.lock().expect("lock").len().to_string();
            Ok(Provisioned::named(id.clone())
                .attr("Arn", format!("arn:{id}"))
                .attr("Version", version))
        })
    }
    fn update<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        physical: &'a str,
        _: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<Provisioned, ProvisionError>> {
        Box::pin(async move {
            let shifting = ctx
                .traffic_shifting
                .as_ref()
                .map(|t| format!(" ({})", t.config_name))
                .unwrap_or_default();
            self.calls
                .lock()
                .expect("lock")
                .push(format!("update {}{shifting}", ctx.logical_id));
            if new.contains_key("Fail") {
                return Err(ProvisionError::new("update failed"));
            }
            self.live
                .lock()
                .expect("lock")
                .insert(physical.to_string(), new.clone());
            Ok(Provisioned::named(physical).attr("Arn", format!("arn:{physical}")))
        })
    }
    fn delete<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        physical: &'a str,
        _: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .expect("lock")
                .push(format!("delete {}", ctx.logical_id));
            self.live.lock().expect("lock").remove(physical);
            Ok(())
        })
    }
}

struct NoUrls;
impl TemplateSource for NoUrls {
    fn fetch<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async { Err("no".to_string()) })
    }
}

/// One node alone (no shared store).
fn alone() -> kindling_cluster::Cluster {
    kindling_cluster::Cluster::single("test-node", "127.0.0.1:0", Arc::new(|| 0))
}

async fn open(store: Arc<SqliteStore>, fake: Arc<Fake>) -> Deployer {
    let mut config = DeployConfig::new("us-east-1", "000000000000");
    config.linger = Duration::from_secs(5);
    Deployer::open(config, store, Arc::new(fake), Arc::new(NoUrls), alone())
        .await
        .expect("open")
}

fn input(name: &str, body: &str) -> StackInput {
    StackInput {
        stack_name: name.into(),
        template: TemplateInput {
            body: Some(body.into()),
            ..TemplateInput::default()
        },
        ..StackInput::default()
    }
}

const CHAIN: &str = r#"
Resources:
  A:
    Type: AWS::SQS::Queue
  B:
    Type: AWS::SNS::Topic
    Properties:
      Name: !GetAtt A.Arn
  C:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref B
Outputs:
  Out:
    Value: !Ref C
"#;

async fn status(d: &Deployer, name: &str) -> String {
    for _ in 0..200 {
        let s = d.stack(name).expect("stack");
        if !s.status.ends_with("_IN_PROGRESS") {
            return s.status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    d.stack(name).expect("stack").status
}

#[tokio::test]
async fn creates_in_dependency_order_and_deletes_in_reverse() {
    let fake = Arc::new(Fake::default());
    let d = open(
        Arc::new(SqliteStore::in_memory().expect("db")),
        Arc::clone(&fake),
    )
    .await;
    d.create_stack(input("s", CHAIN)).await.expect("create");
    assert_eq!(status(&d, "s").await, "CREATE_COMPLETE");
    assert_eq!(fake.calls(), ["create A", "create B", "create C"]);
    let s = d.stack("s").expect("stack");
    assert_eq!(s.outputs[0].value, "phys-C");
    assert_eq!(
        fake.live.lock().expect("lock")["phys-B"]["Name"],
        "arn:phys-A"
    );
    d.delete_stack("s").await.expect("delete");
    let deleted = d.stack(&s.stack_id).expect("by id");
    assert_eq!(deleted.status, "DELETE_COMPLETE");
    assert_eq!(&fake.calls()[3..], ["delete C", "delete B", "delete A"]);
    assert!(fake.live().is_empty());
}

#[tokio::test]
async fn a_failed_create_rolls_back_what_was_made() {
    let fake = Arc::new(Fake::default());
    let d = open(
        Arc::new(SqliteStore::in_memory().expect("db")),
        Arc::clone(&fake),
    )
    .await;
    let body = CHAIN.replace(
        "      TopicArn: !Ref B",
        "      TopicArn: !Ref B\n      Fail: yes",
    );
    d.create_stack(input("s", &body)).await.expect("create");
    assert_eq!(status(&d, "s").await, "ROLLBACK_COMPLETE");
    let s = d.stack("s").expect("stack");
    assert!(s.operation.is_none());
    assert!(fake.live().is_empty(), "left behind: {:?}", fake.live());
    let events = d.describe_stack_events("s").await.expect("events");
    assert!(events.iter().any(|e| e.logical_id == "C"
        && e.status == "CREATE_FAILED"
        && e.status_reason.as_deref() == Some("it failed")));
}

#[tokio::test]
async fn a_failed_update_restores_the_previous_state() {
    let fake = Arc::new(Fake::default());
    let d = open(
        Arc::new(SqliteStore::in_memory().expect("db")),
        Arc::clone(&fake),
    )
    .await;
    d.create_stack(input("s", CHAIN)).await.expect("create");
    assert_eq!(status(&d, "s").await, "CREATE_COMPLETE");
    // B changes in place, D is new, C fails: B goes back, D goes away.
    let body = format!(
        "{}  D:\n    Type: AWS::SQS::Queue\n",
        CHAIN
            .replace(
                "      Name: !GetAtt A.Arn",
                "      Name: !GetAtt A.Arn\n      DisplayName: two"
            )
            .replace(
                "      TopicArn: !Ref B",
                "      TopicArn: !Ref B\n      Fail: yes"
            )
            .replace("Outputs:\n  Out:\n    Value: !Ref C\n", "")
    );
    d.update_stack(input("s", &body)).await.expect("update");
    assert_eq!(status(&d, "s").await, "UPDATE_ROLLBACK_COMPLETE");
    let live = fake.live.lock().expect("lock").clone();
    assert!(!live.contains_key("phys-D"));
    assert!(
        !live["phys-B"].contains_key("DisplayName"),
        "B not restored: {live:?}"
    );
    let s = d.stack("s").expect("stack");
    assert_eq!(s.outputs[0].value, "phys-C");
    assert_eq!(s.resources.len(), 3);
}

#[tokio::test]
async fn an_update_removes_dropped_resources_at_cleanup() {
    let fake = Arc::new(Fake::default());
    let d = open(
        Arc::new(SqliteStore::in_memory().expect("db")),
        Arc::clone(&fake),
    )
    .await;
    d.create_stack(input("s", CHAIN)).await.expect("create");
    assert_eq!(status(&d, "s").await, "CREATE_COMPLETE");
    d.update_stack(input("s", "Resources:\n  A:\n    Type: AWS::SQS::Queue\n"))
        .await
        .expect("update");
    assert_eq!(status(&d, "s").await, "UPDATE_COMPLETE");
    assert_eq!(fake.live(), ["phys-A"]);
    assert_eq!(&fake.calls()[3..], ["delete C", "delete B"]);
}

#[tokio::test]
async fn an_interrupted_create_is_rolled_back_on_restart() {
    let store = Arc::new(SqliteStore::in_memory().expect("db"));
    let fake = Arc::new(Fake::default());
    {
        let mut config = DeployConfig::new("us-east-1", "000000000000");
        config.linger = Duration::from_millis(200);
        let d = Deployer::open(
            config,
            Arc::clone(&store) as _,
            Arc::new(Arc::clone(&fake)),
            Arc::new(NoUrls),
            alone(),
        )
        .await
        .expect("open");
        let body = CHAIN.replace(
            "      TopicArn: !Ref B",
            "      TopicArn: !Ref B\n      Hang: yes",
        );
        d.create_stack(input("s", &body)).await.expect("create");
        assert_eq!(d.stack("s").expect("stack").status, "CREATE_IN_PROGRESS");
        assert_eq!(fake.live().len(), 3);
        // The process "dies" here: the hanging task is never resumed by this deployer.
    }
    let after = Arc::new(Fake::default());
    *after.live.lock().expect("lock") = fake.live.lock().expect("lock").clone();
    let d = open(Arc::clone(&store), Arc::clone(&after)).await;
    assert_eq!(status(&d, "s").await, "ROLLBACK_COMPLETE");
    let s = d.stack("s").expect("stack");
    assert!(s.status_reason.is_none());
    assert!(after.live().is_empty(), "left behind: {:?}", after.live());
    assert_eq!(after.calls(), ["delete C", "delete B", "delete A"]);
    let events = d.describe_stack_events("s").await.expect("events");
    assert!(events.iter().any(|e| {
        e.status == "ROLLBACK_IN_PROGRESS"
            && e.status_reason
                .as_deref()
                .is_some_and(|r| r.contains("Kindling stopped"))
    }));
}

#[tokio::test]
async fn change_sets_report_no_changes_as_cloudformation_does() {
    let fake = Arc::new(Fake::default());
    let d = open(
        Arc::new(SqliteStore::in_memory().expect("db")),
        Arc::clone(&fake),
    )
    .await;
    let cs = |name: &str, kind: &str| crate::ChangeSetInput {
        stack: input("s", CHAIN),
        change_set_name: name.into(),
        change_set_type: Some(kind.into()),
        description: None,
    };
    let (id, _) = d.create_change_set(cs("one", "CREATE")).await.expect("cs");
    assert_eq!(d.stack("s").expect("stack").status, "REVIEW_IN_PROGRESS");
    let c = d.change_set(&id, None).await.expect("describe");
    assert_eq!(
        (c.status.as_str(), c.execution_status.as_str()),
        ("CREATE_COMPLETE", "AVAILABLE")
    );
    assert_eq!(c.changes.len(), 3);
    d.execute_change_set(&id, None).await.expect("execute");
    assert_eq!(status(&d, "s").await, "CREATE_COMPLETE");
    assert_eq!(
        d.change_set(&id, None).await.expect("cs").execution_status,
        "EXECUTE_COMPLETE"
    );
    let (id2, _) = d.create_change_set(cs("two", "UPDATE")).await.expect("cs");
    let c = d.change_set(&id2, None).await.expect("describe");
    assert_eq!(c.status, "FAILED");
    assert_eq!(
        c.status_reason.as_deref(),
        Some(kindling_cfn_template::NO_CHANGES_REASON)
    );
    assert_eq!(c.execution_status, "UNAVAILABLE");
}

const CANARY: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: "def handler(e, c): return 1"
      AutoPublishAlias: live
      DeploymentPreference:
        Type: Linear10PercentEvery1Minute
"#;

#[tokio::test]
async fn an_alias_update_carries_its_traffic_shifting_to_the_handler() {
    let fake = Arc::new(Fake::default());
    let d = open(
        Arc::new(SqliteStore::in_memory().expect("db")),
        Arc::clone(&fake),
    )
    .await;
    let with_caps = |body: &str| StackInput {
        capabilities: vec!["CAPABILITY_IAM".into(), "CAPABILITY_AUTO_EXPAND".into()],
        ..input("s", body)
    };
    d.create_stack(with_caps(CANARY)).await.expect("create");
    assert_eq!(status(&d, "s").await, "CREATE_COMPLETE");
    let v2 = CANARY.replace("return 1", "return 2");
    d.update_stack(with_caps(&v2)).await.expect("update");
    assert_eq!(status(&d, "s").await, "UPDATE_COMPLETE");
    let updates: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("update "))
        .collect();
    assert!(
        updates.contains(&"update FnAliaslive (Linear10PercentEvery1Minute)".to_string()),
        "{updates:?}"
    );
    // Only the alias shifts: the function's update carries nothing.
    assert!(updates.contains(&"update Fn".to_string()), "{updates:?}");
}

#[tokio::test]
async fn stacks_beyond_the_quota_are_refused_until_one_is_deleted() {
    let mut config = DeployConfig::new("us-east-1", "000000000000");
    config.linger = Duration::from_secs(5);
    config.max_stacks = 2;
    let store = Arc::new(SqliteStore::in_memory().expect("db"));
    let fake = Arc::new(Fake::default());
    let d = Deployer::open(config, store, Arc::new(fake), Arc::new(NoUrls), alone())
        .await
        .expect("open");
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        ids.push(d.create_stack(input(name, CHAIN)).await.expect("create"));
        assert_eq!(status(&d, name).await, "CREATE_COMPLETE");
    }
    let err = d.create_stack(input("c", CHAIN)).await.expect_err("quota");
    assert!(
        matches!(&err, crate::DeployError::LimitExceeded(m) if m == "Limit for stacks has been exceeded")
    );
    d.delete_stack("a").await.expect("delete");
    assert_eq!(status(&d, &ids[0]).await, "DELETE_COMPLETE");
    d.create_stack(input("c", CHAIN))
        .await
        .expect("a slot again");
}

/// A template of about `kib` KiB (a long property value on every resource).
fn big_template(kib: usize) -> String {
    let filler = "x".repeat(kib * 1024 / 3);
    format!(
        "Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n      Pad: {filler}\n  \
         B:\n    Type: AWS::SNS::Topic\n    Properties:\n      Pad: {filler}\n  \
         C:\n    Type: AWS::SNS::Subscription\n    Properties:\n      Pad: {filler}\n"
    )
}

#[tokio::test]
async fn deleted_stacks_keep_only_their_summary_and_the_newest_are_kept() {
    let mut config = DeployConfig::new("us-east-1", "000000000000");
    config.linger = Duration::from_secs(5);
    config.max_stacks = 2;
    config.max_deleted_stacks = 2;
    let store = Arc::new(SqliteStore::in_memory().expect("db"));
    let fake = Arc::new(Fake::default());
    let d = Deployer::open(
        config,
        Arc::clone(&store) as Arc<dyn kindling_store::StackStore>,
        Arc::new(fake),
        Arc::new(NoUrls),
        alone(),
    )
    .await
    .expect("open");
    let body = big_template(45);
    let mut ids = Vec::new();
    for name in ["s0", "s1", "s2"] {
        ids.push(d.create_stack(input(name, &body)).await.expect("create"));
        assert_eq!(status(&d, name).await, "CREATE_COMPLETE");
        let live = serde_json::to_string(&d.stack(name).expect("live")).expect("json");
        assert!(
            live.len() > 120 * 1024,
            "a live stack holds its template: {}",
            live.len()
        );
        d.delete_stack(name).await.expect("delete");
        assert_eq!(status(&d, ids.last().expect("id")).await, "DELETE_COMPLETE");
    }
    // What a deleted stack retains, in memory and in the store: its summary and original
    // template (GetTemplate answers it), no processed template, no resource bodies.
    let deleted = d.stack(&ids[2]).expect("by id");
    let kept = serde_json::to_string(&deleted).expect("json").len();
    let stored = kindling_store::StackStore::stacks_by_id(&*store, &ids[2..])
        .expect("row")
        .remove(0)
        .document
        .len();
    assert!(
        kept < 4 * 1024,
        "deleted stack keeps {kept} bytes in memory"
    );
    assert!(
        stored < body.len() + 8 * 1024,
        "deleted stack keeps {stored} bytes stored (its summary and original template)"
    );
    assert!(deleted.template_body.is_empty() && deleted.processed.is_null());
    assert_eq!(deleted.resources.len(), 3);
    assert!(deleted.resources.iter().all(|r| r.properties.is_empty()
        && r.status == "DELETE_COMPLETE"
        && r.physical_id.is_some()));
    assert_eq!(
        d.get_template(Some(&ids[2]), None, false)
            .await
            .expect("template"),
        body
    );
    let events = d.describe_stack_events(&ids[2]).await.expect("events");
    assert_eq!(events[0].status, "DELETE_COMPLETE");
    // Only the newest two deleted stacks stay (ListStacks, by id, events, the store).
    let listed: Vec<String> = d.list_stacks(&[]).into_iter().map(|s| s.stack_id).collect();
    assert_eq!(listed, [ids[2].clone(), ids[1].clone()]);
    assert!(d.stack(&ids[0]).is_err());
    assert!(
        kindling_store::StackStore::stack_events(&*store, &ids[0])
            .expect("events")
            .is_empty()
    );
    assert_eq!(
        kindling_store::StackStore::stack_revisions(&*store)
            .expect("revisions")
            .len(),
        2
    );
    // The quota counts live stacks only.
    for name in ["t0", "t1"] {
        d.create_stack(input(name, CHAIN)).await.expect("create");
    }
}
