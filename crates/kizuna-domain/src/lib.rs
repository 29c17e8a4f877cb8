//! Kizuna's pure domain: ids and values, field metadata and validation, apps,
//! plans and roles, and the error vocabulary. No IO happens here.

pub mod error;
pub mod field;
pub mod integration;
pub mod org;
pub mod time;
pub mod validate;

pub use error::{Error, Kind, Result, Text};
pub use field::{FieldDef, FieldType, ModuleDef};
pub use org::{App, IntegrationKind, Role};
