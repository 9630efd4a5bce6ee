//! How a failed write of an upload to disk is answered, the same for every upload.

use crate::error::Error;

/// A full disk is said plainly (507: the client may retry once space is freed); other write
/// failures are internal. `what` names the upload ("the artifact", "the archive").
pub fn error(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| match e.raw_os_error() {
        Some(28) => Error::InsufficientStorage(format!(
            "no space left on the server's disk for {what}; it was discarded"
        )),
        _ => Error::internal(format!("writing {what}: {e}")),
    }
}
