//! `wait_extensions_registered`: what a caller that holds the runtime back until the external
//! extensions registered waits on.

mod support;

use kindling_runtime_api::InitResult;
use support::*;

#[tokio::test]
async fn resolves_once_enough_extensions_registered() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let mut two = Box::pin(api.wait_extensions_registered(2));
    assert!(stays_pending(&mut two).await);
    register(addr, "one", &["INVOKE"]).await;
    assert!(stays_pending(&mut two).await, "only one registered");
    register(addr, "two", &[]).await;
    assert!(soon(two).await);
    assert!(
        soon(api.wait_extensions_registered(1)).await,
        "already there"
    );
}

#[tokio::test]
async fn resolves_when_an_extension_fails_or_init_ends_without_them() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let id = register(addr, "broken", &["INVOKE"]).await;
    let mut three = Box::pin(api.wait_extensions_registered(3));
    assert!(stays_pending(&mut three).await);
    let res = Conn::connect(addr)
        .await
        .post(
            "/2020-01-01/extension/init/error",
            &[
                ("Lambda-Extension-Identifier", id.as_str()),
                (
                    "Lambda-Extension-Function-Error-Type",
                    "Extension.ConfigInvalid",
                ),
            ],
            b"{}",
        )
        .await;
    assert_eq!(res.status, 202);
    assert!(soon(three).await, "an init error ends the wait");

    // Init over (runtime and extension at next) with fewer than asked: false.
    let api = start(config()).await;
    let addr = api.local_addr();
    let id = register(addr, "only", &["INVOKE"]).await;
    let _ext = spawn_ext_next(addr, &id);
    let _rt = spawn_next(addr);
    assert_eq!(soon(api.wait_init()).await, InitResult::Ready);
    assert!(!soon(api.wait_extensions_registered(2)).await);
}
