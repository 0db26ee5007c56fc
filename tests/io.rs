//! Weight files: `save` → `load` round trips (f32 and f64) restore the parameters and the
//! forward outputs; each bad file gives the error that names the bad tensor and leaves the
//! model untouched; truncated, flipped and garbage bytes give `Corrupt` and never panic;
//! saves are atomic; the safetensors files written by PyTorch in `tests/fixtures/pytorch/`
//! read back to the case's parameters and load into the equivalent `Lstm` / `Gru` / `Rnn`
//! (several layers, bidirectional, variable lengths, projections), which then reproduce
//! PyTorch's outputs; a file for another network is rejected by tensor name.
//!
//! Files that do not start as safetensors files do (a wrong header length, no JSON object)
//! are rejected by name from their first bytes, however large.
//!
//! Not covered: files larger than memory.

mod common;

use std::path::{Path, PathBuf};

use common::ParamList;
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    from_bytes, load, load_converting, read_metadata, read_tensors, save, save_with_metadata,
    to_bytes, Error, Float, GruCellConfig, LstmCellConfig, Mode, Nonlinearity, Parameters,
    Recurrent, RnnConfig, SequenceLayer, State, Tensor,
};

/// A fresh, empty directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("recurrent-io-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the files in the directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("readable")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Named tensors as a model: the files of the bad-file tests are written from these.
type Named<T> = ParamList<T>;

impl<T: Float> ParamList<T> {
    fn new(entries: &[(&str, &[usize])]) -> Self {
        let params = entries
            .iter()
            .enumerate()
            .map(|(k, (name, shape))| {
                let len: usize = shape.iter().product();
                let values = (0..len)
                    .map(|i| T::from_f64(k as f64 + i as f64 / 8.0))
                    .collect();
                (name.to_string(), Tensor::from_vec(values, shape).unwrap())
            })
            .collect();
        ParamList { params }
    }
}

fn lstm<T: Float>(seed: u64) -> Recurrent<recurrent::LstmCell<T>> {
    Recurrent::new(
        LstmCellConfig::new(3, 4)
            .init(&mut StdRng::seed_from_u64(seed))
            .unwrap(),
    )
}

fn round_trip_restores_parameters_and_outputs<T: Float>(dir: &TempDir) {
    let trained = lstm::<T>(1);
    let path = dir.path("lstm.safetensors");
    save(&trained, &path).unwrap();

    let mut fresh = lstm::<T>(2);
    assert_ne!(fresh.state_dict(), trained.state_dict());
    load(&mut fresh, &path).unwrap();
    assert_eq!(fresh.state_dict(), trained.state_dict());
    assert_eq!(
        fresh.param_names(),
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    );

    let x = Tensor::randn(&[5, 2, 3], &mut StdRng::seed_from_u64(3));
    let a = trained
        .forward_with_state(&x, None, Some(&[5, 3]), Mode::Eval)
        .unwrap();
    let b = fresh
        .forward_with_state(&x, None, Some(&[5, 3]), Mode::Eval)
        .unwrap();
    assert_eq!(a.output, b.output);
    assert_eq!(a.state, b.state);

    // the same bytes in memory
    let mut again = lstm::<T>(4);
    from_bytes(&mut again, &to_bytes(&trained).unwrap()).unwrap();
    assert_eq!(again.state_dict(), trained.state_dict());
    assert_eq!(
        dir.files(),
        ["lstm.safetensors"],
        "no temporary file is left"
    );
}

#[test]
fn f32_round_trip_restores_parameters_and_outputs() {
    round_trip_restores_parameters_and_outputs::<f32>(&TempDir::new("rt32"));
}

#[test]
fn f64_round_trip_restores_parameters_and_outputs() {
    round_trip_restores_parameters_and_outputs::<f64>(&TempDir::new("rt64"));
}

