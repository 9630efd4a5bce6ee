//! Artifact downloads bigger than the server's mapped windows (4 MiB): the whole file, ranges
//! that start, end or cross a window edge, suffix ranges, HEAD and an unsatisfiable range, all
//! byte for byte against the uploaded file.

use crate::common::artifacts::{tool_available, uploaded_with_link};
use crate::common::{Api, Server};

const WINDOW: usize = 4 << 20;

#[test]
fn big_downloads_and_ranges_across_window_edges_are_byte_exact() {
    if !tool_available("big_downloads") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let (bytes, link, c) = uploaded_with_link(
        &api,
        "big-1.0",
        &["--size", "10000000", "--compression", "none"],
    );
    let len = bytes.len();
    assert!(len > 2 * WINDOW, "spans three windows: {len}");
    let uri = link["uri"].as_str().unwrap().to_string();

    let r = c.get(&uri).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    assert!(r.bytes().unwrap() == bytes, "whole file");

    // (Range header, first byte, last byte)
    let cases = [
        (
            format!("bytes={}-{}", WINDOW - 10, 2 * WINDOW + 10),
            WINDOW - 10,
            2 * WINDOW + 10,
        ),
        (format!("bytes={WINDOW}-"), WINDOW, len - 1),
        (format!("bytes=0-{}", WINDOW - 1), 0, WINDOW - 1),
        ("bytes=-7".to_string(), len - 7, len - 1),
        ("bytes=5-5".to_string(), 5, 5),
        (format!("bytes=100-{}", len + 1000), 100, len - 1),
    ];
    for (range, first, last) in cases {
        let r = c.get(&uri).header("Range", &range).send().unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {first}-{last}/{len}").as_str(),
            "{range}"
        );
        let body = r.bytes().unwrap();
        assert_eq!(body.len(), last - first + 1, "{range}");
        assert!(body == bytes[first..=last], "{range}: bytes differ");
    }

    let r = c.head(&uri).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    assert!(r.bytes().unwrap().is_empty());

    let r = c
        .get(&uri)
        .header("Range", format!("bytes={}-", len + 10))
        .send()
        .unwrap();
    assert_eq!(r.status(), 416);
}
