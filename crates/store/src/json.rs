//! Records as JSON text, the column format both stores keep them in.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Result, StoreError};

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| StoreError::Encode {
        record: std::any::type_name::<T>(),
        source,
    })
}

pub(crate) fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|source| StoreError::CorruptRecord {
        record: std::any::type_name::<T>(),
        source,
    })
}
