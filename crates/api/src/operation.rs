//! Every operation the API serves, with what the edge of the API needs to know about it before
//! its handler runs: its name (and IAM action), who may call it ([`Access`]) and how large its
//! body may be. The route table (`routes/mod.rs`) is built from [`Operation::ALL`].

use axum::http::{HeaderMap, HeaderName};
use kindling_model::limits;

/// `X-Amz-Invocation-Type`, as a constant (a `&str` name is parsed on every lookup).
const INVOCATION_TYPE: HeaderName = HeaderName::from_static("x-amz-invocation-type");

/// Who may call an operation with a function's session credentials (operators' keys may call
/// everything). Services added later put their operations in the same classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The data plane (Invoke and its kin): always allowed.
    Data,
    /// Reading a function's own configuration: allowed for the function itself, else [`Read`].
    ///
    /// [`Read`]: Access::Read
    OwnFunctionRead,
    /// Reading the control plane.
    Read,
    /// Changing the control plane.
    Write,
    /// Not an API call: authenticated its own way (presigned code downloads).
    Public,
}

/// The size class of an operation's request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// A code package in JSON (CreateFunction, UpdateFunctionCode, PublishLayerVersion).
    Code,
    /// Other writes' JSON.
    Control,
    /// Reads and deletes: nothing meaningful.
    Small,
    /// Invoke: Lambda's payload limits (synchronous or Event).
    InvokePayload,
    /// InvokeAsync's 256 KB.
    InvokeAsyncPayload,
}

/// The body limit of reads and deletes.
pub const SMALL_BODY: usize = 64 * 1024;
/// InvokeAsync's payload limit.
pub const INVOKE_ASYNC_PAYLOAD: usize = 256 * 1024;

macro_rules! operations {
    ($($op:ident: $access:ident, $body:ident;)*) => {
        /// One Lambda operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation { $($op),* }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$(Operation::$op),*];

            /// The operation's name (`GetFunction`).
            pub fn name(self) -> &'static str {
                match self { $(Operation::$op => stringify!($op)),* }
            }

            pub fn access(self) -> Access {
                match self { $(Operation::$op => Access::$access),* }
            }

            pub fn body_limit(self) -> BodyLimit {
                match self { $(Operation::$op => BodyLimit::$body),* }
            }
        }
    };
}

operations! {
    CreateFunction: Write, Code;
    ListFunctions: Read, Small;
    GetFunction: OwnFunctionRead, Small;
    DeleteFunction: Write, Small;
    GetFunctionConfiguration: OwnFunctionRead, Small;
    UpdateFunctionConfiguration: Write, Control;
    UpdateFunctionCode: Write, Code;
    PublishVersion: Write, Control;
    ListVersionsByFunction: Read, Small;
    CreateAlias: Write, Control;
    ListAliases: Read, Small;
    GetAlias: Read, Small;
    UpdateAlias: Write, Control;
    DeleteAlias: Write, Small;
    PutFunctionConcurrency: Write, Control;
    DeleteFunctionConcurrency: Write, Small;
    GetFunctionConcurrency: Read, Small;
    GetAccountSettings: Read, Small;
    ListLayers: Read, Small;
    PublishLayerVersion: Write, Code;
    ListLayerVersions: Read, Small;
    GetLayerVersion: Read, Small;
    DeleteLayerVersion: Write, Small;
    TagResource: Write, Control;
    ListTags: Read, Small;
    UntagResource: Write, Small;
    AddPermission: Write, Control;
    GetPolicy: Read, Small;
    RemovePermission: Write, Small;
    Invoke: Data, InvokePayload;
    InvokeAsync: Data, InvokeAsyncPayload;
    InvokeWithResponseStream: Data, InvokePayload;
    PutFunctionEventInvokeConfig: Write, Control;
    UpdateFunctionEventInvokeConfig: Write, Control;
    GetFunctionEventInvokeConfig: Read, Small;
    DeleteFunctionEventInvokeConfig: Write, Small;
    ListFunctionEventInvokeConfigs: Read, Small;
    CreateFunctionUrlConfig: Write, Control;
    GetFunctionUrlConfig: Read, Small;
    UpdateFunctionUrlConfig: Write, Control;
    DeleteFunctionUrlConfig: Write, Small;
    ListFunctionUrlConfigs: Read, Small;
    CreateEventSourceMapping: Write, Control;
    GetEventSourceMapping: Read, Small;
    UpdateEventSourceMapping: Write, Control;
    DeleteEventSourceMapping: Write, Small;
    ListEventSourceMappings: Read, Small;
    PutFunctionRecursionConfig: Write, Control;
    GetFunctionRecursionConfig: Read, Small;
    PutProvisionedConcurrencyConfig: Write, Control;
    GetProvisionedConcurrencyConfig: Read, Small;
    DeleteProvisionedConcurrencyConfig: Write, Small;
    ListProvisionedConcurrencyConfigs: Read, Small;
    DownloadCode: Public, Small;
}

impl Operation {
    /// The operation whose route serves this one (itself, except where Lambda serves two
    /// operations at one method and path).
    pub fn routed_as(self) -> Operation {
        match self {
            Operation::ListProvisionedConcurrencyConfigs => {
                Operation::GetProvisionedConcurrencyConfig
            }
            other => other,
        }
    }

    /// The operation a request on this operation's route really is, from its query string
    /// (`GET .../provisioned-concurrency?List=ALL` is ListProvisionedConcurrencyConfigs).
    pub fn refine(self, query: Option<&str>) -> Operation {
        let listing =
            || query.is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some("List")));
        match self {
            Operation::GetProvisionedConcurrencyConfig if listing() => {
                Operation::ListProvisionedConcurrencyConfigs
            }
            other => other,
        }
    }

    /// The IAM action named in `AccessDeniedException` (`lambda:InvokeFunction` for Invoke).
    pub fn iam_action(self) -> String {
        match self {
            Operation::Invoke | Operation::InvokeWithResponseStream => {
                "lambda:InvokeFunction".to_string()
            }
            other => format!("lambda:{}", other.name()),
        }
    }

    /// The largest body the operation reads, given its headers (Invoke's depends on
    /// `X-Amz-Invocation-Type`).
    pub fn max_body(self, headers: &HeaderMap) -> usize {
        match self.body_limit() {
            BodyLimit::Code => limits::MAX_CODE_REQUEST_BODY,
            BodyLimit::Control => limits::MAX_CONTROL_REQUEST_BODY,
            BodyLimit::Small => SMALL_BODY,
            BodyLimit::InvokePayload => {
                let event = headers
                    .get(INVOCATION_TYPE)
                    .is_some_and(|v| v.as_bytes() == b"Event");
                if event {
                    limits::ASYNC_PAYLOAD
                } else {
                    limits::SYNC_PAYLOAD
                }
            }
            BodyLimit::InvokeAsyncPayload => INVOKE_ASYNC_PAYLOAD,
        }
    }
}
