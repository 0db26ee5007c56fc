//! Progress bars for the work that takes more than a few seconds. They draw on standard error
//! and only on a terminal, so piped output and the test suite see none of them.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over `len` units (epochs, steps) with `message` in front of it.
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:<28} [{bar:32.cyan/blue}] {pos:>5}/{len:5} {elapsed_precise} (eta {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar
}
