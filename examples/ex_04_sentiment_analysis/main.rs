//! Placeholder entry point for the data modules of ex_04 (replaced by the example's main).
#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;

mod data;
mod download;
mod numpy_rng;
mod text;

fn main() {}
