//! What the course examples (`ex_01` … `ex_03`) share and that is not about recurrent networks:
//! their command-line conventions, charts, progress bars and the table of results each ends
//! with. Each example uses a part of it.
#![allow(dead_code)]

pub mod chart;
pub mod progress;
pub mod report;
pub mod steps;
pub mod tasks;

use std::path::PathBuf;

/// The options every course example takes.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Run a reduced version (under a minute), as the test suite does.
    #[arg(long)]
    pub quick: bool,
    /// Folder that receives the charts and the table of results (default: a folder named after
    /// the example, in the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the data, the initialisation and dropout: the same seed gives the same run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl CommonArgs {
    /// The output folder, created if needed.
    pub fn out_dir(&self, example: &str) -> std::io::Result<PathBuf> {
        let dir = self.out.clone().unwrap_or_else(|| PathBuf::from(example));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// Prints the sentence that introduces an experiment, with a rule above it.
pub fn section(title: &str, what: &str) {
    println!(
        "\n── {title} {}",
        "─".repeat(78usize.saturating_sub(title.len() + 4))
    );
    println!("{what}");
}
