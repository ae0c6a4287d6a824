//! Drives a real runtime (and its extensions) by hand: binds the API, starts the command with
//! `AWS_LAMBDA_RUNTIME_API` set, waits for init, sends invocations and prints each outcome,
//! then shuts down.
//!
//! ```text
//! cargo run -p kindling-runtime-api --example drive -- [--invokes 3] [--payload '{"k":1}'] \
//!     -- python3 -m awslambdaric handler.handler
//! ```
//! The command inherits the environment (set `AWS_LAMBDA_FUNCTION_NAME` etc. yourself when the
//! runtime client needs them).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kindling_runtime_api::{Invocation, RuntimeApi, RuntimeApiConfig, ShutdownReason};

fn main() -> std::io::Result<()> {
    let mut invokes = 3usize;
    let mut payload = String::from(r#"{"hello":"world"}"#);
    let mut args = std::env::args().skip(1);
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--invokes" => invokes = args.next().and_then(|v| v.parse().ok()).unwrap_or(invokes),
            "--payload" => payload = args.next().unwrap_or(payload),
            "--" => command.extend(args.by_ref()),
            _ => command.push(arg),
        }
    }
    let Some((program, rest)) = command.split_first() else {
        eprintln!("usage: drive [--invokes N] [--payload JSON] -- COMMAND [ARGS...]");
        std::process::exit(2);
    };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let mut config = RuntimeApiConfig::new("drive", "$LATEST", "123456789012");
        config.handler = Some("handler.handler".into());
        let api = RuntimeApi::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await?;
        println!("AWS_LAMBDA_RUNTIME_API={}", api.local_addr());
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            .env("AWS_LAMBDA_RUNTIME_API", api.local_addr().to_string())
            .kill_on_drop(true)
            .spawn()?;
        println!("init: {:?}", api.wait_init().await);
        println!("extensions: {:?}", api.registered_extensions());
        for i in 0..invokes {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let inv = Invocation {
                request_id: uuid::Uuid::new_v4().to_string(),
                deadline_ms: u64::try_from(now.as_millis()).unwrap_or(0) + 30_000,
                invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:drive".into(),
                trace_id: Some(format!("Root=1-5bef4de7-{i:024x};Sampled=1")),
                payload: Bytes::from(payload.clone()),
                ..Invocation::default()
            };
            let outcome = tokio::time::timeout(Duration::from_secs(30), api.invoke(inv)).await;
            println!("invoke {i}: {outcome:?}");
            api.wait_invocation_complete().await;
        }
        api.shutdown(ShutdownReason::Spindown, Duration::from_secs(2))
            .await;
        child.kill().await?;
        Ok(())
    })
}
