//! Reading the two review data sets from disk: IMDB (Maas et al., 2011; one UTF-8 file per
//! review) and MR (Pang & Lee, 2005; one Windows-1252 line per snippet).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One labelled review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The review's text, as stored (not tokenized).
    pub text: String,
    /// 0 for negative, 1 for positive.
    pub label: usize,
    /// IMDB: the `<id>` of its file `<id>_<rating>.txt`; MR: its 0-based line index in its file.
    pub id: usize,
}

/// The IMDB data set, both splits ordered as the course preset orders them: the positive
/// reviews by numeric id, then the negative ones by numeric id.
#[derive(Clone, Debug)]
pub struct Imdb {
    /// The 25,000 training reviews.
    pub train: Vec<Review>,
    /// The 25,000 test reviews.
    pub test: Vec<Review>,
}

/// Why the data could not be found, fetched or read; its message names the file, folder or URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    /// The file, folder or URL concerned.
    subject: String,
    /// What is wrong with it.
    message: String,
}

impl DataError {
    /// An error about the file or folder `path`.
    pub fn at(path: &Path, message: impl Into<String>) -> Self {
        Self::about(path.display().to_string(), message)
    }

    /// An error about `subject` (a URL, or a description of what was looked for).
    pub fn about(subject: impl Into<String>, message: impl Into<String>) -> Self {
        DataError {
            subject: subject.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

impl std::error::Error for DataError {}

/// Whether the review with this `id` is held out: the MR test fold (fold 9 of the 10-fold
/// protocol, where line `i` of each file goes to fold `i mod 10`) and the IMDB validation set
/// taken from `train` (the files whose `<id> mod 10 = 9`, 1,250 per class). Both rules are the
/// evaluation protocol of the data sets' description, chosen because they need no random
/// numbers and give the same split in any language.
pub fn is_held_out(id: usize) -> bool {
    id % 10 == 9
}

/// A review file found in a class folder, before it is read.
struct ReviewFile {
    /// Where it is.
    path: PathBuf,
    /// Its class: 0 negative, 1 positive.
    label: usize,
    /// The `<id>` of its name.
    id: usize,
}

/// Reads the IMDB data set from `dir`, the folder holding `train/` and `test/` (each with
/// `pos/` and `neg/`). Only the files named `<id>_<rating>.txt` are reviews; files with other
/// extensions are ignored, other `.txt` names are an error.
pub fn load_imdb(dir: &Path) -> Result<Imdb, DataError> {
    if !dir.is_dir() {
        return Err(DataError::at(
            dir,
            "no such folder (expected the IMDB data set, holding train/ and test/)",
        ));
    }
    Ok(Imdb {
        train: load_split(&dir.join("train"))?,
        test: load_split(&dir.join("test"))?,
    })
}

/// The reviews of one IMDB split (`train/` or `test/`): `pos/` by id, then `neg/` by id.
fn load_split(split: &Path) -> Result<Vec<Review>, DataError> {
    let mut files = list_reviews(&split.join("pos"), 1)?;
    files.extend(list_reviews(&split.join("neg"), 0)?);
    let texts = read_in_two_threads(&files)?;
    Ok(files
        .into_iter()
        .zip(texts)
        .map(|(file, text)| Review {
            text,
            label: file.label,
            id: file.id,
        })
        .collect())
}

/// The review files of one class folder, sorted by id; an error if the folder is missing, holds
/// none, or holds a badly named `.txt` file or two files with the same id.
fn list_reviews(folder: &Path, label: usize) -> Result<Vec<ReviewFile>, DataError> {
    let entries = fs::read_dir(folder).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => DataError::at(folder, "missing folder"),
        _ => DataError::at(folder, format!("cannot list the folder: {error}")),
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|error| DataError::at(folder, format!("cannot list the folder: {error}")))?;
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "txt") {
            continue;
        }
        let id = review_id(&path).ok_or_else(|| {
            DataError::at(
                &path,
                "a .txt file whose name is not <id>_<rating>.txt (both numbers)",
            )
        })?;
        files.push(ReviewFile { path, label, id });
    }
    if files.is_empty() {
        return Err(DataError::at(
            folder,
            "no reviews (files named <id>_<rating>.txt) in this folder",
        ));
    }
    files.sort_unstable_by_key(|file| file.id);
    if let Some(pair) = files.windows(2).find(|pair| pair[0].id == pair[1].id) {
        return Err(DataError::at(
            &pair[1].path,
            format!(
                "review id {} is also the id of {}",
                pair[1].id,
                pair[0].path.display()
            ),
        ));
    }
    Ok(files)
}