#[test]
fn saving_again_replaces_the_file() {
    let dir = TempDir::new("replace");
    let path = dir.path("gru.safetensors");
    let first = Recurrent::new(
        GruCellConfig::new(2, 3)
            .init::<f64>(&mut StdRng::seed_from_u64(0))
            .unwrap(),
    );
    let second = Recurrent::new(
        GruCellConfig::new(2, 3)
            .init::<f64>(&mut StdRng::seed_from_u64(1))
            .unwrap(),
    );
    save(&first, &path).unwrap();
    save(&second, &path).unwrap();
    let mut model = first.clone();
    load(&mut model, &path).unwrap();
    assert_eq!(model.state_dict(), second.state_dict());
    assert_eq!(dir.files(), ["gru.safetensors"]);
}

#[test]
fn the_file_holds_pytorch_names_dtypes_and_shapes() {
    let bytes = to_bytes(&lstm::<f32>(0)).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(header["weight_ih_l0"]["dtype"], "F32");
    assert_eq!(header["weight_ih_l0"]["shape"], serde_json::json!([16, 3]));
    assert_eq!(header["weight_hh_l0"]["shape"], serde_json::json!([16, 4]));
    assert_eq!(header["bias_hh_l0"]["shape"], serde_json::json!([16]));
    assert_eq!(header["__metadata__"]["format"], "pt");
    let bytes = to_bytes(&lstm::<f64>(0)).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..200]).contains("\"F64\""));
}

