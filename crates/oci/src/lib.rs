//! OCI images as Kindling reads them, without a container engine:
//!
//! * [`digest`]: `sha256:<hex>` content addresses;
//! * [`reference`]: image references and Lambda's `ImageUri`s
//!   (`<account>.dkr.ecr.<region>.localhost:<port>/<repo>:<tag>`, `127.0.0.1:<port>/<repo>@sha256:…`)
//!   and the registry's repository and tag names (ECR's rules);
//! * [`manifest`]: image manifests (OCI and Docker v2 schema 2), image indexes and manifest
//!   lists, and image configs (`ENTRYPOINT`, `CMD`, `WORKDIR`, `ENV`), validated;
//! * [`unpack`]: layers (tar, gzip) applied in order into a root filesystem, with whiteouts,
//!   never writing outside it, never creating devices, never keeping setuid bits; the same
//!   walk without writing verifies a layer and measures its unpacked size.
//!
//! *Invariant: no network, no HTTP; file system access only in [`unpack`], on paths given.*

pub mod digest;
pub mod manifest;
pub mod reference;
pub mod unpack;

pub use digest::{Digest, DigestError};
pub use manifest::{Descriptor, ImageConfig, ManifestError, ParsedManifest, RuntimeConfig};
pub use reference::{ImageRef, RefError, Reference};
pub use unpack::{Layer, UnpackError, UnpackLimits, UnpackStats};
