//! One module per `mailtls` subcommand.

pub mod check_config;
pub mod clients;
pub mod dashboard;
pub mod exceptions;
pub mod gateway;
mod inventory_store;
pub mod oauth;
pub mod passwd;
pub mod policy;
pub mod report;
pub mod scan;
mod terminal;
