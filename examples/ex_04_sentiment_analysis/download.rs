//! Where the data sets are: a folder given by the user, a complete copy in the cache folder, or
//! a fresh download into the cache (checked against its SHA-256 and unpacked).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::data::DataError;

/// The IMDB archive on the authors' page.
pub const IMDB_URL: &str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";
/// SHA-256 of [`IMDB_URL`]'s archive (84,125,825 bytes).
pub const IMDB_SHA256: &str = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe";
/// The MR archive ("sentence polarity dataset v1.0") on the authors' page.
pub const MR_URL: &str =
    "http://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz";
/// SHA-256 of `rt-polarity.pos` as distributed (the archive itself has no published checksum).
const MR_POS_SHA256: &str = "d79ef14009bbf87cd6be21f91c3ea1a3cbcb73b34dfb4231aef7bbcd7677abc4";
/// SHA-256 of `rt-polarity.neg` as distributed.
const MR_NEG_SHA256: &str = "4af43bf489620b498a0852c5a8c6a535155dec7985fdfea782b8f7756b957ccc";
/// The file written last into an unpacked data set in the cache: without it the copy is
/// incomplete and is fetched again.
const COMPLETE_MARKER: &str = ".complete";

/// Where the data sets come from: the options of the example's command line.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Folder holding the data sets: `imdb/` (or `aclImdb/`) and `mr/`. Without it the data
    /// sets are taken from the cache folder, and IMDB and MR are downloaded there if missing.
    #[arg(long = "data", value_name = "DIR", env = "RECURRENT_DATA")]
    pub data: Option<PathBuf>,
    /// Folder where downloaded data sets are kept (managed by the example; default:
    /// `$XDG_CACHE_HOME/recurrent` or `$HOME/.cache/recurrent`, `%LOCALAPPDATA%\recurrent` on
    /// Windows).
    #[arg(long, value_name = "DIR", env = "RECURRENT_CACHE")]
    pub cache: Option<PathBuf>,
    /// Where to download the IMDB archive (`aclImdb_v1.tar.gz`) from.
    #[arg(long, value_name = "URL", default_value = IMDB_URL)]
    pub imdb_url: String,
    /// The SHA-256 the IMDB archive must have (64 hexadecimal digits).
    #[arg(long, value_name = "HEX", default_value = IMDB_SHA256)]
    pub imdb_sha256: String,
    /// Never download: fail unless the data is in `--data` or in the cache.
    #[arg(long)]
    pub no_download: bool,
}

impl DataArgs {
    /// The IMDB folder (holding `train/` and `test/`): `<data>/imdb`, `<data>/aclImdb` or
    /// `<data>` itself with `--data`; otherwise the cached copy, downloaded first if needed.
    pub fn imdb_dir(&self) -> Result<PathBuf, DataError> {
        self.imdb_dir_with(&agent(true))
    }

    /// The MR folder (holding `rt-polarity.pos` and `rt-polarity.neg`): `<data>/mr` or
    /// `<data>` itself with `--data`; otherwise the cached copy, downloaded first if needed.
    pub fn mr_dir(&self) -> Result<PathBuf, DataError> {
        self.mr_dir_with(&agent(true))
    }

    /// [`DataArgs::imdb_dir`], downloading with `agent`.
    fn imdb_dir_with(&self, agent: &ureq::Agent) -> Result<PathBuf, DataError> {
        if let Some(data) = &self.data {
            return find_imdb(data);
        }
        let source = imdb_source(&self.imdb_url, parse_sha256(&self.imdb_sha256)?);
        fetch(
            &source,
            &self.cache_dir(&source.manual)?,
            !self.no_download,
            agent,
        )
    }

    /// [`DataArgs::mr_dir`], downloading with `agent`.
    fn mr_dir_with(&self, agent: &ureq::Agent) -> Result<PathBuf, DataError> {
        if let Some(data) = &self.data {
            return find_mr(data);
        }
        let source = mr_source(MR_URL);
        fetch(
            &source,
            &self.cache_dir(&source.manual)?,
            !self.no_download,
            agent,
        )
    }

    /// The cache folder: `--cache`, else the platform's (an error carrying `manual` when the
    /// environment names none).
    fn cache_dir(&self, manual: &str) -> Result<PathBuf, DataError> {
        if let Some(cache) = &self.cache {
            return Ok(cache.clone());
        }
        default_cache_dir(cfg!(windows), |name| std::env::var_os(name)).ok_or_else(|| {
            DataError::about(
                "cache folder",
                format!(
                    "none found (HOME, XDG_CACHE_HOME and LOCALAPPDATA are unset); pass \
                     --cache DIR or set RECURRENT_CACHE. {manual}"
                ),
            )
        })
    }
}

