//! A file response body sent from memory-mapped windows of the file.
//!
//! Reading into buffers (what a plain file body does) copies every byte once more and hops to
//! the blocking pool for each 64 KiB; for artifact downloads that halved the speed next to a
//! server using `sendfile`. A mapped window is handed to the socket as it is, so the only copy
//! is the kernel's. The windows are mapped (and their pages read in) on the blocking pool, a
//! couple ahead of the socket, and unmapped once written. Their pages are the page cache's: N
//! devices downloading the same artifact share them rather than each holding buffers.

use axum::body::Body;
use bytes::Bytes;
use futures_util::{stream, StreamExt};
use std::fs::File;
use std::io;
use std::sync::Arc;

/// Bytes per mapped window.
const WINDOW: u64 = 4 << 20;
/// Windows mapped ahead of the one being written.
const AHEAD: usize = 2;

/// A body of `len` bytes of `file` from `start`.
pub fn body(file: File, start: u64, len: u64) -> Body {
    let file = Arc::new(file);
    let end = start + len;
    let windows = (0..len.div_ceil(WINDOW)).map(move |i| {
        let offset = start + i * WINDOW;
        (offset, WINDOW.min(end - offset))
    });
    let chunks = stream::iter(windows)
        .map(move |(offset, n)| {
            let file = file.clone();
            async move {
                tokio::task::spawn_blocking(move || map(&file, offset, n))
                    .await
                    .map_err(io::Error::other)?
            }
        })
        .buffered(AHEAD);
    Body::from_stream(chunks)
}

fn map(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: the files served this way (artifacts, backups) are written once under a temporary name and renamed into place;
    // they are never modified or truncated afterwards (deleting one unlinks it, which leaves
    // an existing mapping valid), so the mapped bytes cannot change or vanish under the body.
    let window = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)?
    };
    Ok(Bytes::from_owner(window))
}
