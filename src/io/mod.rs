//! Weights as [safetensors](https://huggingface.co/docs/safetensors) files, under the
//! parameters' PyTorch `state_dict` names, so that a file written by
//! `safetensors.torch.save_file(model.state_dict(), path)` loads here and one written here
//! loads with `model.load_state_dict(safetensors.torch.load_file(path))`.
//!
//! Element types are strict by default: [`load`] puts `F32` tensors into an `f32` model and
//! `F64` tensors into an `f64` model, and reports any other pairing as
//! [`Error::DtypeMismatch`], because a silent change of precision surprises more often than
//! it helps. [`load_converting`] converts between `F32` and `F64` instead, as PyTorch's
//! `load_state_dict` does.
//!
//! [`save_optimizer`] and [`load_optimizer`] write and read an optimiser's state (and a
//! learning-rate schedule's) in the same format, so that a stopped run resumes exactly.

mod file;
mod optimizer;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View};

use crate::error::{Error, Result};
use crate::float::{private::Sealed, Float};
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;
use file::{read_file, write_atomically};
pub use optimizer::{load_optimizer, save_optimizer};

/// The `path` of errors about bytes that did not come from a file.
const IN_MEMORY: &str = "<memory>";

/// One tensor to write: its little-endian bytes.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn encode<T: Float>(t: &Tensor<T>) -> Encoded {
    let dtype = <T as Sealed>::DTYPE;
    let data = if dtype == Dtype::F32 {
        // exact: T is f32
        let values = t.as_slice().iter().map(|v| v.as_f64() as f32);
        values.flat_map(f32::to_le_bytes).collect()
    } else {
        let values = t.as_slice().iter().map(|v| v.as_f64());
        values.flat_map(f64::to_le_bytes).collect()
    };
    Encoded {
        dtype,
        shape: t.shape().to_vec(),
        data,
    }
}

/// The parameters of `model` in the safetensors format, each under its
/// [`visit_params`](Parameters::visit_params) name, as `F32` for an `f32` model and `F64` for
/// an `f64` model, little-endian, with the tensor's shape. The header's metadata is
/// `{"format": "pt"}`, as Hugging Face's libraries write it.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if two parameters of `model` have the same name.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{from_bytes, to_bytes, LstmCellConfig, Parameters, Recurrent};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let trained = Recurrent::new(LstmCellConfig::new(3, 4).init::<f32>(&mut rng)?);
/// let bytes = to_bytes(&trained)?;
///
/// let mut fresh = Recurrent::new(LstmCellConfig::new(3, 4).init::<f32>(&mut rng)?);
/// from_bytes(&mut fresh, &bytes)?;
/// assert_eq!(fresh.state_dict(), trained.state_dict());
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn to_bytes<T: Float, M: Parameters<T> + ?Sized>(model: &M) -> Result<Vec<u8>> {
    serialize(model, &HashMap::new())
}

/// The key of the header metadata that marks the tensors as PyTorch's (`"pt"`), as Hugging
/// Face's libraries write it; reserved by [`save_with_metadata`].
const FORMAT_KEY: &str = "format";

/// The safetensors bytes of `model`'s parameters, with `metadata` beside `{"format": "pt"}`.
fn serialize<T: Float, M: Parameters<T> + ?Sized>(
    model: &M,
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    if metadata.contains_key(FORMAT_KEY) {
        return Err(Error::InvalidArgument {
            name: "metadata",
            reason: format!("the key `{FORMAT_KEY}` is reserved: it is always \"pt\""),
        });
    }
    let mut tensors: Vec<(String, Encoded)> = Vec::new();
    model.visit_params(&mut |name, t| tensors.push((name.to_string(), encode(t))));
    let mut names = HashSet::new();
    if let Some((name, _)) = tensors.iter().find(|(n, _)| !names.insert(n.as_str())) {
        return Err(Error::InvalidArgument {
            name: "model",
            reason: format!("two parameters are named `{name}`"),
        });
    }
    let mut metadata = metadata.clone();
    metadata.insert(FORMAT_KEY.to_string(), "pt".to_string());
    let views = tensors.iter().map(|(n, e)| (n.as_str(), e));
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::InvalidArgument {
        name: "model",
        reason: format!("cannot be written as safetensors: {e}"),
    })
}

