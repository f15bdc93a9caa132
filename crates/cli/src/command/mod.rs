//! One module per `mailtls` subcommand.

pub mod check_config;
pub mod clients;
pub mod dashboard;
mod discovery;
pub mod exceptions;
pub mod gateway;
pub mod import;
pub mod oauth;
pub mod passwd;
pub mod policy;
pub mod reload;
pub mod report;
pub mod scan;
pub mod sensor;
pub mod store;
mod terminal;