/// The `<id>` of a file named `<id>_<rating>.txt`, or `None` for any other name.
fn review_id(path: &Path) -> Option<usize> {
    let stem = path.file_stem()?.to_str()?;
    let (id, rating) = stem.split_once('_')?;
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_number(id) || !is_number(rating) {
        return None;
    }
    id.parse().ok()
}

/// The texts of `files`, in order, read by two threads (one per half).
fn read_in_two_threads(files: &[ReviewFile]) -> Result<Vec<String>, DataError> {
    let (first, second) = files.split_at(files.len().div_ceil(2));
    std::thread::scope(|scope| {
        let second_half = scope.spawn(|| read_reviews(second));
        let mut texts = read_reviews(first)?;
        let rest = second_half
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        texts.extend(rest);
        Ok(texts)
    })
}

/// The texts of `files`, each checked to be UTF-8.
fn read_reviews(files: &[ReviewFile]) -> Result<Vec<String>, DataError> {
    files
        .iter()
        .map(|file| {
            let bytes = fs::read(&file.path)
                .map_err(|error| DataError::at(&file.path, format!("cannot read: {error}")))?;
            String::from_utf8(bytes).map_err(|error| {
                DataError::at(
                    &file.path,
                    format!(
                        "not valid UTF-8 (first bad byte at offset {})",
                        error.utf8_error().valid_up_to()
                    ),
                )
            })
        })
        .collect()
}

/// Reads the MR data set from `dir`: `rt-polarity.pos` (label 1), then `rt-polarity.neg`
/// (label 0), one review per line. Lines are split on the byte 0x0A only (0x85, an ellipsis in
/// these files, is a line break for Unicode-aware splitters) and decoded from Windows-1252.
pub fn load_mr(dir: &Path) -> Result<Vec<Review>, DataError> {
    let mut reviews = Vec::new();
    for (name, label) in [("rt-polarity.pos", 1), ("rt-polarity.neg", 0)] {
        let path = dir.join(name);
        let bytes = fs::read(&path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => DataError::at(&path, "missing file (an MR data file)"),
            _ => DataError::at(&path, format!("cannot read: {error}")),
        })?;
        let mut lines: Vec<&[u8]> = bytes.split(|&byte| byte == b'\n').collect();
        if lines.last().is_some_and(|last| last.is_empty()) {
            lines.pop();
        }
        if lines.is_empty() {
            return Err(DataError::at(
                &path,
                "empty file (expected one review per line)",
            ));
        }
        reviews.extend(lines.into_iter().enumerate().map(|(id, line)| Review {
            text: decode_windows_1252(line),
            label,
            id,
        }));
    }
    Ok(reviews)
}

/// The characters of the bytes 0x80…0x9F in Windows-1252. The five bytes the code page leaves
/// undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the C1 controls of the same value, as the
/// WHATWG Encoding Standard does; every other byte is the Latin-1 character of the same value.
const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
];

/// `bytes` decoded from Windows-1252 (total: every byte is a character).
fn decode_windows_1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&byte| match byte {
            0x80..=0x9f => WINDOWS_1252_HIGH[usize::from(byte - 0x80)],
            _ => char::from(byte),
        })
        .collect()
}

/// Helpers the tests of this example share.
#[cfg(test)]
pub(crate) mod testing {
    use std::fs;
    use std::path::PathBuf;