/// The platform's cache folder for this crate: `%LOCALAPPDATA%\recurrent` on Windows, else
/// `$XDG_CACHE_HOME/recurrent` (if set to an absolute path) or `$HOME/.cache/recurrent`.
/// `variable` reads an environment variable.
fn default_cache_dir(
    windows: bool,
    variable: impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    let folder = |name: &str| {
        variable(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    let base = if windows {
        folder("LOCALAPPDATA")
    } else {
        folder("XDG_CACHE_HOME")
            .filter(|path| path.is_absolute())
            .or_else(|| folder("HOME").map(|home| home.join(".cache")))
    };
    base.map(|base| base.join("recurrent"))
}

/// The IMDB folder inside the user's data folder `data`.
fn find_imdb(data: &Path) -> Result<PathBuf, DataError> {
    if !data.is_dir() {
        return Err(DataError::at(
            data,
            "no such folder (given by --data or RECURRENT_DATA)",
        ));
    }
    for name in ["imdb", "aclImdb"] {
        let dir = data.join(name);
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    if data.join("train").is_dir() && data.join("test").is_dir() {
        return Ok(data.to_path_buf());
    }
    Err(DataError::at(
        data,
        format!(
            "no IMDB data set in this folder (given by --data or RECURRENT_DATA): looked for \
             imdb/, aclImdb/, and train/ with test/. {}",
            imdb_manual(IMDB_URL)
        ),
    ))
}

/// The MR folder inside the user's data folder `data`.
fn find_mr(data: &Path) -> Result<PathBuf, DataError> {
    if !data.is_dir() {
        return Err(DataError::at(
            data,
            "no such folder (given by --data or RECURRENT_DATA)",
        ));
    }
    let dir = data.join("mr");
    if dir.is_dir() {
        return Ok(dir);
    }
    if data.join("rt-polarity.pos").is_file() {
        return Ok(data.to_path_buf());
    }
    Err(DataError::at(
        data,
        format!(
            "no MR data set in this folder (given by --data or RECURRENT_DATA): looked for mr/ \
             and rt-polarity.pos. {}",
            mr_manual()
        ),
    ))
}

/// How to get the IMDB data set by hand.
fn imdb_manual(url: &str) -> String {
    format!(
        "To get the data by hand: download {url} (the IMDB data set, \
         https://ai.stanford.edu/~amaas/data/sentiment/), unpack it into a folder DIR, which then \
         holds aclImdb/, and pass --data DIR or set RECURRENT_DATA=DIR (DIR may hold aclImdb/ or \
         imdb/, and mr/ for the MR data set)"
    )
}

/// How to get the MR data set by hand.
fn mr_manual() -> String {
    format!(
        "To get the data by hand: download {MR_URL} (the sentence polarity data set v1.0), put \
         the two files rt-polarity.pos and rt-polarity.neg of its folder rt-polaritydata/ into \
         DIR/mr/, and pass --data DIR or set RECURRENT_DATA=DIR (DIR may also hold aclImdb/ or \
         imdb/)"
    )
}

/// `hex` as a SHA-256 in lower-case hexadecimal, or an error if it is not 64 hex digits.
fn parse_sha256(hex: &str) -> Result<String, DataError> {
    let hex = hex.trim().to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(DataError::about(
            "--imdb-sha256",
            format!("{hex:?} is not a SHA-256 (64 hexadecimal digits)"),
        ));
    }
    Ok(hex)
}

/// A data set's archive on the web and what to keep of it.
struct Source {
    /// Where the archive is.
    url: String,
    /// The SHA-256 the archive must have, when one is published.
    archive_sha256: Option<String>,
    /// Name of the archive while it is in the cache folder.
    archive_name: &'static str,
    /// Name of the unpacked data set in the cache folder.
    folder: &'static str,
    /// Where a member of the archive (the components of its path) goes inside the unpacked
    /// folder; `None` leaves it out.
    destination: fn(&[&str]) -> Option<PathBuf>,
    /// What the unpacked folder must hold: folders that must not be empty, and files with the
    /// SHA-256 they must have.
    required: Vec<(&'static str, Option<String>)>,
    /// How to get the data by hand, for the error messages.
    manual: String,
}

/// The IMDB archive at `url`, expected to have the SHA-256 `sha256`.
fn imdb_source(url: &str, sha256: String) -> Source {
    Source {
        url: url.to_owned(),
        archive_sha256: Some(sha256),
        archive_name: "aclImdb_v1.tar.gz",
        folder: "aclImdb",
        destination: imdb_destination,
        required: ["train/pos", "train/neg", "test/pos", "test/neg"]
            .into_iter()
            .map(|folder| (folder, None))
            .collect(),
        manual: imdb_manual(url),
    }
}

/// Where an IMDB archive member goes: `aclImdb/README`, `aclImdb/imdb.vocab` and the reviews
/// `aclImdb/{train,test}/{pos,neg}/*.txt` are kept (without the `aclImdb/`), nothing else (not
/// the 50,000 unlabelled reviews, the bag-of-words files or the URL lists).
fn imdb_destination(components: &[&str]) -> Option<PathBuf> {
    match components {
        ["aclImdb", file @ ("README" | "imdb.vocab")] => Some(PathBuf::from(file)),
        ["aclImdb", split @ ("train" | "test"), class @ ("pos" | "neg"), review]
            if review.ends_with(".txt") =>
        {
            Some([*split, *class, *review].iter().collect())
        }
        _ => None,
    }
}

/// The MR archive at `url`; its two data files must have their published SHA-256.
fn mr_source(url: &str) -> Source {
    Source {
        url: url.to_owned(),
        archive_sha256: None,
        archive_name: "rt-polaritydata.tar.gz",
        folder: "mr",
        destination: mr_destination,
        required: vec![
            ("rt-polarity.pos", Some(MR_POS_SHA256.to_owned())),
            ("rt-polarity.neg", Some(MR_NEG_SHA256.to_owned())),
        ],
        manual: mr_manual(),
    }
}

/// Where an MR archive member goes: the two data files, from whatever folder, nothing else.
fn mr_destination(components: &[&str]) -> Option<PathBuf> {
    match components.last().copied() {
        Some(file @ ("rt-polarity.pos" | "rt-polarity.neg")) => Some(PathBuf::from(file)),
        _ => None,
    }
}

/// The HTTP client: generous time limits for connecting and for the server's answer, none for
/// the body (the IMDB archive takes minutes on a slow line); proxies from the environment
/// when `proxies` is set.
fn agent(proxies: bool) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)));
    if !proxies {
        config = config.proxy(None);
    }
    config.build().into()
}

