//! The route table: one module per Lambda resource.

mod account;
mod aliases;
mod code;
mod event_config;
mod functions;
mod invoke;
mod layers;
mod policy;
mod tags;
mod versions;

use axum::Router;
use axum::routing::{get, post, put};

use crate::ApiState;
use crate::error::ApiError;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/2015-03-31/functions",
            post(functions::create).get(functions::list),
        )
        .route(
            "/2015-03-31/functions/{name}",
            get(functions::get).delete(functions::delete),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(functions::get_configuration).put(functions::update_configuration),
        )
        .route(
            "/2015-03-31/functions/{name}/code",
            put(functions::update_code),
        )
        .route(
            "/2015-03-31/functions/{name}/versions",
            post(versions::publish).get(versions::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            post(aliases::create).get(aliases::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(aliases::get)
                .put(aliases::update)
                .delete(aliases::delete),
        )
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            put(account::put_concurrency).delete(account::delete_concurrency),
        )
        .route(
            "/2019-09-30/functions/{name}/concurrency",
            get(account::get_concurrency),
        )
        .route("/2016-08-19/account-settings", get(account::settings))
        .route("/2018-10-31/layers", get(layers::list_or_find))
        .route(
            "/2018-10-31/layers/{layer}/versions",
            post(layers::publish).get(layers::list_versions),
        )
        .route(
            "/2018-10-31/layers/{layer}/versions/{version}",
            get(layers::get).delete(layers::delete),
        )
        .route(
            "/2017-03-31/tags/{resource}",
            post(tags::tag).get(tags::list).delete(tags::untag),
        )
        .route(
            "/2015-03-31/functions/{name}/policy",
            post(policy::add).get(policy::get),
        )
        .route(
            "/2015-03-31/functions/{name}/policy/{sid}",
            axum::routing::delete(policy::remove),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        )
        .route(
            "/2014-11-13/functions/{name}/invoke-async",
            post(invoke::invoke_async),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            put(event_config::put)
                .post(event_config::update)
                .get(event_config::get)
                .delete(event_config::delete),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config/list",
            get(event_config::list),
        )
        .route("/_kindling/code/{blob}", get(code::download))
}

/// Any path that names no operation.
pub async fn unknown_operation() -> ApiError {
    ApiError::UnknownOperation
}
