//! The five apps: their standard modules and their own rules, written once on
//! top of the store's API.

pub mod admin;
pub mod catalog;
pub mod demo;
pub mod events;
mod labels_ja;
pub mod records;