/// The unpacked `source` in `cache`: the complete copy if there is one, else (when `download`
/// is allowed) fetched, checked and unpacked.
fn fetch(
    source: &Source,
    cache: &Path,
    download: bool,
    agent: &ureq::Agent,
) -> Result<PathBuf, DataError> {
    let target = cache.join(source.folder);
    if target.join(COMPLETE_MARKER).is_file() {
        return Ok(target);
    }
    if !download {
        return Err(DataError::at(
            &target,
            format!(
                "no complete copy here and --no-download is set. {}",
                source.manual
            ),
        ));
    }
    fs::create_dir_all(cache).map_err(|error| {
        DataError::at(cache, format!("cannot create the cache folder: {error}"))
    })?;
    let id = std::process::id();
    let archive = cache.join(format!("{}.{id}.part", source.archive_name));
    let partial = cache.join(format!("{}.{id}.partial", source.folder));
    let unpacked = download_and_unpack(source, &archive, &partial, agent);
    // the archive is not kept, whether unpacking worked or not
    let _ = fs::remove_file(&archive);
    if let Err(error) = unpacked.and_then(|()| check_required(source, &partial)) {
        let _ = fs::remove_dir_all(&partial);
        return Err(error);
    }
    install(&partial, &target)
}

/// Downloads `source` into `archive`, checks its SHA-256 and unpacks the members it keeps into
/// the folder `partial`.
fn download_and_unpack(
    source: &Source,
    archive: &Path,
    partial: &Path,
    agent: &ureq::Agent,
) -> Result<(), DataError> {
    let sha256 = download(agent, source, archive)?;
    if let Some(expected) = &source.archive_sha256 {
        if &sha256 != expected {
            let _ = fs::remove_file(archive);
            return Err(DataError::about(
                &source.url,
                format!(
                    "SHA-256 mismatch: expected {expected}, got {sha256}; the downloaded file \
                     was deleted. {}",
                    source.manual
                ),
            ));
        }
    }
    unpack(source, archive, partial)
}

