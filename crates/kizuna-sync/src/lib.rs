//! Integrations between Kizuna's apps: their life (who may set them up,
//! enable, pause, disable, delete; on which plans; once per org), field
//! mapping, the sync engine and its history, and what one app shows of
//! another (Desk tickets inside CRM records).

pub mod attention;
pub mod copy;
pub mod desk_tickets;
pub mod doctor;
pub mod engine;
pub mod lifecycle;
pub mod mail;
pub mod mapping;
pub mod readiness;
pub mod settings;
pub mod worker;
