#![doc = include_str!("../README.md")]

pub mod app;
pub mod config;
pub mod demo;
pub mod keys;

pub use app::{Paygate, RunningServer};
pub use config::Settings;
