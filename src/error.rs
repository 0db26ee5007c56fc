//! The crate's one error type.

use core::fmt;

use crate::tensor::Shape;

/// Everything that can go wrong in this crate.
///
/// Messages are lowercase, without a trailing period, and name the values involved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A tensor had another shape than the operation needs.
    ShapeMismatch {
        /// What was being done, for example `"lstm input"`.
        op: &'static str,
        /// The shape the operation needs.
        expected: Shape,
        /// The shape it got.
        actual: Shape,
    },
    /// A tensor had another rank than the operation needs.
    RankMismatch {
        /// What was being done, for example `"recurrent input"`.
        op: &'static str,
        /// The rank the operation needs.
        expected: usize,
        /// The meaning of the axes it needs, for example `"(T, B, F)"`.
        layout: &'static str,
        /// The shape it got.
        actual: Shape,
    },
    /// A data buffer had another length than its shape implies.
    DataLength {
        /// The shape the data was given for.
        shape: Shape,
        /// The number of values in the buffer.
        actual: usize,
    },
    /// A tensor of rank 0 or more than 3 was requested.
    InvalidRank {
        /// The requested rank.
        rank: usize,
    },
    /// The number of sequence lengths is not the batch size.
    LengthCount {
        /// The batch size.
        expected: usize,
        /// The number of lengths given.
        actual: usize,
    },
    /// A sequence length is zero or longer than the input.
    InvalidLength {
        /// The sample it belongs to.
        index: usize,
        /// The length given.
        length: usize,
        /// The number of time steps of the input, `T`.
        seq_len: usize,
    },
    /// A state did not have the parts the cell needs (for example `h` without `c`).
    StatePartsMismatch {
        /// What was being done, for example `"initial state"`.
        op: &'static str,
        /// The names of the parts the cell needs, in order.
        expected: Vec<&'static str>,
        /// The names of the parts given.
        actual: Vec<&'static str>,
    },
    /// A parameter that the configuration needs is absent.
    MissingParameter {
        /// The parameter's name.
        name: String,
        /// Why it is needed.
        reason: &'static str,
    },
    /// A trace was given to another layer than the one that made it.
    TraceMismatch {
        /// What differs, for example `"input size"`.
        what: &'static str,
        /// The layer's value.
        expected: usize,
        /// The trace's value.
        actual: usize,
    },
    /// A named parameter or gradient does not exist.
    UnknownName {
        /// The name that was asked for.
        name: String,
    },
    /// An index (a token id, a class label) is outside its range.
    IndexOutOfRange {
        /// What was being done, for example `"embedding lookup"`.
        op: &'static str,
        /// The index given.
        index: usize,
        /// The number of valid indices (`0..bound`).
        bound: usize,
    },
    /// A configuration value or argument is outside its domain (a dropout probability of 1.5,
    /// a negative learning rate).
    InvalidArgument {
        /// The argument, for example `"dropout"`.
        name: &'static str,
        /// What is wrong with it, naming the value.
        reason: String,
    },
    /// Reading or writing a file failed. The [`std::io::Error`] is this error's
    /// [`source`](std::error::Error::source).
    Io {
        /// The file.
        path: String,
        /// The kind of failure.
        kind: std::io::ErrorKind,
        /// The operating system's error, shared so that the error stays `Clone`.
        source: IoSource,
    },
    /// A weight file is truncated or not a valid file of its format.
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A weight file holds a tensor the model does not have.
    UnexpectedParameter {
        /// The tensor's name.
        name: String,
    },
    /// A tensor given for a parameter (in a weight file, or as its gradient) has another shape
    /// than the model's parameter.
    ParameterShape {
        /// The tensor's name.
        name: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The given tensor's shape.
        actual: Vec<usize>,
    },
    /// A tensor in a weight file has another element type than the one asked for.
    DtypeMismatch {
        /// The tensor's name.
        name: String,
        /// The element type asked for, for example `"F32"`.
        expected: &'static str,
        /// The file's element type.
        actual: String,
    },
    /// A size computed from several dimensions (a tensor's number of elements, a layer's
    /// parameter count) does not fit in `usize`.
    SizeOverflow {
        /// What was being sized, for example `"tensor"` or `"weight_ih"`.
        what: &'static str,
        /// The factors whose product overflows.
        sizes: Vec<usize>,
    },
    /// Memory for a buffer could not be allocated.
    Allocation {
        /// What the buffer was for.
        what: &'static str,
        /// The bytes asked for.
        bytes: usize,
    },
    /// A trace was made by a layer that has changed since, or by another layer: its
    /// parameters were updated (by an optimiser step or a load), or it has another cell.
    StaleTrace {
        /// What differs.
        reason: String,
    },
    /// An error in one layer of a [`Chain`](crate::Chain) or model, with the layer named: for
    /// a shape error, the layer that could not read what the layer before it wrote.
    InLayer {
        /// The layer: its name or position in the chain, and its type.
        layer: String,
        /// The layer before it, whose output it read (`None` for the first layer).
        previous: Option<String>,
        /// What went wrong.
        source: Box<Error>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, expected, actual } => {
                write!(f, "shape mismatch in {op}: expected {expected}, got {actual}")
            }
            Error::RankMismatch { op, expected, layout, actual } => write!(
                f,
                "rank mismatch in {op}: expected a rank-{expected} tensor {layout}, got shape {actual}"
            ),
            Error::DataLength { shape, actual } => write!(
                f,
                "data length mismatch: shape {shape} needs {} values, got {actual}",
                shape.len()
            ),
            Error::InvalidRank { rank } => {
                write!(f, "invalid rank {rank}: tensors have rank 1 to 3")
            }
            Error::LengthCount { expected, actual } => write!(
                f,
                "sequence length count mismatch: expected {expected} (one per sample), got {actual}"
            ),
            Error::InvalidLength { index, length, seq_len } => write!(
                f,
                "invalid sequence length {length} at batch index {index}: lengths must be in 1..={seq_len}"
            ),
            Error::StatePartsMismatch { op, expected, actual } => write!(
                f,
                "state parts mismatch in {op}: expected [{}], got [{}]",
                expected.join(", "),
                actual.join(", ")
            ),
            Error::MissingParameter { name, reason } => {
                write!(f, "missing parameter `{name}`: {reason}")
            }
            Error::TraceMismatch { what, expected, actual } => write!(
                f,
                "trace mismatch: the layer's {what} is {expected}, the trace's is {actual}"
            ),
            Error::UnknownName { name } => write!(f, "unknown name `{name}`"),
            Error::IndexOutOfRange { op, index, bound } => write!(
                f,
                "index out of range in {op}: {index} is not in 0..{bound}"
            ),
            Error::InvalidArgument { name, reason } => write!(f, "invalid {name}: {reason}"),
            // the operating system's message is the error's source, not repeated here, so that
            // reporters that print the chain of sources print it once
            Error::Io { path, kind, .. } => write!(f, "i/o error on `{path}` ({kind})"),
            Error::Corrupt { path, reason } => write!(f, "corrupt file `{path}`: {reason}"),
            Error::UnexpectedParameter { name } => {
                write!(f, "unexpected parameter `{name}`: the model has no tensor of that name")
            }
            Error::ParameterShape { name, expected, actual } => write!(
                f,
                "shape mismatch for parameter `{name}`: the model has {expected:?}, got {actual:?}"
            ),
            Error::DtypeMismatch { name, expected, actual } => write!(
                f,
                "dtype mismatch for parameter `{name}`: expected {expected}, the file has {actual}"
            ),
            Error::SizeOverflow { what, sizes } => write!(
                f,
                "size overflow in {what}: the product of {sizes:?} does not fit in usize"
            ),
            Error::Allocation { what, bytes } => {
                write!(f, "cannot allocate {bytes} bytes for {what}")
            }
            Error::StaleTrace { reason } => write!(
                f,
                "stale trace: {reason}; run forward again with the current layer"
            ),
            Error::InLayer { layer, previous: Some(previous), source } => {
                write!(f, "in layer {layer}, reading the output of layer {previous}: {source}")
            }
            Error::InLayer { layer, previous: None, source } => {
                write!(f, "in layer {layer}: {source}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source.get()),
            _ => None,
        }
    }
}