/// Streams `source`'s archive into the file `archive` with a progress bar, returning its
/// SHA-256; on failure the file is removed.
fn download(agent: &ureq::Agent, source: &Source, archive: &Path) -> Result<String, DataError> {
    let failed = |reason: String| {
        DataError::about(
            &source.url,
            format!("download failed: {reason}. {}", source.manual),
        )
    };
    let mut response = agent
        .get(&source.url)
        .call()
        .map_err(|error| failed(error.to_string()))?;
    let body = response.body_mut();
    let bar = byte_bar(body.content_length(), source.archive_name);
    let mut reader = body.as_reader();
    let mut file = File::create(archive)
        .map_err(|error| DataError::at(archive, format!("cannot create: {error}")))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let copied = loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => break Err(failed(error.to_string())),
        };
        hasher.update(&buffer[..read]);
        if let Err(error) = file.write_all(&buffer[..read]) {
            break Err(DataError::at(archive, format!("cannot write: {error}")));
        }
        bar.inc(read as u64);
    };
    bar.finish_and_clear();
    if let Err(error) = copied.and_then(|()| {
        file.flush()
            .map_err(|error| DataError::at(archive, format!("cannot write: {error}")))
    }) {
        drop(file);
        let _ = fs::remove_file(archive);
        return Err(error);
    }
    Ok(hex(&hasher.finalize()))
}

/// A progress bar over the bytes of a download (`len` when the server gives it); it draws only
/// on a terminal.
fn byte_bar(len: Option<u64>, name: &str) -> ProgressBar {
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len),
            "{msg:<28} [{bar:32.cyan/blue}] {bytes:>10}/{total_bytes:10} {bytes_per_sec} (eta {eta})",
        ),
        None => (
            ProgressBar::no_length(),
            "{msg:<28} {spinner} {bytes:>10} {bytes_per_sec}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("downloading {name}"));
    bar
}

/// Lower-case hexadecimal of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Unpacks the members of the `.tar.gz` `archive` that `source` keeps into the new folder
/// `partial`. Every member's path is checked first: one that is absolute or climbs with `..`
/// makes the whole archive an error.
fn unpack(source: &Source, archive: &Path, partial: &Path) -> Result<(), DataError> {
    let broken = |error: io::Error| DataError::at(archive, format!("cannot unpack: {error}"));
    if partial.exists() {
        fs::remove_dir_all(partial)
            .map_err(|error| DataError::at(partial, format!("cannot remove: {error}")))?;
    }
    fs::create_dir_all(partial)
        .map_err(|error| DataError::at(partial, format!("cannot create: {error}")))?;
    let file = File::open(archive).map_err(|error| DataError::at(archive, error.to_string()))?;
    let mut members = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    for member in members.entries().map_err(broken)? {
        let mut member = member.map_err(broken)?;
        let path = member.path().map_err(broken)?.into_owned();
        let components = safe_components(&path).ok_or_else(|| {
            DataError::at(
                archive,
                format!(
                    "refused: the member {} would be written outside the folder it is \
                     unpacked into",
                    path.display()
                ),
            )
        })?;
        if !member.header().entry_type().is_file() {
            continue;
        }
        let Some(relative) = (source.destination)(&components) else {
            continue;
        };
        let destination = partial.join(relative);
        let write_error =
            |error: io::Error| DataError::at(&destination, format!("cannot write: {error}"));
        if let Some(parent) = destination.parent() {
            fs::create_dir_all(parent).map_err(write_error)?;
        }
        let mut output = File::create(&destination).map_err(write_error)?;
        io::copy(&mut member, &mut output).map_err(broken)?;
    }
    Ok(())
}