/// Writes the parameters of `model` to the safetensors file `path`, in the format of
/// [`to_bytes`].
///
/// The file is replaced atomically: the bytes go to a temporary file in the same directory,
/// which is flushed to disk and then renamed over `path`. A failed save leaves `path` as it
/// was and removes the temporary file.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be written (for example, its directory does not exist);
/// [`Error::InvalidArgument`] if two parameters of `model` have the same name.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{load, save, GruCellConfig, Parameters, Recurrent};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let gru = Recurrent::new(GruCellConfig::new(3, 4).init::<f64>(&mut rng)?);
/// let path = std::env::temp_dir().join(format!("gru-doc-{}.safetensors", std::process::id()));
/// save(&gru, &path)?;
///
/// let mut copy = Recurrent::new(GruCellConfig::new(3, 4).init::<f64>(&mut rng)?);
/// load(&mut copy, &path)?;
/// assert_eq!(copy.state_dict(), gru.state_dict());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn save<T: Float, M: Parameters<T> + ?Sized>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    let bytes = to_bytes(model)?;
    write_atomically(path.as_ref(), &bytes)
}

/// As [`save`], with `metadata` in the file's header beside `{"format": "pt"}`: the strings
/// that belong with the weights, such as a model's configuration or its vocabulary, which
/// [`read_metadata`] returns. PyTorch's `safetensors.torch.save_file(tensors, path, metadata)`
/// writes the same.
///
/// # Errors
///
/// As [`save`]; [`Error::InvalidArgument`] if `metadata` has the reserved key `"format"`.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use recurrent::{load, read_metadata, save_with_metadata, LinearConfig};
///
/// let head = LinearConfig::new(4, 2).init_seeded::<f32>(0)?;
/// let path = std::env::temp_dir().join(format!("head-meta-{}.safetensors", std::process::id()));
/// let config = HashMap::from([("classes".to_string(), "negative,positive".to_string())]);
/// save_with_metadata(&head, &config, &path)?;
///
/// let metadata = read_metadata(&path)?;
/// assert_eq!(metadata["classes"], "negative,positive");
/// assert_eq!(metadata["format"], "pt");
/// let mut copy = LinearConfig::new(4, 2).init_seeded::<f32>(1)?;
/// load(&mut copy, &path)?; // the weights load as from any other file
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn save_with_metadata<T: Float, M: Parameters<T> + ?Sized>(
    model: &M,
    metadata: &HashMap<String, String>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let bytes = serialize(model, metadata)?;
    write_atomically(path.as_ref(), &bytes)
}

/// The header metadata of the safetensors file `path`: every key and value, including
/// `"format"` when the file has it; empty for a file without metadata. The tensors are not
/// decoded.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read; [`Error::Corrupt`] naming the file if it is not a
/// valid safetensors file (checked from its first bytes as by [`load`]).
pub fn read_metadata(path: impl AsRef<Path>) -> Result<HashMap<String, String>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// How [`read_into`] treats a file tensor whose element type is not the model's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dtypes {
    /// Report [`Error::DtypeMismatch`].
    Strict,
    /// Convert `F32` and `F64` to `T`.
    Converting,
}

/// Parses `bytes` as safetensors, reporting a malformed file as [`Error::Corrupt`].
fn parse<'a>(bytes: &'a [u8], path: &str) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| Error::Corrupt {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// The values of a file tensor as `T`, if its element type is allowed by `dtypes`.
fn decode<T: Float>(name: &str, dtype: Dtype, data: &[u8], dtypes: Dtypes) -> Result<Vec<T>> {
    let allowed = dtype == <T as Sealed>::DTYPE
        || dtypes == Dtypes::Converting && matches!(dtype, Dtype::F32 | Dtype::F64);
    if !allowed {
        return Err(Error::DtypeMismatch {
            name: name.to_string(),
            expected: match dtypes {
                Dtypes::Strict => <T as Sealed>::DTYPE_NAME,
                Dtypes::Converting => "F32 or F64",
            },
            actual: dtype.to_string(),
        });
    }
    // safetensors checked that `data` holds exactly shape·size bytes
    Ok(if dtype == Dtype::F32 {
        data.chunks_exact(4)
            .map(|b| T::from_f64(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))))
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|b| {
                let b = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                T::from_f64(f64::from_le_bytes(b))
            })
            .collect()
    })
}

