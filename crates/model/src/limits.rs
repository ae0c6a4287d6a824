//! Lambda's documented quotas for standard (zip) functions.

/// Largest zip accepted in a direct upload (CodeSizeZipped).
pub const CODE_SIZE_ZIPPED: u64 = 52_428_800;
/// Largest unzipped size of code plus all layers (CodeSizeUnzipped).
pub const CODE_SIZE_UNZIPPED: u64 = 262_144_000;
/// Account-wide code storage (TotalCodeSize).
pub const TOTAL_CODE_SIZE: u64 = 80_530_636_800;
/// Largest request body accepted for a CreateFunction / UpdateFunctionCode / PublishLayerVersion
/// call: a 50 MB zip travels base64-encoded inside JSON (4/3 growth) plus the other members.
pub const MAX_CODE_REQUEST_BODY: usize = 69_905_067;
/// Largest body for other control-plane requests.
pub const MAX_CONTROL_REQUEST_BODY: usize = 1024 * 1024;
/// Synchronous invoke request and response payloads.
pub const SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Asynchronous (Event) invoke payload.
pub const ASYNC_PAYLOAD: usize = 1024 * 1024;
/// Total size of environment variable keys and values.
pub const ENV_VARS_TOTAL: usize = 4 * 1024;
/// Layers per function.
pub const MAX_LAYERS: usize = 5;
/// Timeout bounds in seconds.
pub const TIMEOUT_MIN: u32 = 1;
pub const TIMEOUT_MAX: u32 = 900;
/// Memory bounds in MB for standard functions.
pub const MEMORY_MIN: u32 = 128;
pub const MEMORY_MAX: u32 = 10_240;
/// Memory bound the API model accepts (Managed Instances); above MEMORY_MAX a standard function is refused.
pub const MEMORY_MODEL_MAX: u32 = 32_768;
/// Ephemeral storage (/tmp) bounds in MB.
pub const EPHEMERAL_MIN: u32 = 512;
pub const EPHEMERAL_MAX: u32 = 10_240;
/// Resource-based policy size in bytes.
pub const POLICY_MAX: usize = 20 * 1024;
/// Default account concurrency limit.
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1000;
/// Concurrency that reservations must leave unreserved.
pub const MIN_UNRESERVED_CONCURRENCY: u32 = 100;
/// Largest page ListFunctions returns.
pub const LIST_FUNCTIONS_PAGE: usize = 50;