/// The components of an archive member's path, or `None` if it is absolute or has a `..`
/// (`.` components are dropped).
fn safe_components(path: &Path) -> Option<Vec<&str>> {
    let mut components = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => components.push(name.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(components)
}

/// Checks that the unpacked folder `partial` holds what `source` requires.
fn check_required(source: &Source, partial: &Path) -> Result<(), DataError> {
    for (relative, sha256) in &source.required {
        let path = partial.join(relative);
        match sha256 {
            None => {
                let holds_files = fs::read_dir(&path)
                    .map(|mut entries| entries.next().is_some())
                    .unwrap_or(false);
                if !holds_files {
                    return Err(DataError::about(
                        &source.url,
                        format!("the archive has no {}/{relative}/ files", source.folder),
                    ));
                }
            }
            Some(expected) => {
                let bytes = fs::read(&path).map_err(|_| {
                    DataError::about(&source.url, format!("the archive has no {relative}"))
                })?;
                let actual = hex(&Sha256::digest(&bytes));
                if &actual != expected {
                    return Err(DataError::about(
                        &source.url,
                        format!(
                            "{relative} has SHA-256 {actual}, expected {expected}; nothing was \
                             kept. {}",
                            source.manual
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Moves the checked folder `partial` to `target` (replacing an incomplete copy) and writes the
/// completion marker last.
fn install(partial: &Path, target: &Path) -> Result<PathBuf, DataError> {
    if target.exists() {
        if target.join(COMPLETE_MARKER).is_file() {
            // another run finished the same download first
            let _ = fs::remove_dir_all(partial);
            return Ok(target.to_path_buf());
        }
        fs::remove_dir_all(target).map_err(|error| {
            DataError::at(target, format!("cannot remove an incomplete copy: {error}"))
        })?;
    }
    fs::rename(partial, target).map_err(|error| {
        DataError::at(
            target,
            format!("cannot move {} here: {error}", partial.display()),
        )
    })?;
    fs::write(target.join(COMPLETE_MARKER), b"")
        .map_err(|error| DataError::at(target, format!("cannot mark as complete: {error}")))?;
    Ok(target.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testing::TempDir;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A `.tar.gz` holding `members` (path, contents; a path ending with `/` is a folder). The
    /// names are written into the headers as they are, so that a test can store the paths a
    /// well-behaved archiver refuses.
    fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        for (path, contents) in members {
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            let folder = path.ends_with('/');
            header.set_entry_type(if folder {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            header.set_mode(if folder { 0o755 } else { 0o644 });
            header.set_size(contents.len() as u64);
            header.set_cksum();
            builder
                .append(&header, *contents)
                .expect("append to the archive");
        }
        builder
            .into_inner()
            .and_then(|encoder| encoder.finish())
            .expect("finish the archive")
    }

    /// A small IMDB archive laid out as the real one: two reviews per class folder, plus the
    /// members that must not be unpacked.
    fn tiny_imdb_archive() -> Vec<u8> {
        tar_gz(&[
            ("aclImdb/", b""),
            ("aclImdb/README", b"Large Movie Review Dataset v1.0"),
            ("aclImdb/imdb.vocab", b"the\nand"),
            ("aclImdb/imdbEr.txt", b"0.1"),
            ("aclImdb/train/", b""),
            ("aclImdb/train/pos/", b""),
            ("aclImdb/train/pos/0_9.txt", b"great film"),
            ("aclImdb/train/pos/1_7.txt", b"good film"),
            ("aclImdb/train/neg/0_2.txt", b"bad film"),
            ("aclImdb/train/neg/1_1.txt", b"awful film"),
            ("aclImdb/train/unsup/0_0.txt", b"unlabelled"),
            ("aclImdb/train/urls_pos.txt", b"http://example.invalid/"),
            ("aclImdb/train/labeledBow.feat", b"0 0:1"),
            ("aclImdb/test/pos/0_10.txt", b"superb"),
            ("aclImdb/test/pos/1_8.txt", b"fine"),
            ("aclImdb/test/neg/0_4.txt", b"dull"),
            ("aclImdb/test/neg/1_3.txt", b"weak"),
        ])
    }

    /// A minimal HTTP/1.1 server on 127.0.0.1 answering `GET /<name>` with `body` and any
    /// other path with 404; it counts the requests it receives.
    struct Server {
        /// `http://127.0.0.1:<port>`.
        base: String,
        /// Number of requests answered so far.
        requests: Arc<AtomicUsize>,
    }

    impl Server {
        /// Serves `body` at `/<name>` from a thread that lives as long as the test process.
        fn start(name: &str, body: Vec<u8>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
            let base = format!("http://{}", listener.local_addr().expect("an address"));
            let requests = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&requests);
            let path = format!("/{name}");
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut reader = BufReader::new(&mut stream);
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        continue;
                    }
                    // the rest of the head, up to the empty line
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
                        line.clear();
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let asked = request_line.split(' ').nth(1).unwrap_or("");
                    let (status, content): (&str, &[u8]) = if asked == path {
                        ("200 OK", &body)
                    } else {
                        ("404 Not Found", b"not found")
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\
                         Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                        content.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(content);
                }
            });
            Server { base, requests }
        }

        /// Requests received so far.
        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    /// Options that download IMDB from `url` into `cache`, expecting `sha256`.
    fn download_args(cache: &Path, url: &str, sha256: &str) -> DataArgs {
        DataArgs {
            data: None,
            cache: Some(cache.to_path_buf()),
            imdb_url: url.to_owned(),
            imdb_sha256: sha256.to_owned(),
            no_download: false,
        }
    }

    /// The names in `folder`, sorted.
    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(folder)
            .expect("list the folder")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// Asserts that `error` tells how to get the IMDB data by hand.
    fn assert_manual(error: &str, url: &str) {
        assert!(error.contains(&format!("download {url}")), "{error}");
        assert!(error.contains("--data DIR"), "{error}");
        assert!(error.contains("RECURRENT_DATA"), "{error}");
        assert!(error.contains("aclImdb/"), "{error}");
    }

    #[test]
    fn download_checks_unpacks_and_caches() {
        let archive = tiny_imdb_archive();
        let sha256 = hex(&Sha256::digest(&archive));
        let server = Server::start("aclImdb_v1.tar.gz", archive);
        let cache = TempDir::new("download-ok");
        // a copy left without its marker is incomplete and must be replaced
        fs::create_dir_all(cache.0.join("aclImdb/train/pos")).expect("mkdir");
        let url = format!("{}/aclImdb_v1.tar.gz", server.base);
        // upper-case digits are accepted
        let args = download_args(&cache.0, &url, &sha256.to_uppercase());
        let dir = args
            .imdb_dir_with(&agent(false))
            .expect("download and unpack");
        assert_eq!(dir, cache.0.join("aclImdb"));
        assert_eq!(server.requests(), 1);
        // nothing else is left in the cache: no archive, no partial folder
        assert_eq!(names(&cache.0), ["aclImdb"]);
        assert_eq!(
            names(&dir),
            [".complete", "README", "imdb.vocab", "test", "train"]
        );
        assert_eq!(names(&dir.join("train")), ["neg", "pos"]);
        assert_eq!(names(&dir.join("train/pos")), ["0_9.txt", "1_7.txt"]);
        let imdb = crate::data::load_imdb(&dir).expect("load the unpacked data");
        assert_eq!((imdb.train.len(), imdb.test.len()), (4, 4));
        assert_eq!(imdb.train[0].text, "great film");
        assert_eq!(imdb.test[3].text, "weak");

        // the second call finds the complete copy, also with --no-download
        let again = args.imdb_dir_with(&agent(false)).expect("the cached copy");
        assert_eq!(again, dir);
        let offline = DataArgs {
            no_download: true,
            ..args.clone()
        };
        assert_eq!(offline.imdb_dir_with(&agent(false)).expect("cached"), dir);
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn wrong_sha256_leaves_nothing() {
        let archive = tiny_imdb_archive();
        let actual = hex(&Sha256::digest(&archive));
        let server = Server::start("aclImdb_v1.tar.gz", archive);
        let cache = TempDir::new("download-sha");
        let url = format!("{}/aclImdb_v1.tar.gz", server.base);
        let error = download_args(&cache.0, &url, IMDB_SHA256)
            .imdb_dir_with(&agent(false))
            .expect_err("the hash differs")
            .to_string();
        assert!(error.starts_with(&url), "{error}");
        assert!(
            error.contains(&format!("expected {IMDB_SHA256}, got {actual}")),
            "{error}"
        );
        assert!(error.contains("deleted"), "{error}");
        assert!(names(&cache.0).is_empty(), "{:?}", names(&cache.0));

        let error = download_args(&cache.0, &url, "c40f74")
            .imdb_dir_with(&agent(false))
            .expect_err("not a hash")
            .to_string();
        assert!(error.contains("not a SHA-256"), "{error}");
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn http_errors_tell_how_to_get_the_data() {
        let server = Server::start("aclImdb_v1.tar.gz", tiny_imdb_archive());
        let cache = TempDir::new("download-404");
        let url = format!("{}/elsewhere.tar.gz", server.base);
        let error = download_args(&cache.0, &url, IMDB_SHA256)
            .imdb_dir_with(&agent(false))
            .expect_err("404")
            .to_string();
        assert!(
            error.starts_with(&format!("{url}: download failed")),
            "{error}"
        );
        assert!(error.contains("404"), "{error}");
        assert_manual(&error, &url);
        assert!(names(&cache.0).is_empty(), "{:?}", names(&cache.0));

        // a port nobody listens on any more
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/aclImdb_v1.tar.gz",
            closed.local_addr().expect("address")
        );
        drop(closed);
        let error = download_args(&cache.0, &url, IMDB_SHA256)
            .imdb_dir_with(&agent(false))
            .expect_err("connection refused")
            .to_string();
        assert!(
            error.starts_with(&format!("{url}: download failed")),
            "{error}"
        );
        assert_manual(&error, &url);
    }

    #[test]
    fn escaping_members_are_refused() {
        for escaping in ["aclImdb/../evil.txt", "/tmp/evil.txt", "../../evil.txt"] {
            let archive = tar_gz(&[
                ("aclImdb/train/pos/0_9.txt", b"great"),
                (escaping, b"outside"),
            ]);
            let sha256 = hex(&Sha256::digest(&archive));
            let server = Server::start("a.tar.gz", archive);
            let cache = TempDir::new("download-escape");
            let error = download_args(&cache.0, &format!("{}/a.tar.gz", server.base), &sha256)
                .imdb_dir_with(&agent(false))
                .expect_err("an escaping member")
                .to_string();
            assert!(
                error.contains(&format!("refused: the member {escaping}")),
                "{error}"
            );
            assert!(names(&cache.0).is_empty(), "{:?}", names(&cache.0));
            assert!(!cache.0.parent().expect("parent").join("evil.txt").exists());
        }
        assert_eq!(
            safe_components(Path::new("./aclImdb/README")),
            Some(vec!["aclImdb", "README"])
        );
    }

    #[test]
    fn archive_without_reviews_is_an_error() {
        let archive = tar_gz(&[
            ("aclImdb/README", b"readme"),
            ("aclImdb/train/pos/0_9.txt", b"x"),
        ]);
        let sha256 = hex(&Sha256::digest(&archive));
        let server = Server::start("a.tar.gz", archive);
        let cache = TempDir::new("download-incomplete");
        let error = download_args(&cache.0, &format!("{}/a.tar.gz", server.base), &sha256)
            .imdb_dir_with(&agent(false))
            .expect_err("no negative reviews")
            .to_string();
        assert!(
            error.contains("the archive has no aclImdb/train/neg/ files"),
            "{error}"
        );
        assert!(names(&cache.0).is_empty(), "{:?}", names(&cache.0));
    }

    #[test]
    fn no_download_without_a_cached_copy() {
        let cache = TempDir::new("no-download");
        let args = DataArgs {
            no_download: true,
            ..download_args(&cache.0, "http://127.0.0.1:9/never", IMDB_SHA256)
        };
        let error = args
            .imdb_dir_with(&agent(false))
            .expect_err("offline")
            .to_string();
        assert!(error.contains("--no-download"), "{error}");
        assert_manual(&error, "http://127.0.0.1:9/never");
        let error = args
            .mr_dir_with(&agent(false))
            .expect_err("offline")
            .to_string();
        assert!(error.contains(MR_URL), "{error}");
        assert!(
            error.contains("rt-polarity.pos and rt-polarity.neg"),
            "{error}"
        );
    }

    #[test]
    fn mr_download_checks_the_files() {
        let pos: &[u8] = b"good .\n";
        let neg: &[u8] = b"bad .\n";
        let archive = tar_gz(&[
            ("rt-polaritydata/", b""),
            ("rt-polaritydata/rt-polarity.pos", pos),
            ("rt-polaritydata/rt-polarity.neg", neg),
            ("rt-polaritydata.README.1.0.txt", b"readme"),
        ]);
        let server = Server::start("rt.tar.gz", archive);
        let cache = TempDir::new("download-mr");
        let url = format!("{}/rt.tar.gz", server.base);
        let mut source = mr_source(&url);
        // the published hashes are those of the real files: these are not
        let error = fetch(&source, &cache.0, true, &agent(false)).expect_err("other files");
        assert!(error.to_string().contains(MR_POS_SHA256), "{error}");
        assert!(names(&cache.0).is_empty(), "{:?}", names(&cache.0));

        source.required = vec![
            ("rt-polarity.pos", Some(hex(&Sha256::digest(pos)))),
            ("rt-polarity.neg", Some(hex(&Sha256::digest(neg)))),
        ];
        let dir = fetch(&source, &cache.0, true, &agent(false)).expect("download");
        assert_eq!(dir, cache.0.join("mr"));
        assert_eq!(
            names(&dir),
            [".complete", "rt-polarity.neg", "rt-polarity.pos"]
        );
        let reviews = crate::data::load_mr(&dir).expect("load");
        assert_eq!(reviews.len(), 2);
        // the cached copy is found by the command-line options too, without a request
        let args = download_args(&cache.0, "http://127.0.0.1:9/never", IMDB_SHA256);
        assert_eq!(args.mr_dir_with(&agent(false)).expect("cached"), dir);
        assert_eq!(server.requests(), 2);
    }

    #[test]
    fn data_folder_resolution() {
        let root = TempDir::new("data-folder");
        let args = |data: &Path| DataArgs {
            data: Some(data.to_path_buf()),
            ..download_args(&root.0, IMDB_URL, "not used with --data")
        };
        let data = root.0.join("data");
        let error = args(&data).imdb_dir().expect_err("no folder").to_string();
        assert!(error.contains("no such folder"), "{error}");
        fs::create_dir_all(&data).expect("mkdir");
        let error = args(&data)
            .imdb_dir()
            .expect_err("empty folder")
            .to_string();
        assert!(error.starts_with(&data.display().to_string()), "{error}");
        assert!(
            error.contains("looked for imdb/, aclImdb/, and train/ with test/"),
            "{error}"
        );
        assert_manual(&error, IMDB_URL);
        let error = args(&data).mr_dir().expect_err("empty folder").to_string();
        assert!(
            error.contains("looked for mr/ and rt-polarity.pos"),
            "{error}"
        );
        assert!(error.contains(MR_URL), "{error}");

        fs::create_dir_all(data.join("train")).expect("mkdir");
        fs::create_dir_all(data.join("test")).expect("mkdir");
        assert_eq!(args(&data).imdb_dir(), Ok(data.clone()));
        fs::create_dir_all(data.join("aclImdb")).expect("mkdir");
        assert_eq!(args(&data).imdb_dir(), Ok(data.join("aclImdb")));
        fs::create_dir_all(data.join("imdb")).expect("mkdir");
        assert_eq!(args(&data).imdb_dir(), Ok(data.join("imdb")));

        fs::write(data.join("rt-polarity.pos"), b"good\n").expect("write");
        assert_eq!(args(&data).mr_dir(), Ok(data.clone()));
        fs::create_dir_all(data.join("mr")).expect("mkdir");
        assert_eq!(args(&data).mr_dir(), Ok(data.join("mr")));
    }

    #[test]
    fn command_line_options() {
        use clap::Parser;
        /// A command line with only the data options.
        #[derive(Parser)]
        struct Cli {
            /// The options under test.
            #[command(flatten)]
            data: DataArgs,
        }
        let cli = Cli::try_parse_from(["ex", "--data", "d", "--cache", "c", "--no-download"])
            .expect("valid options");
        assert_eq!(cli.data.data, Some(PathBuf::from("d")));
        assert_eq!(cli.data.cache, Some(PathBuf::from("c")));
        assert!(cli.data.no_download);
        assert_eq!(cli.data.imdb_url, IMDB_URL);
        assert_eq!(cli.data.imdb_sha256, IMDB_SHA256);
        let cli = Cli::try_parse_from(["ex", "--data", "d", "--imdb-url", "http://x/a.tgz"])
            .expect("valid options");
        assert_eq!(cli.data.imdb_url, "http://x/a.tgz");
        assert!(!cli.data.no_download);
    }

    /// The value of the variable `name` among `pairs`.
    fn variable(pairs: &[(&str, &str)], name: &str) -> Option<OsString> {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| OsString::from(value))
    }

    #[test]
    fn platform_cache_folder() {
        let unix = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")];
        assert_eq!(
            default_cache_dir(false, |name| variable(&unix, name)),
            Some(PathBuf::from("/xdg/recurrent"))
        );
        // an empty or relative XDG_CACHE_HOME is ignored, as the XDG specification says
        for xdg in ["", "relative"] {
            let pairs = [("HOME", "/home/u"), ("XDG_CACHE_HOME", xdg)];
            assert_eq!(
                default_cache_dir(false, |name| variable(&pairs, name)),
                Some(PathBuf::from("/home/u/.cache/recurrent"))
            );
        }
        assert_eq!(default_cache_dir(false, |name| variable(&[], name)), None);
        let local = "C:\\Users\\u\\AppData\\Local";
        let windows = [("LOCALAPPDATA", local), ("HOME", "/h")];
        assert_eq!(
            default_cache_dir(true, |name| variable(&windows, name)),
            Some(PathBuf::from(local).join("recurrent"))
        );
        assert_eq!(
            default_cache_dir(true, |name| variable(&[("HOME", "/h")], name)),
            None
        );
    }
}
