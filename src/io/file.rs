//! The files themselves: writing atomically (a temporary file renamed over the target) and
//! reading only what begins as a safetensors file.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// An [`Error::Io`] about `path`, with `e` as its source.
pub(super) fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        kind: e.kind(),
        source: e.into(),
    }
}

/// Writes `bytes` to `file`, flushes them to disk and closes it.
fn write_synced(mut file: fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`;
/// on failure the temporary file is removed.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    /// Tells apart the temporary files of saves running at once in one process.
    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    let Some(file_name) = path.file_name() else {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name");
        return Err(io_error(path, e));
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // create_new: never clobber (and so never remove) a file this call did not create
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_error(path, e))?;
    let written = write_synced(file, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(path, e));
    }
    // make the rename itself durable; not possible everywhere, and the data is already safe
    #[cfg(unix)]
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The most header bytes a safetensors file may have: the `safetensors` crate's own limit
/// (`MAX_HEADER_SIZE`), above which it rejects the file.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// Reads the file `path` whole, reporting failures as [`Error::Io`], after checking that it
/// begins as a safetensors file does, so that a large file of another kind is rejected as
/// [`Error::Corrupt`] having read nine bytes rather than all of it. The start of a
/// safetensors file is the header's length `n` (8 bytes, little-endian), which must leave
/// room for the header in the file and be within [`MAX_HEADER_LEN`], then the header, a JSON
/// object, so its first byte is `{`. The rest is checked by [`super::parse`].
pub(super) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io = |e| io_error(path, e);
    let corrupt = |reason: String| Error::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    let mut file = fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    // only a regular file's length is its size (a pipe or a device reports 0)
    let size = metadata.is_file().then_some(metadata.len());
    let mut start = [0u8; 9];
    read_or_eof(&mut file, &mut start[..8])
        .map_err(io)?
        .ok_or_else(|| corrupt("truncated: fewer than the 8 bytes of the header length".into()))?;
    let header_len = u64::from_le_bytes([
        start[0], start[1], start[2], start[3], start[4], start[5], start[6], start[7],
    ]);
    if let Some(size) = size {
        let after = size.saturating_sub(8);
        if header_len > after {
            return Err(corrupt(format!(
                "the header length is {header_len} bytes, but the file has {size} bytes, \
                 only {after} after the length"
            )));
        }
    }
    if header_len > MAX_HEADER_LEN {
        return Err(corrupt(format!(
            "the header length is {header_len} bytes, above the safetensors limit of \
             {MAX_HEADER_LEN}"
        )));
    }
    if header_len == 0 {
        return Err(corrupt("the header is empty".into()));
    }
    read_or_eof(&mut file, &mut start[8..])
        .map_err(io)?
        .ok_or_else(|| corrupt("truncated: the file ends after the header length".into()))?;
    if start[8] != b'{' {
        return Err(corrupt(format!(
            "the header does not start with `{{` but with byte {:#04x}",
            start[8]
        )));
    }
    let mut bytes = Vec::new();
    let capacity = size.map_or(start.len(), |s| usize::try_from(s).unwrap_or(usize::MAX));
    // as `fs::read`: a file too large for memory is an error, not an abort
    bytes
        .try_reserve_exact(capacity)
        .map_err(|_| io(std::io::ErrorKind::OutOfMemory.into()))?;
    bytes.extend_from_slice(&start);
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Fills `buf` from `reader`: `Ok(None)` if the reader ends first.
fn read_or_eof(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<Option<()>> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(Some(())),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}