    /// A fresh, empty folder for one test, removed when dropped.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        /// An empty folder named after the process and `test`.
        pub(crate) fn new(test: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("recurrent-ex04-{}-{test}", std::process::id()));
            // a leftover of an earlier run with the same process id
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("create the test folder");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The folder named by `RECURRENT_DATA`, or `None` (with a note) when it is not set.
    pub(crate) fn real_data(test: &str) -> Option<PathBuf> {
        let dir = std::env::var_os("RECURRENT_DATA").map(PathBuf::from);
        if dir.is_none() {
            eprintln!("{test}: skipped, RECURRENT_DATA is not set");
        }
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{real_data, TempDir};
    use super::*;

    /// Writes `contents` to `root/relative`, creating the folders.
    fn write(root: &Path, relative: &str, contents: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create the folder");
        fs::write(path, contents).expect("write the file");
    }

    /// A tiny IMDB tree: 3 + 2 training and 1 + 1 test reviews, with ids out of order, ids
    /// past 9 (numeric, not text order) and files that are not reviews.
    fn tiny_imdb(root: &Path) {
        write(root, "train/pos/10_8.txt", b"ten pos");
        write(root, "train/pos/2_9.txt", b"two pos<br />caf\xc3\xa9");
        write(root, "train/pos/9_7.txt", b"nine pos");
        write(root, "train/neg/1_1.txt", b"one neg");
        write(root, "train/neg/0_3.txt", b"zero neg");
        write(root, "train/urls_pos.tsv", b"not a review");
        write(root, "train/neg/notes.md", b"ignored");
        write(root, "test/pos/0_10.txt", b"test pos");
        write(root, "test/neg/0_2.txt", b"test neg");
    }

    #[test]
    fn imdb_order_labels_and_ids() {
        let dir = TempDir::new("imdb-order");
        tiny_imdb(&dir.0);
        let imdb = load_imdb(&dir.0).expect("a valid tiny data set");
        let summary: Vec<(usize, usize, &str)> = imdb
            .train
            .iter()
            .map(|review| (review.label, review.id, review.text.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, 2, "two pos<br />café"),
                (1, 9, "nine pos"),
                (1, 10, "ten pos"),
                (0, 0, "zero neg"),
                (0, 1, "one neg"),
            ]
        );
        assert_eq!(imdb.test.len(), 2);
        assert_eq!((imdb.test[0].label, imdb.test[1].label), (1, 0));
        let held_out: Vec<usize> = imdb
            .train
            .iter()
            .filter(|review| is_held_out(review.id))
            .map(|review| review.id)
            .collect();
        assert_eq!(held_out, [9]);
    }

    /// The message of the error `load_imdb` gives after `damage` is done to a tiny data set.
    fn imdb_error(test: &str, damage: impl FnOnce(&Path)) -> String {
        let dir = TempDir::new(test);
        tiny_imdb(&dir.0);
        damage(&dir.0);
        load_imdb(&dir.0)
            .expect_err("the damaged data set must be rejected")
            .to_string()
    }

    #[test]
    fn imdb_errors_name_the_path() {
        let missing = imdb_error("imdb-missing", |root| {
            fs::remove_dir_all(root.join("test/neg")).expect("remove");
        });
        assert!(missing.ends_with("neg: missing folder"), "{missing}");
        assert!(missing.contains("test"), "{missing}");

        let empty = imdb_error("imdb-empty", |root| {
            fs::remove_file(root.join("train/neg/0_3.txt")).expect("remove");
            fs::remove_file(root.join("train/neg/1_1.txt")).expect("remove");
        });
        assert!(empty.contains("no reviews"), "{empty}");
        assert!(empty.contains("neg"), "{empty}");

        let utf8 = imdb_error("imdb-utf8", |root| {
            write(root, "train/pos/9_7.txt", b"caf\xe9 latin-1");
        });
        assert!(utf8.contains("9_7.txt: not valid UTF-8"), "{utf8}");
        assert!(utf8.contains("offset 3"), "{utf8}");

        for bad_name in [
            "7.txt",
            "x_8.txt",
            "3_.txt",
            "_4.txt",
            "3_8_1.txt",
            "-3_8.txt",
        ] {
            let name = imdb_error("imdb-name", |root| {
                write(root, &format!("test/pos/{bad_name}"), b"text");
            });
            assert!(name.contains(bad_name), "{name}");
            assert!(name.contains("not <id>_<rating>.txt"), "{name}");
        }

        let duplicate = imdb_error("imdb-duplicate", |root| {
            write(root, "train/pos/9_10.txt", b"again");
        });
        assert!(
            duplicate.contains("review id 9 is also the id of"),
            "{duplicate}"
        );

        let folder = TempDir::new("imdb-nowhere");
        let nowhere = folder.0.join("absent");
        let error = load_imdb(&nowhere).expect_err("no folder").to_string();
        assert!(error.starts_with(&nowhere.display().to_string()), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn imdb_unreadable_file_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("imdb-unreadable");
        tiny_imdb(&dir.0);
        let path = dir.0.join("test/pos/0_10.txt");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
        if fs::read(&path).is_ok() {
            // running as a user who may read anything: a directory in place of a file instead
            fs::remove_file(&path).expect("remove");
            fs::create_dir(&path).expect("mkdir");
        }
        let error = load_imdb(&dir.0).expect_err("unreadable").to_string();
        assert!(error.contains("0_10.txt: cannot read"), "{error}");
    }

    #[test]
    fn mr_lines_labels_and_windows_1252() {
        let dir = TempDir::new("mr-lines");
        // 0x85 (an ellipsis) must not end a line; the last line has no final newline
        write(
            &dir.0,
            "rt-polarity.pos",
            b"a \x85 b \x91quoted' \n1\x962 3\x974 \n\xe9l ni\xf1o \nfourth",
        );
        write(&dir.0, "rt-polarity.neg", b"bad . \n\n");
        let reviews = load_mr(&dir.0).expect("valid files");
        let summary: Vec<(usize, usize, &str)> = reviews
            .iter()
            .map(|review| (review.label, review.id, review.text.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, 0, "a \u{2026} b \u{2018}quoted' "),
                (1, 1, "1\u{2013}2 3\u{2014}4 "),
                (1, 2, "él niño "),
                (1, 3, "fourth"),
                (0, 0, "bad . "),
                (0, 1, ""),
            ]
        );
    }