#[test]
fn metadata_is_saved_beside_the_weights_and_read_back() {
    let dir = TempDir::new("metadata");
    let path = dir.path("lstm.safetensors");
    let vocab = "<pad>\n<unk>\nthe\nfilm\n\u{e9}t\u{e9}";
    let metadata = std::collections::HashMap::from([
        ("config".to_string(), r#"{"hidden": 4}"#.to_string()),
        ("vocab".to_string(), vocab.to_string()),
    ]);
    save_with_metadata(&lstm::<f32>(0), &metadata, &path).unwrap();
    let read = read_metadata(&path).unwrap();
    assert_eq!(read.len(), 3, "{read:?}");
    assert_eq!(read["vocab"], vocab);
    assert_eq!(read["config"], r#"{"hidden": 4}"#);
    assert_eq!(read["format"], "pt");
    let mut model = lstm::<f32>(1);
    load(&mut model, &path).unwrap();
    assert_eq!(model.state_dict(), lstm::<f32>(0).state_dict());
    // a plain save has only the format
    save(&lstm::<f32>(0), &path).unwrap();
    assert_eq!(read_metadata(&path).unwrap().len(), 1);
    assert_eq!(dir.files(), ["lstm.safetensors"]);
}

#[test]
fn metadata_cannot_replace_the_format_and_bad_files_are_named() {
    let dir = TempDir::new("metadata-errors");
    let path = dir.path("lstm.safetensors");
    let reserved = std::collections::HashMap::from([("format".to_string(), "np".to_string())]);
    let e = save_with_metadata(&lstm::<f32>(0), &reserved, &path).unwrap_err();
    assert!(e.to_string().contains("`format` is reserved"), "{e}");
    assert!(dir.files().is_empty(), "nothing is written");
    std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{\"a\": 1, \"b\"").unwrap();
    match read_metadata(&path).unwrap_err() {
        Error::Corrupt { path: p, .. } => assert!(p.ends_with("lstm.safetensors"), "{p}"),
        other => panic!("expected a corrupt file, got {other:?}"),
    }
    assert!(matches!(
        read_metadata(dir.path("missing.safetensors")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn a_failed_save_leaves_no_file() {
    let dir = TempDir::new("failed");
    let e = save(&lstm::<f32>(0), dir.path("missing/lstm.safetensors")).unwrap_err();
    match e {
        Error::Io { path, kind, .. } => {
            assert!(path.ends_with("lstm.safetensors"), "{path}");
            assert_eq!(kind, std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an i/o error, got {other:?}"),
    }
    // a directory in the way: the rename fails after the temporary file was written
    std::fs::create_dir(dir.path("taken")).unwrap();
    std::fs::write(dir.path("taken/keep"), b"x").unwrap();
    assert!(matches!(
        save(&lstm::<f32>(0), dir.path("taken")),
        Err(Error::Io { .. })
    ));
    assert_eq!(dir.files(), ["taken"], "no temporary file is left");
}

#[test]
fn a_missing_file_is_an_io_error() {
    let dir = TempDir::new("missing");
    let path = dir.path("nothing.safetensors");
    let mut model = lstm::<f32>(0);
    for e in [
        load(&mut model, &path).unwrap_err(),
        load_converting(&mut model, &path).unwrap_err(),
        read_tensors::<f32>(&path).unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::Io { kind: std::io::ErrorKind::NotFound, path: p, .. } if p.ends_with("nothing.safetensors")),
            "{e:?}"
        );
        // the operating system's error is kept as the source, and the error stays comparable
        let source = std::error::Error::source(&e).expect("an i/o error has a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the source is a std::io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        // the message names the file and the kind of failure; the details are the source's,
        // not repeated, so that a report of the whole chain gives them once
        assert!(e.to_string().ends_with("(entity not found)"), "{e}");
        assert!(!e.to_string().contains(&io.to_string()), "{e}");
        assert_eq!(e.clone(), e);
    }
}

/// Writes `bytes` to `path` and checks that `load`, `load_converting` and `read_tensors`
/// reject the file as corrupt, naming it, without changing the model; returns the reason.
fn assert_corrupt_file(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    corrupt_file_reason(path)
}

/// As [`assert_corrupt_file`], for a file already written.
fn corrupt_file_reason(path: &Path) -> String {
    let mut model = lstm::<f32>(0);
    let errors = [
        load(&mut model, path).unwrap_err(),
        load_converting(&mut model, path).unwrap_err(),
        read_tensors::<f32>(path).unwrap_err(),
    ];
    assert_eq!(model, lstm::<f32>(0), "the model changed");
    let mut reasons = errors.iter().map(|e| match e {
        Error::Corrupt { path: p, reason } => {
            assert_eq!(p, &path.display().to_string());
            assert!(e.to_string().contains(p.as_str()), "{e}");
            reason.clone()
        }
        other => panic!(
            "{}: expected a corrupt-file error, got {other:?}",
            path.display()
        ),
    });
    let first = reasons.next().unwrap();
    assert!(reasons.all(|r| r == first), "{errors:?}");
    first
}

#[test]
fn a_large_file_that_is_not_safetensors_is_rejected_from_its_first_bytes() {
    let dir = TempDir::new("large");
    let size: u64 = 1 << 30;
    // a sparse 1 GiB file: nothing but its first bytes is ever written to disk
    let sparse = |name: &str, start: &[u8]| {
        let path = dir.path(name);
        let mut file = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut file, start).unwrap();
        file.set_len(size).unwrap();
        path
    };
    // text where the header length should be
    let reason = corrupt_file_reason(&sparse("text.bin", b"GIF89a.."));
    assert_eq!(
        reason,
        format!(
            "the header length is {} bytes, but the file has {size} bytes, only {} after the \
             length",
            u64::from_le_bytes(*b"GIF89a.."),
            size - 8
        )
    );
    // a length the file could hold but safetensors never writes
    let reason = corrupt_file_reason(&sparse("long.bin", &(1u64 << 29).to_le_bytes()));
    assert_eq!(
        reason,
        "the header length is 536870912 bytes, above the safetensors limit of 100000000"
    );
    // a plausible length, then no JSON object
    let mut start = 64u64.to_le_bytes().to_vec();
    start.extend_from_slice(b"PK");
    let reason = corrupt_file_reason(&sparse("zip.bin", &start));
    assert_eq!(
        reason,
        "the header does not start with `{` but with byte 0x50"
    );
    let reason = corrupt_file_reason(&sparse("zeros.bin", &[]));
    assert_eq!(reason, "the header is empty");
}

#[test]
fn a_truncated_file_is_corrupt_and_named() {
    let dir = TempDir::new("truncated");
    let bytes = to_bytes(&lstm::<f32>(0)).unwrap();
    let path = dir.path("lstm.safetensors");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    for cut in [0, 1, 7] {
        assert_eq!(
            assert_corrupt_file(&path, &bytes[..cut]),
            "truncated: fewer than the 8 bytes of the header length"
        );
    }
    for cut in [8, 9, 8 + header_len as usize - 1] {
        assert_eq!(
            assert_corrupt_file(&path, &bytes[..cut]),
            format!(
                "the header length is {header_len} bytes, but the file has {cut} bytes, only {} \
                 after the length",
                cut - 8
            )
        );
    }
    // the header whole, the data cut: left to safetensors' own checks
    for cut in [8 + header_len as usize, bytes.len() - 1] {
        assert_corrupt_file(&path, &bytes[..cut]);
    }
    std::fs::write(&path, &bytes).unwrap();
    let mut model = lstm::<f32>(1);
    load(&mut model, &path).unwrap();
    assert_eq!(model, lstm::<f32>(0));
}

#[test]
fn a_header_length_past_the_end_of_the_file_is_corrupt_and_named() {
    let dir = TempDir::new("past-end");
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let reason = assert_corrupt_file(&dir.path("short.safetensors"), &bytes);
    assert_eq!(
        reason,
        "the header length is 1000 bytes, but the file has 10 bytes, only 2 after the length"
    );
    let reason = assert_corrupt_file(&dir.path("max.safetensors"), &u64::MAX.to_le_bytes());
    assert!(
        reason.starts_with("the header length is 18446744073709551615 bytes"),
        "{reason}"
    );
}

/// Loads `file` (written from `written`) into `target` and returns the error, checking that
/// `target` did not change.
fn load_error<T: Float, U: Float>(written: &Named<U>, target: &Named<T>) -> Error {
    let bytes = to_bytes(written).unwrap();
    let mut model = target.clone();
    let e = from_bytes(&mut model, &bytes).unwrap_err();
    assert_eq!(&model, target, "a failed load changes nothing");
    e
}

const MODEL: [(&str, &[usize]); 3] = [("a", &[2, 3]), ("b", &[4]), ("c", &[2, 2, 2])];

#[test]
fn a_missing_tensor_is_named() {
    let file = Named::<f32>::new(&[("a", &[2, 3]), ("c", &[2, 2, 2])]);
    let e = load_error(&file, &Named::<f32>::new(&MODEL));
    assert_eq!(
        e.to_string(),
        "missing parameter `b`: the file has no tensor of that name"
    );
}

#[test]
fn an_unexpected_tensor_is_named() {
    let mut entries = MODEL.to_vec();
    entries.push(("d.extra", &[1]));
    let e = load_error(&Named::<f32>::new(&entries), &Named::<f32>::new(&MODEL));
    assert_eq!(
        e,
        Error::UnexpectedParameter {
            name: "d.extra".into()
        }
    );
}

#[test]
fn a_misshapen_tensor_is_named_with_both_shapes() {
    let file = Named::<f64>::new(&[("a", &[2, 3]), ("b", &[4]), ("c", &[2, 4])]);
    let e = load_error(&file, &Named::<f64>::new(&MODEL));
    assert_eq!(
        e.to_string(),
        "shape mismatch for parameter `c`: the model has [2, 2, 2], got [2, 4]"
    );
}

#[test]
fn a_wrong_dtype_is_named_unless_converting() {
    let e = load_error(&Named::<f64>::new(&MODEL), &Named::<f32>::new(&MODEL));
    assert_eq!(
        e,
        Error::DtypeMismatch {
            name: "a".into(),
            expected: "F32",
            actual: "F64".into()
        }
    );
    let e = load_error(&Named::<f32>::new(&MODEL), &Named::<f64>::new(&MODEL));
    assert_eq!(
        e.to_string(),
        "dtype mismatch for parameter `a`: expected F64, the file has F32"
    );

    // converting: f32 → f64 exactly, f64 → f32 rounded to nearest
    let dir = TempDir::new("convert");
    let narrow_path = dir.path("narrow.safetensors");
    let wide_path = dir.path("wide.safetensors");
    let narrow = lstm::<f32>(5);
    let wide = lstm::<f64>(5);
    save(&narrow, &narrow_path).unwrap();
    save(&wide, &wide_path).unwrap();
    let mut into_wide = lstm::<f64>(6);
    load_converting(&mut into_wide, &narrow_path).unwrap();
    for ((_, a), (_, b)) in into_wide
        .state_dict()
        .iter()
        .zip(narrow.state_dict().iter())
    {
        assert_eq!(a.cast::<f32>(), *b);
        assert_eq!(*a, b.cast::<f64>());
    }
    let mut into_narrow = lstm::<f32>(6);
    load_converting(&mut into_narrow, &wide_path).unwrap();
    for ((_, a), (_, b)) in into_narrow
        .state_dict()
        .iter()
        .zip(wide.state_dict().iter())
    {
        assert_eq!(*a, b.cast::<f32>());
    }
}

#[test]
fn tensors_of_other_ranks_are_shape_errors_not_panics() {
    // the header says rank 4 and rank 0; the model has rank 1 to 3
    let dir = TempDir::new("ranks");
    let path = dir.path("ranks.safetensors");
    let header = br#"{"a":{"dtype":"F32","shape":[1,1,1,1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 8]);
    std::fs::write(&path, &bytes).unwrap();

    let model = Named::<f32>::new(&[("a", &[1]), ("b", &[1])]);
    let mut m = model.clone();
    assert_eq!(
        load(&mut m, &path).unwrap_err(),
        Error::ParameterShape {
            name: "a".into(),
            expected: vec![1],
            actual: vec![1, 1, 1, 1]
        }
    );
    let mut m = Named::<f32>::new(&[("b", &[1]), ("a", &[1])]);
    assert!(matches!(load(&mut m, &path), Err(Error::ParameterShape { name, .. }) if name == "b"));
    assert_eq!(m, Named::<f32>::new(&[("b", &[1]), ("a", &[1])]));
    let e = read_tensors::<f32>(&path).unwrap_err();
    assert!(
        matches!(&e, Error::Corrupt { reason, .. } if reason.contains("`a` has shape [1, 1, 1, 1]")),
        "{e:?}"
    );
}

fn assert_corrupt(bytes: &[u8], what: &str) {
    let mut model = lstm::<f32>(0);
    match from_bytes(&mut model, bytes) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, "<memory>"),
        other => panic!("{what}: expected a corrupt-file error, got {other:?}"),
    }
    assert_eq!(model, lstm::<f32>(0), "{what}: the model changed");
}

#[test]
fn every_truncation_is_corrupt() {
    let bytes = to_bytes(&lstm::<f32>(0)).unwrap();
    // every cut: inside the length prefix, the header and the data
    for cut in 0..bytes.len() {
        assert_corrupt(&bytes[..cut], &format!("cut at {cut} of {}", bytes.len()));
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_corrupt(&longer, "one byte too many");
}

#[test]
fn garbage_is_corrupt() {
    let header = |h: &str| {
        let mut b = (h.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(h.as_bytes());
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"this is not a safetensors file".to_vec()),
        ("huge header length", u64::MAX.to_le_bytes().to_vec()),
        ("header past the end", {
            let mut b = 1000u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"{}");
            b
        }),
        ("not json", header("{not json")),
        (
            "not utf-8",
            header("\u{0}").into_iter().map(|b| b | 0x80).collect(),
        ),
        (
            "offsets past the data",
            header(r#"{"weight_ih_l0":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#),
        ),
        ("offsets not matching the shape", {
            let mut b =
                header(r#"{"weight_ih_l0":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#);
            b.extend_from_slice(&[0; 8]);
            b
        }),
        ("overflowing shape", {
            let mut b = header(&format!(
                r#"{{"weight_ih_l0":{{"dtype":"F64","shape":[{},{}],"data_offsets":[0,8]}}}}"#,
                u64::MAX,
                u64::MAX
            ));
            b.extend_from_slice(&[0; 8]);
            b
        }),
        ("unknown dtype", {
            let mut b =
                header(r#"{"weight_ih_l0":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#);
            b.extend_from_slice(&[0; 16]);
            b
        }),
    ];
    let dir = TempDir::new("garbage");
    for (k, (what, bytes)) in cases.into_iter().enumerate() {
        assert_corrupt(&bytes, what);
        assert_corrupt_file(&dir.path(&format!("{k}.safetensors")), &bytes);
    }
}

#[test]
fn flipped_bytes_never_panic_and_never_half_load() {
    let bytes = to_bytes(&lstm::<f32>(0)).unwrap();
    let original = lstm::<f32>(7);
    common::runner(512)
        .run(
            &(0..bytes.len(), any::<u8>(), 0..bytes.len(), any::<u8>()),
            |(i, x, j, y)| {
                let mut bad = bytes.clone();
                bad[i] ^= x;
                bad[j] ^= y;
                let mut model = original.clone();
                match from_bytes(&mut model, &bad) {
                    Ok(()) => {}
                    Err(
                        Error::Corrupt { .. }
                        | Error::MissingParameter { .. }
                        | Error::UnexpectedParameter { .. }
                        | Error::ParameterShape { .. }
                        | Error::DtypeMismatch { .. },
                    ) => prop_assert_eq!(&model, &original),
                    Err(e) => prop_assert!(false, "unexpected error {:?}", e),
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn random_truncations_of_pytorch_files_never_panic() {
    let dir = TempDir::new("trunc");
    let path = dir.path("cut.safetensors");
    let bytes =
        std::fs::read(common::fixtures_dir().join("lstm_l2_bi_T7_B3.f64.safetensors")).unwrap();
    common::runner(64)
        .run(&(0..bytes.len()), |cut| {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = read_tensors::<f64>(&path).unwrap_err();
            prop_assert!(matches!(e, Error::Corrupt { .. }), "{:?}", e);
            Ok(())
        })
        .unwrap();
}

/// The `*.safetensors` files of the fixtures, with their case names and element types.
fn pytorch_files() -> Vec<(String, &'static str, PathBuf)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(common::fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for dtype in ["f32", "f64"] {
            if let Some(case) = name.strip_suffix(&format!(".{dtype}.safetensors")) {
                files.push((case.to_string(), dtype, path.clone()));
            }
        }
    }
    files.sort();
    files
}

fn case(name: &str) -> common::Case {
    common::load_cases(&common::fixtures_dir())
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// Checks that the file holds the case's parameters, exactly as `T` rounds them.
fn check_pytorch_file<T: Float>(case: &common::Case, path: &Path) {
    let tensors = read_tensors::<T>(path).unwrap();
    let mut expected: Vec<&str> = case.json["params"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    expected.sort_unstable();
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n).collect();
    assert_eq!(names, expected, "{}", path.display());
    for (name, t) in tensors.iter() {
        let want = case.tensor("params", name).unwrap();
        assert_eq!(t.shape(), want.shape(), "{name}");
        // f64: the same bits; f32: PyTorch's rounding of them, which is Rust's
        assert_eq!(*t, want.cast::<T>(), "{} {name}", path.display());
    }
}

#[test]
fn pytorch_files_hold_the_cases_parameters() {
    let files = pytorch_files();
    assert!(files.len() >= 8, "the fixtures hold 4 cases in 2 dtypes");
    for (name, dtype, path) in files {
        let case = case(&name);
        if dtype == "f32" {
            check_pytorch_file::<f32>(&case, &path);
            let e = read_tensors::<f64>(&path).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::DtypeMismatch {
                        expected: "F64",
                        ..
                    }
                ),
                "{e:?}"
            );
        } else {
            check_pytorch_file::<f64>(&case, &path);
        }
        println!(
            "{name}.{dtype}: {} tensors match",
            case.json["params"].as_object().unwrap().len()
        );
    }
}

/// Loads a case's PyTorch-written files (`<case>.f64.safetensors` into the `f64` network,
/// `<case>.f32.safetensors` into the `f32` one), runs the case's input from its initial state
/// and returns the worst error of the outputs and final states against PyTorch's, per dtype.
struct LoadPytorchFiles;

impl common::WithNetwork for LoadPytorchFiles {
    type Output = (f64, f64);

    fn run<N64: SequenceLayer<f64>, N32: SequenceLayer<f32>>(
        self,
        case: &common::Case,
        mut net64: N64,
        mut net32: N32,
    ) -> (f64, f64) {
        let file =
            |dtype: &str| common::fixtures_dir().join(format!("{}.{dtype}.safetensors", case.name));
        load(&mut net64, file("f64")).unwrap();
        load(&mut net32, file("f32")).unwrap();
        (
            worst_output_error(case, &net64),
            worst_output_error(case, &net32),
        )
    }
}

/// The worst error of `net`'s output and final state on the case's input against PyTorch's.
fn worst_output_error<T: Float, N: SequenceLayer<T>>(case: &common::Case, net: &N) -> f64 {
    let x = case.tensor("inputs", "x").unwrap().cast::<T>();
    let h0 = case.tensor("inputs", "h0").unwrap().cast::<T>();
    let init = match case.tensor("inputs", "c0") {
        Some(c0) => State::from_hc(h0, c0.cast()),
        None => State::from_h(h0),
    };
    let lengths = case.lengths();
    let out = net
        .forward_with_state(&x, Some(&init), lengths.as_deref(), Mode::Eval)
        .unwrap();
    let mut errors = vec![
        common::worst_error(&out.output, &case.tensor("outputs", "output").unwrap()),
        common::worst_error(out.state.h(), &case.tensor("outputs", "h_n").unwrap()),
    ];
    if let Some(c) = out.state.c() {
        errors.push(common::worst_error(
            c,
            &case.tensor("outputs", "c_n").unwrap(),
        ));
    }
    errors.into_iter().fold(0.0, f64::max)
}

/// Every file PyTorch wrote (`safetensors.torch.save_file(model.state_dict(), path)`) loads
/// into the equivalent network, which then reproduces PyTorch's outputs: f64 to 1e-10, f32 to
/// 1e-5.
#[test]
fn pytorch_files_load_into_the_equivalent_network_and_reproduce_its_outputs() {
    let mut cases: Vec<String> = pytorch_files().into_iter().map(|(c, _, _)| c).collect();
    cases.dedup();
    assert_eq!(cases.len(), 4, "{cases:?}");
    for name in cases {
        let case = case(&name);
        let (e64, e32) = common::with_network(&case, LoadPytorchFiles);
        println!("{name}: f64 worst {e64:.1e}, f32 worst {e32:.1e}");
        assert!(e64 <= 1e-10 && e32 <= 1e-5, "{name}: f64 {e64}, f32 {e32}");
    }
}

/// A network of another configuration does not take the file, and the error names the tensor.
#[test]
fn a_pytorch_file_for_another_network_is_rejected_by_name() {
    let path = common::fixtures_dir().join("rnn_relu_l2_T4_B3.f64.safetensors");
    let rng = &mut StdRng::seed_from_u64(0);
    let relu = |c: RnnConfig| c.with_nonlinearity(Nonlinearity::Relu);
    let mut one_layer = relu(RnnConfig::new(2, 5)).init::<f64>(rng).unwrap();
    assert_eq!(
        load(&mut one_layer, &path).unwrap_err(),
        Error::UnexpectedParameter {
            name: "bias_hh_l1".into()
        }
    );
    let mut three_layers = relu(RnnConfig::new(2, 5).with_num_layers(3))
        .init::<f64>(rng)
        .unwrap();
    assert!(matches!(
        load(&mut three_layers, &path).unwrap_err(),
        Error::MissingParameter { name, .. } if name == "weight_ih_l2"
    ));
    let mut wider = relu(RnnConfig::new(2, 6).with_num_layers(2))
        .init::<f64>(rng)
        .unwrap();
    assert!(matches!(
        load(&mut wider, &path).unwrap_err(),
        Error::ParameterShape { name, .. } if name == "weight_ih_l0"
    ));
}

/// The LSTM variants save under their documented names and load back into a network of the
/// same shape, which then gives the same outputs; a file without one of their extra tensors,
/// or an LSTM's file, is refused naming the tensor.
#[test]
fn lstm_variants_round_trip_and_name_their_extra_tensors() {
    use recurrent::{LayerNormLstmConfig, PeepholeLstmConfig};

    let dir = TempDir::new("variants");
    let x = Tensor::<f32>::randn(&[5, 2, 3], &mut StdRng::seed_from_u64(9));
    let peephole = PeepholeLstmConfig::new(3, 4).with_num_layers(2);
    let saved = peephole.init_seeded::<f32>(1).unwrap();
    let path = dir.path("peephole.safetensors");
    save(&saved, &path).unwrap();
    let names: Vec<String> = read_tensors::<f32>(&path)
        .unwrap()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    for name in ["weight_ci_l0", "weight_cf_l0", "weight_co_l1", "bias_hh_l1"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let mut loaded = peephole.init_seeded::<f32>(2).unwrap();
    load(&mut loaded, &path).unwrap();
    let run = |net: &recurrent::PeepholeLstm<f32>| {
        net.forward_with_state(&x, None, None, Mode::Eval)
            .unwrap()
            .output
    };
    assert_eq!(run(&loaded), run(&saved));

    let layer_norm = LayerNormLstmConfig::new(3, 4).with_bidirectional(true);
    let saved = layer_norm.init_seeded::<f32>(3).unwrap();
    let path = dir.path("layer_norm.safetensors");
    save(&saved, &path).unwrap();
    let mut loaded = layer_norm.init_seeded::<f32>(4).unwrap();
    load(&mut loaded, &path).unwrap();
    assert_eq!(saved.state_dict(), loaded.state_dict());
    let names = saved.param_names();
    for name in [
        "ln_weight_ih_l0",
        "ln_bias_c_l0_reverse",
        "weight_hh_l0_reverse",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("bias_ih")), "{names:?}");

    // an LSTM's file lacks the peepholes
    let lstm_path = dir.path("lstm.safetensors");
    save(
        &recurrent::LstmConfig::new(3, 4)
            .with_num_layers(2)
            .init_seeded::<f32>(0)
            .unwrap(),
        &lstm_path,
    )
    .unwrap();
    let err = load(&mut peephole.init_seeded::<f32>(0).unwrap(), &lstm_path).unwrap_err();
    assert!(err.to_string().contains("weight_ci_l0"), "{err}");
    // a layer-normalised LSTM has no bias_ih: the LSTM's is unexpected (or its norms missing)
    let one_layer = dir.path("lstm1.safetensors");
    save(
        &recurrent::LstmConfig::new(3, 4)
            .with_bidirectional(true)
            .init_seeded::<f32>(0)
            .unwrap(),
        &one_layer,
    )
    .unwrap();
    let err = load(&mut layer_norm.init_seeded::<f32>(0).unwrap(), &one_layer).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("ln_weight_ih_l0") || message.contains("bias_ih_l0"),
        "{message}"
    );
}
