//! The route table: one module per Lambda resource.

mod account;
mod aliases;
mod code;
mod event_config;
mod forward;
mod functions;
mod invoke;
mod invoke_stream;
mod layers;
mod mappings;
mod policy;
mod provisioned;
mod tags;
mod urls;
mod versions;

pub use forward::{HOP_HEADER, NODE_HEADER, Routing};
pub(crate) use invoke::serve as serve_invoke;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::ApiState;
use crate::gate;
use crate::operation::Operation;

const FUNCTIONS: &str = "/2015-03-31/functions";
const FUNCTION: &str = "/2015-03-31/functions/{name}";
const CONFIGURATION: &str = "/2015-03-31/functions/{name}/configuration";
const ALIASES: &str = "/2015-03-31/functions/{name}/aliases";
const ALIAS: &str = "/2015-03-31/functions/{name}/aliases/{alias}";
const VERSIONS: &str = "/2015-03-31/functions/{name}/versions";
const POLICY: &str = "/2015-03-31/functions/{name}/policy";
const EVENT_CONFIG: &str = "/2019-09-25/functions/{name}/event-invoke-config";
const LAYER_VERSIONS: &str = "/2018-10-31/layers/{layer}/versions";
const LAYER_VERSION: &str = "/2018-10-31/layers/{layer}/versions/{version}";
const URL: &str = "/2021-10-31/functions/{name}/url";
const MAPPINGS: &str = "/2015-03-31/event-source-mappings";
const MAPPING: &str = "/2015-03-31/event-source-mappings/{uuid}";
const RECURSION: &str = "/2024-08-31/functions/{name}/recursion-config";
const TAGS: &str = "/2017-03-31/tags/{resource}";
const PROVISIONED: &str = "/2019-09-30/functions/{name}/provisioned-concurrency";

pub use provisioned::{provision, restore_provisioned, sync_provisioned};

/// Where each operation is served, and its handler.
fn endpoint(op: Operation) -> (&'static str, MethodRouter<ApiState>) {
    use Operation as O;
    match op {
        O::CreateFunction => (FUNCTIONS, post(functions::create)),
        O::ListFunctions => (FUNCTIONS, get(functions::list)),
        O::GetFunction => (FUNCTION, get(functions::get)),
        O::DeleteFunction => (FUNCTION, delete(functions::delete)),
        O::GetFunctionConfiguration => (CONFIGURATION, get(functions::get_configuration)),
        O::UpdateFunctionConfiguration => (CONFIGURATION, put(functions::update_configuration)),
        O::UpdateFunctionCode => (
            "/2015-03-31/functions/{name}/code",
            put(functions::update_code),
        ),
        O::PublishVersion => (VERSIONS, post(versions::publish)),
        O::ListVersionsByFunction => (VERSIONS, get(versions::list)),
        O::CreateAlias => (ALIASES, post(aliases::create)),
        O::ListAliases => (ALIASES, get(aliases::list)),
        O::GetAlias => (ALIAS, get(aliases::get)),
        O::UpdateAlias => (ALIAS, put(aliases::update)),
        O::DeleteAlias => (ALIAS, delete(aliases::delete)),
        O::PutFunctionConcurrency => (
            "/2017-10-31/functions/{name}/concurrency",
            put(account::put_concurrency),
        ),
        O::DeleteFunctionConcurrency => (
            "/2017-10-31/functions/{name}/concurrency",
            delete(account::delete_concurrency),
        ),
        O::GetFunctionConcurrency => (
            "/2019-09-30/functions/{name}/concurrency",
            get(account::get_concurrency),
        ),
        O::GetAccountSettings => ("/2016-08-19/account-settings", get(account::settings)),
        O::ListLayers => ("/2018-10-31/layers", get(layers::list_or_find)),
        O::PublishLayerVersion => (LAYER_VERSIONS, post(layers::publish)),
        O::ListLayerVersions => (LAYER_VERSIONS, get(layers::list_versions)),
        O::GetLayerVersion => (LAYER_VERSION, get(layers::get)),
        O::DeleteLayerVersion => (LAYER_VERSION, delete(layers::delete)),
        O::TagResource => (TAGS, post(tags::tag)),
        O::ListTags => (TAGS, get(tags::list)),
        O::UntagResource => (TAGS, delete(tags::untag)),
        O::AddPermission => (POLICY, post(policy::add)),
        O::GetPolicy => (POLICY, get(policy::get)),
        O::RemovePermission => (
            "/2015-03-31/functions/{name}/policy/{sid}",
            delete(policy::remove),
        ),
        O::Invoke => (
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        ),
        O::InvokeAsync => (
            "/2014-11-13/functions/{name}/invoke-async",
            post(invoke::invoke_async),
        ),
        O::InvokeWithResponseStream => (
            "/2021-11-15/functions/{name}/response-streaming-invocations",
            post(invoke_stream::invoke_with_response_stream),
        ),
        O::PutFunctionEventInvokeConfig => (EVENT_CONFIG, put(event_config::put)),
        O::UpdateFunctionEventInvokeConfig => (EVENT_CONFIG, post(event_config::update)),
        O::GetFunctionEventInvokeConfig => (EVENT_CONFIG, get(event_config::get)),
        O::DeleteFunctionEventInvokeConfig => (EVENT_CONFIG, delete(event_config::delete)),
        O::ListFunctionEventInvokeConfigs => (
            "/2019-09-25/functions/{name}/event-invoke-config/list",
            get(event_config::list),
        ),
        O::CreateFunctionUrlConfig => (URL, post(urls::create)),
        O::GetFunctionUrlConfig => (URL, get(urls::get)),
        O::UpdateFunctionUrlConfig => (URL, put(urls::update)),
        O::DeleteFunctionUrlConfig => (URL, delete(urls::delete)),
        O::ListFunctionUrlConfigs => ("/2021-10-31/functions/{name}/urls", get(urls::list)),
        O::CreateEventSourceMapping => (MAPPINGS, post(mappings::create)),
        O::ListEventSourceMappings => (MAPPINGS, get(mappings::list)),
        O::GetEventSourceMapping => (MAPPING, get(mappings::get)),
        O::UpdateEventSourceMapping => (MAPPING, put(mappings::update)),
        O::DeleteEventSourceMapping => (MAPPING, delete(mappings::delete)),
        O::PutFunctionRecursionConfig => (RECURSION, put(mappings::put_recursion)),
        O::GetFunctionRecursionConfig => (RECURSION, get(mappings::get_recursion)),
        O::PutProvisionedConcurrencyConfig => (PROVISIONED, put(provisioned::put)),
        // One GET route serves both (`List=ALL`): the gate tells them apart.
        O::GetProvisionedConcurrencyConfig | O::ListProvisionedConcurrencyConfigs => {
            (PROVISIONED, get(provisioned::get_or_list))
        }
        O::DeleteProvisionedConcurrencyConfig => (PROVISIONED, delete(provisioned::delete)),
        O::DownloadCode => ("/_kindling/code/{blob}", get(code::download)),
    }
}

/// The route table: every operation behind its gate (authentication, authorization, bounded
/// body), which knows which operation it guards.
pub fn routes(state: &ApiState) -> Router<ApiState> {
    let routed = Operation::ALL.iter().filter(|op| op.routed_as() == **op);
    routed.fold(Router::new(), |router, &op| {
        let (path, handler) = endpoint(op);
        router.route(
            path,
            handler.layer(from_fn_with_state((state.clone(), op), gate::gate)),
        )
    })
}
