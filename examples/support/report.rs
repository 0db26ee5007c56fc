//! The table of every figure an example measured: printed at the end of the run and written as
//! Markdown beside the charts.

use std::fmt::Write as _;
use std::path::Path;

/// A table of results with named columns; cells are text, formatted by the caller.
#[derive(Debug, Clone)]
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with a title and column headers.
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per column. A `|` in a cell is escaped, so that
    /// it does not end the cell in Markdown.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "one cell per column");
        self.rows
            .push(cells.into_iter().map(|c| c.replace('|', "\\|")).collect());
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    fn widths(&self) -> Vec<usize> {
        (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.headers[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The table as aligned Markdown, first column left-aligned, the others right-aligned.
    pub fn to_markdown(&self) -> String {
        let widths = self.widths();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (c, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = w - cell.chars().count();
                if c == 0 {
                    write!(s, " {cell}{} |", " ".repeat(pad)).unwrap();
                } else {
                    write!(s, " {}{cell} |", " ".repeat(pad)).unwrap();
                }
            }
            s
        };
        let mut out = format!("{}\n\n{}\n|", self.title, line(&self.headers));
        for (c, w) in widths.iter().enumerate() {
            let dashes = "-".repeat((*w).max(3));
            if c == 0 {
                write!(out, "{dashes}--|").unwrap();
            } else {
                write!(out, "-{dashes}:|").unwrap();
            }
        }
        for row in &self.rows {
            write!(out, "\n{}", line(row)).unwrap();
        }
        out.push('\n');
        out
    }
}

/// Prints the tables and writes them to `dir/results.md`.
pub fn finish(dir: &Path, tables: &[Table]) -> std::io::Result<()> {
    let text: Vec<String> = tables.iter().map(Table::to_markdown).collect();
    let text = text.join("\n");
    println!("\n{text}");
    let path = dir.join("results.md");
    std::fs::write(&path, &text)?;
    println!("charts and this table are in {}", dir.display());
    Ok(())
}

/// A vector as `[+0.1235, -0.5679]`, with `decimals` decimals.
pub fn vector(v: &[f64], decimals: usize) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:+.decimals$}")).collect();
    format!("[{}]", parts.join(", "))
}

/// A number in a form that keeps 3 significant digits whatever its size.
pub fn sig(x: f64) -> String {
    if !x.is_finite() {
        format!("{x}")
    } else if x == x.round() && x.abs() < 1e6 {
        format!("{x:.0}")
    } else if x.abs() >= 1e4 || x.abs() < 1e-3 {
        format!("{x:.2e}")
    } else {
        let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
        format!("{x:.digits$}")
    }
}