/// Checks every tensor of the file against `model`, then copies them in.
fn read_into<T: Float, M: Parameters<T> + ?Sized>(
    model: &mut M,
    bytes: &[u8],
    path: &str,
    dtypes: Dtypes,
) -> Result<()> {
    let file = parse(bytes, path)?;
    let mut values: HashMap<String, Vec<T>> = HashMap::new();
    let mut first_error = None;
    model.visit_params(&mut |name, p| {
        if first_error.is_some() {
            return;
        }
        let checked = match file.tensor(name) {
            Err(_) => Err(Error::MissingParameter {
                name: name.to_string(),
                reason: "the file has no tensor of that name",
            }),
            Ok(view) if view.shape() != p.shape() => Err(Error::ParameterShape {
                name: name.to_string(),
                expected: p.shape().to_vec(),
                actual: view.shape().to_vec(),
            }),
            Ok(view) => decode(name, view.dtype(), view.data(), dtypes),
        };
        match checked {
            Ok(v) => {
                if values.insert(name.to_string(), v).is_some() {
                    first_error = Some(Error::InvalidArgument {
                        name: "model",
                        reason: format!("two parameters are named `{name}`"),
                    });
                }
            }
            Err(e) => first_error = Some(e),
        }
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut names = file.names();
    names.sort_unstable();
    if let Some(name) = names.into_iter().find(|n| !values.contains_key(*n)) {
        return Err(Error::UnexpectedParameter {
            name: name.to_string(),
        });
    }
    model.visit_params_mut(&mut |name, p| match values.get(name) {
        Some(v) if v.len() == p.len() => p.as_mut_slice().copy_from_slice(v),
        _ => debug_assert!(
            false,
            "visit_params_mut visited `{name}` unlike visit_params"
        ),
    });
    Ok(())
}

/// Sets the parameters of `model` from the safetensors bytes `bytes` (see [`load`]).
///
/// # Errors
///
/// As [`load`], with `<memory>` as the path of [`Error::Corrupt`], and never [`Error::Io`].
pub fn from_bytes<T: Float, M: Parameters<T> + ?Sized>(model: &mut M, bytes: &[u8]) -> Result<()> {
    read_into(model, bytes, IN_MEMORY, Dtypes::Strict)
}

/// Sets every parameter of `model` from the safetensors file `path`, whose tensors must be
/// exactly the model's: the same names, the same shapes, and `T`'s element type (`F32` for an
/// `f32` model, `F64` for an `f64` model; see [`load_converting`] to convert).
///
/// Every tensor is checked before any parameter changes, so on error the model is as it was.
/// A file written by PyTorch with `safetensors.torch.save_file(model.state_dict(), path)`
/// loads into the model of the same configuration.
///
/// # Errors
///
/// - [`Error::Io`] if the file cannot be read;
/// - [`Error::Corrupt`] naming the file if it is not a valid safetensors file (truncated,
///   garbage); a file that does not start as one (a header length that does not fit in the
///   file or exceeds safetensors' limit of 100 MB, a header that is not a JSON object) is
///   rejected from its first bytes, before the rest is read;
/// - [`Error::MissingParameter`] naming a parameter of `model` that the file lacks;
/// - [`Error::ParameterShape`] naming a tensor whose shape differs, with both shapes;
/// - [`Error::DtypeMismatch`] naming a tensor of another element type;
/// - [`Error::UnexpectedParameter`] naming a tensor that is not a parameter of `model`.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{load, save, Error, LstmCellConfig, Recurrent};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let path = std::env::temp_dir().join(format!("lstm-doc-{}.safetensors", std::process::id()));
/// save(&Recurrent::new(LstmCellConfig::new(3, 4).init::<f32>(&mut rng)?), &path)?;
///
/// // a model of another size does not fit
/// let mut other = Recurrent::new(LstmCellConfig::new(3, 5).init::<f32>(&mut rng)?);
/// let e = load(&mut other, &path).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "shape mismatch for parameter `weight_ih_l0`: the model has [20, 3], got [16, 3]"
/// );
/// // nor does the same model in f64 without conversion
/// let mut wide = Recurrent::new(LstmCellConfig::new(3, 4).init::<f64>(&mut rng)?);
/// assert!(matches!(load(&mut wide, &path), Err(Error::DtypeMismatch { .. })));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), Error>(())
/// ```
pub fn load<T: Float, M: Parameters<T> + ?Sized>(
    model: &mut M,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    read_into(model, &bytes, &path.display().to_string(), Dtypes::Strict)
}

/// As [`load`], but `F32` and `F64` tensors are both accepted and converted to `T` (rounded
/// to nearest for `f64` to `f32`, exact the other way), as PyTorch's `load_state_dict` copies
/// with conversion.
///
/// # Errors
///
/// As [`load`]; [`Error::DtypeMismatch`] only for element types other than `F32` and `F64`.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{load_converting, save, LstmCellConfig, Parameters, Recurrent};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let path = std::env::temp_dir().join(format!("lstm-f32-{}.safetensors", std::process::id()));
/// let narrow = Recurrent::new(LstmCellConfig::new(3, 4).init::<f32>(&mut rng)?);
/// save(&narrow, &path)?;
///
/// let mut wide = Recurrent::new(LstmCellConfig::new(3, 4).init::<f64>(&mut rng)?);
/// load_converting(&mut wide, &path)?;
/// assert_eq!(wide.state_dict().get("bias_hh_l0").unwrap().cast::<f32>(),
///            *narrow.state_dict().get("bias_hh_l0").unwrap());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn load_converting<T: Float, M: Parameters<T> + ?Sized>(
    model: &mut M,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    read_into(
        model,
        &bytes,
        &path.display().to_string(),
        Dtypes::Converting,
    )
}

/// Every tensor of the safetensors file `path`, by name in lexicographic order (the order
/// of a file written by safetensors), as `T`: the weights of a PyTorch `state_dict`, to
/// inspect or to rearrange before loading.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read; [`Error::Corrupt`] if it is not a valid safetensors
/// file (checked from its first bytes as by [`load`]), or if a tensor has a rank other than 1 to 3
/// (which [`Tensor`] cannot hold); [`Error::DtypeMismatch`] naming a tensor whose element type is
/// not `T`'s.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{read_tensors, save, GruCellConfig, Recurrent};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let path = std::env::temp_dir().join(format!("gru-read-{}.safetensors", std::process::id()));
/// save(&Recurrent::new(GruCellConfig::new(2, 3).init::<f32>(&mut rng)?), &path)?;
/// let tensors = read_tensors::<f32>(&path)?;
/// let names: Vec<&str> = tensors.iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]);
/// assert_eq!(tensors.get("weight_ih_l0").unwrap().shape(), &[9, 2]);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn read_tensors<T: Float>(path: impl AsRef<Path>) -> Result<NamedTensors<T>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let path = path.display().to_string();
    let file = parse(&bytes, &path)?;
    let mut names = file.names();
    names.sort_unstable();
    let mut tensors = NamedTensors::new();
    for name in names {
        let view = file.tensor(name).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let values = decode(name, view.dtype(), view.data(), Dtypes::Strict)?;
        let tensor = Tensor::from_vec(values, view.shape()).map_err(|_| Error::Corrupt {
            path: path.clone(),
            reason: format!(
                "tensor `{name}` has shape {:?}; only tensors of rank 1 to 3 can be read",
                view.shape()
            ),
        })?;
        tensors.push(name, tensor);
    }
    Ok(tensors)
}
