//! Pieces both planes stand on: configuration, errors, ids, crypto, storage,
//! cache invalidation and HTTP helpers.
#![forbid(unsafe_code)]

pub mod apple;
pub mod audit;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod data_migrations;
pub mod db;
pub mod email;
pub mod error;
pub mod hostname;
pub mod http;
pub mod ids;
pub mod invalidation;
pub mod jwks;
pub mod keys;
pub mod messaging;
pub mod observations;
pub mod openapi;
pub mod rbac;
pub mod schema;
pub mod secret;
pub mod settings;
pub mod templates;
pub mod time;

pub use error::ApiError;