/// The [`std::io::Error`] behind an [`Error::Io`], behind an [`Arc`](std::sync::Arc) so that
/// [`Error`] stays `Clone`.
///
/// Two sources are equal when their kinds and messages are (a `std::io::Error` cannot be
/// compared otherwise).
///
/// # Examples
///
/// ```
/// use std::error::Error as _;
/// use recurrent::{read_tensors, Error};
///
/// let e = read_tensors::<f32>("no-such-file.safetensors").unwrap_err();
/// let Error::Io { source, .. } = &e else { panic!("{e}") };
/// assert_eq!(source.get().kind(), std::io::ErrorKind::NotFound);
/// let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).unwrap();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Debug, Clone)]
pub struct IoSource(std::sync::Arc<std::io::Error>);

impl IoSource {
    /// The operating system's error.
    pub fn get(&self) -> &std::io::Error {
        &self.0
    }
}

impl From<std::io::Error> for IoSource {
    fn from(e: std::io::Error) -> IoSource {
        IoSource(std::sync::Arc::new(e))
    }
}

impl PartialEq for IoSource {
    fn eq(&self, other: &IoSource) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoSource {}

impl fmt::Display for IoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// The value, or a panic with the error's message at the caller's caller: the panicking
/// counterpart of a fallible constructor.
#[track_caller]
pub(crate) fn or_panic<T>(result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

/// Returns a [`Error::ShapeMismatch`] unless `actual == expected`.
pub(crate) fn check_shape(op: &'static str, expected: Shape, actual: Shape) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            expected,
            actual,
        })
    }
}

/// A type's name without its module paths: `LstmCell<f64>` for
/// `recurrent::cell::lstm::LstmCell<f64>`.
pub(crate) fn without_paths(type_name: &str) -> String {
    let mut out = String::with_capacity(type_name.len());
    let mut segment = String::new();
    let mut chars = type_name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear(); // a path segment: drop it
        } else if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_mismatch_names_both_shapes() {
        let e = Error::ShapeMismatch {
            op: "lstm step input",
            expected: Shape::new(&[4, 8]),
            actual: Shape::new(&[4, 7]),
        };
        assert_eq!(
            e.to_string(),
            "shape mismatch in lstm step input: expected [4, 8], got [4, 7]"
        );
    }

    #[test]
    fn data_length_message() {
        let e = Error::DataLength {
            shape: Shape::new(&[2, 3]),
            actual: 5,
        };
        assert_eq!(
            e.to_string(),
            "data length mismatch: shape [2, 3] needs 6 values, got 5"
        );
    }
}