    #[test]
    fn windows_1252_table() {
        assert_eq!(
            decode_windows_1252(b"\x80\x9f\xa0\xff\x7f"),
            "€Ÿ\u{a0}ÿ\u{7f}"
        );
        for byte in [0x81u8, 0x8d, 0x8f, 0x90, 0x9d] {
            assert_eq!(decode_windows_1252(&[byte]), char::from(byte).to_string());
        }
        assert_eq!(decode_windows_1252(b"\x8a\x8c\x9a\x9c"), "ŠŒšœ");
    }

    #[test]
    fn mr_errors_name_the_file() {
        let dir = TempDir::new("mr-errors");
        let error = load_mr(&dir.0).expect_err("no files").to_string();
        assert!(error.contains("rt-polarity.pos: missing file"), "{error}");
        write(&dir.0, "rt-polarity.pos", b"good\n");
        let error = load_mr(&dir.0).expect_err("no neg file").to_string();
        assert!(error.contains("rt-polarity.neg: missing file"), "{error}");
        write(&dir.0, "rt-polarity.neg", b"");
        let error = load_mr(&dir.0).expect_err("empty").to_string();
        assert!(error.contains("rt-polarity.neg: empty file"), "{error}");
        fs::remove_file(dir.0.join("rt-polarity.neg")).expect("remove");
        fs::create_dir(dir.0.join("rt-polarity.neg")).expect("mkdir");
        let error = load_mr(&dir.0).expect_err("a folder").to_string();
        assert!(error.contains("rt-polarity.neg: cannot read"), "{error}");
    }

    #[test]
    fn real_imdb_counts() {
        let Some(root) = real_data("real_imdb_counts") else {
            return;
        };
        let imdb = load_imdb(&root.join("imdb")).expect("the IMDB data set");
        for split in [&imdb.train, &imdb.test] {
            assert_eq!(split.len(), 25_000);
            assert_eq!(split.iter().filter(|r| r.label == 1).count(), 12_500);
            assert!(split[..12_500].iter().all(|r| r.label == 1));
            assert!(split
                .iter()
                .enumerate()
                .all(|(i, review)| review.id == i % 12_500));
        }
        assert!(imdb.train[0]
            .text
            .starts_with("Bromwell High is a cartoon comedy."));
        assert!(imdb.test[0]
            .text
            .starts_with("I went and saw this movie last night"));
        let held_out = imdb.train.iter().filter(|r| is_held_out(r.id)).count();
        assert_eq!(held_out, 2_500);
    }

    #[test]
    fn real_mr_counts() {
        let Some(root) = real_data("real_mr_counts") else {
            return;
        };
        let reviews = load_mr(&root.join("mr")).expect("the MR data set");
        assert_eq!(reviews.len(), 10_662);
        assert_eq!(reviews.iter().filter(|r| r.label == 1).count(), 5_331);
        assert_eq!(reviews.iter().filter(|r| is_held_out(r.id)).count(), 1_066);
        assert!(reviews[0]
            .text
            .starts_with("the rock is destined to be the 21st century's new \" conan \""));
        assert!(reviews[5_331]
            .text
            .starts_with("simplistic , silly and tedious ."));
        let non_ascii = reviews.iter().filter(|r| !r.text.is_ascii()).count();
        assert_eq!(non_ascii, 110 + 119);
        assert!(reviews.iter().any(|r| r.text.contains('\u{2026}')));
    }
}
