//! Typed errors of the library. Every variant names the file (and line:col
//! where there is one) so that the binary can print a precise message and
//! exit with code 2.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: no such file or directory", path.display())]
    MissingPath { path: PathBuf },
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{col}: file is not valid UTF-8 (invalid byte sequence)", path.display())]
    NotUtf8 { path: PathBuf, line: usize, col: usize },
    #[error("{}:{line}:{col}: {message}", path.display())]
    Config {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("git: {0}")]
    Git(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingPath { path }
        } else {
            Error::Io { path, source }
        }
    }

    /// A configuration error at a byte offset of `text` (as reported by the
    /// toml crate), converted to a 1-based line and column.
    pub fn config_at(path: impl Into<PathBuf>, text: &str, offset: Option<usize>, message: impl Into<String>) -> Self {
        let (line, col) = match offset {
            Some(off) => line_col(text, off),
            None => (1, 1),
        };
        Error::Config {
            path: path.into(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Reads a file as UTF-8, with an error that names the first bad byte's
/// position.
pub fn read_utf8(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    utf8(path, bytes)
}

/// [`read_utf8`], with the metadata of the file that was read, taken from
/// the open file (a path re-pointed between a `stat` and the read cannot
/// give one file's stamp with another's text).
pub fn read_utf8_stamped(path: &std::path::Path) -> Result<(String, std::fs::Metadata)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok((utf8(path, bytes)?, meta))
}

fn utf8(path: &std::path::Path, bytes: Vec<u8>) -> Result<String> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // The prefix is valid UTF-8 by construction.
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            let (line, col) = line_col(prefix, prefix.len());
            Err(Error::NotUtf8 {
                path: path.to_path_buf(),
                line,
                col,
            })
        }
    }
}
