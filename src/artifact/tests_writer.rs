//! Writer tests: round trips through the reader, and acceptance by `mender-artifact`.

use std::io::{self, Read};

use super::codec::Compression;
use super::tests::{have_tool, members, sha, tool};
use super::*;

fn spec<'a>(types: &'a [String]) -> SingleFileSpec<'a> {
    SingleFileSpec {
        artifact_name: "cfg-2024.1",
        device_types: types,
        dest_dir: "/etc/myapp",
        filename: "app.conf",
        permissions: Some("0640"),
        software_name: None,
        software_version: None,
    }
}

fn write(spec: &SingleFileSpec, content: &[u8], c: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    writer::write_single_file_with(
        &std::env::temp_dir(),
        &mut out,
        spec,
        content,
        content.len() as u64,
        c,
    )
    .unwrap();
    out
}

#[test]
fn round_trip_in_every_compression() {
    let types = vec!["raspberrypi4".to_string(), "qemux86-64".to_string()];
    let content = b"key = value\n".repeat(1000);
    for c in [
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
        Compression::None,
    ] {
        let bytes = write(&spec(&types), &content, c);
        let info = read_artifact(bytes.as_slice()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(info.format_version, 3);
        assert_eq!(info.name, "cfg-2024.1");
        assert_eq!(info.device_types, types);
        assert_eq!(info.provides.len(), 1);
        assert_eq!(info.provides["artifact_name"], "cfg-2024.1");
        assert_eq!(info.depends.len(), 1);
        assert_eq!(info.depends["device_type"], serde_json::json!(types));
        assert!(!info.signed);
        assert_eq!(info.size, bytes.len() as u64);
        let u = &info.updates[0];
        assert_eq!(u.type_name.as_deref(), Some("single-file"));
        assert_eq!(u.provides.len(), 1);
        assert_eq!(u.provides["rootfs-image.single-file.version"], "cfg-2024.1");
        assert_eq!(u.clears_provides, ["rootfs-image.single-file.*"]);
        assert!(u.depends.is_empty() && u.meta_data.is_none());
        let files: Vec<(&str, u64, &str)> = u
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.size, f.checksum.as_str()))
            .collect();
        let sums = [
            sha(b"/etc/myapp\n"),
            sha(b"app.conf\n"),
            sha(b"0640\n"),
            sha(&content),
        ];
        assert_eq!(
            files,
            [
                ("dest_dir", 11, sums[0].as_str()),
                ("filename", 9, sums[1].as_str()),
                ("permissions", 5, sums[2].as_str()),
                ("app.conf", content.len() as u64, sums[3].as_str()),
            ]
        );
        assert!(u.files.iter().all(|f| f.date.is_some()));
        let names: Vec<String> = members(&bytes).into_iter().map(|m| m.0).collect();
        let s = c.suffix();
        assert_eq!(
            names,
            [
                "version".into(),
                "manifest".into(),
                format!("header.tar{s}"),
                format!("data/0000.tar{s}")
            ]
        );
    }
}

#[test]
fn software_name_and_version() {
    let types = vec!["dev".to_string()];
    let mut s = spec(&types);
    s.software_name = Some("myapp-config");
    s.software_version = Some("7.1");
    s.permissions = None;
    let info = read_artifact(write(&s, b"x", Compression::Gzip).as_slice()).unwrap();
    let u = &info.updates[0];
    assert_eq!(u.provides["rootfs-image.myapp-config.version"], "7.1");
    assert_eq!(u.clears_provides, ["rootfs-image.myapp-config.*"]);
    assert_eq!(u.files[2].checksum, sha(b"644\n"));
}

/// Yields `len` pseudo-random bytes in small reads, to exercise streaming.
struct Stream {
    left: u64,
    state: u32,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1000).min(self.left as usize);
        for b in &mut buf[..n] {
            self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *b = (self.state >> 16) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn streams_large_content_and_checks_its_length() {
    let types = vec!["dev".to_string()];
    let s = spec(&types);
    let len = 3 * 1024 * 1024 + 17;
    let mut expect = Vec::new();
    Stream {
        left: len,
        state: 1,
    }
    .read_to_end(&mut expect)
    .unwrap();
    let mut out = Vec::new();
    write_single_file(
        &mut out,
        &s,
        Stream {
            left: len,
            state: 1,
        },
        len,
    )
    .unwrap();
    let info = read_artifact(out.as_slice()).unwrap();
    assert_eq!(info.updates[0].files[3].size, len);
    assert_eq!(info.updates[0].files[3].checksum, sha(&expect));

    let e = write_single_file(io::sink(), &s, Stream { left: 10, state: 1 }, 11).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid artifact parameters: content ended after 10 of 11 bytes"
    );
    let e = write_single_file(io::sink(), &s, Stream { left: 12, state: 1 }, 11).unwrap_err();
    assert!(e.to_string().contains("longer than 11 bytes"), "{e}");
}

#[test]
fn rejects_bad_specs() {
    let types = vec!["dev".to_string()];
    let none: Vec<String> = Vec::new();
    let cases: [fn(&mut SingleFileSpec); 10] = [
        |s| s.artifact_name = "",
        |s| s.dest_dir = "relative/dir",
        |s| s.filename = "a/b",
        |s| s.filename = "filename",
        |s| s.filename = "x\ny",
        |s| s.filename = "a b.txt",
        |s| s.filename = "f\u{e9}.txt",
        |s| s.permissions = Some("rw-r--r--"),
        |s| s.permissions = Some("99"),
        |s| s.software_name = Some(""),
    ];
    for (i, f) in cases.iter().enumerate() {
        let mut s = spec(&types);
        f(&mut s);
        let e = write_single_file(io::sink(), &s, &b"x"[..], 1).unwrap_err();
        assert!(matches!(e, ArtifactError::InvalidSpec(_)), "case {i}: {e}");
    }
    let mut s = spec(&types);
    s.device_types = &none;
    assert!(write_single_file(io::sink(), &s, &b"x"[..], 1).is_err());
}

#[test]
fn mender_artifact_accepts_writer_output() {
    if !have_tool("mender_artifact_accepts_writer_output") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let types = vec!["dev-a".to_string(), "dev-b".to_string()];
    let mut s = spec(&types);
    s.software_name = Some("conf");
    let content = b"some configuration\n".repeat(50);
    let mut out = Vec::new();
    write_single_file(&mut out, &s, content.as_slice(), content.len() as u64).unwrap();
    std::fs::write(d.path().join("w.mender"), &out).unwrap();
    tool(d.path(), &["validate", "w.mender"]);
    let text = tool(d.path(), &["read", "w.mender"]);
    for needle in [
        "Name: cfg-2024.1",
        "Version: 3",
        "Compatible devices: '[dev-a dev-b]'",
        "Type:   single-file",
        "rootfs-image.conf.version: cfg-2024.1",
        "Clears Provides: [\"rootfs-image.conf.*\"]",
        "name:     app.conf",
        &sha(&content),
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }

    // The same payload built by the tool the way the single-file generator does it reads back
    // identically (apart from file dates and the total size).
    for (f, c) in [
        ("dest_dir", &b"/etc/myapp\n"[..]),
        ("filename", b"app.conf\n"),
        ("permissions", b"0640\n"),
        ("app.conf", &content),
    ] {
        std::fs::write(d.path().join(f), c).unwrap();
    }
    tool(
        d.path(),
        &[
            "write",
            "module-image",
            "-T",
            "single-file",
            "-t",
            "dev-a",
            "-t",
            "dev-b",
            "-n",
            "cfg-2024.1",
            "-o",
            "t.mender",
            "-f",
            "dest_dir",
            "-f",
            "filename",
            "-f",
            "permissions",
            "-f",
            "app.conf",
            "--software-name",
            "conf",
        ],
    );
    let strip = |mut i: ArtifactInfo| {
        i.size = 0;
        i.updates
            .iter_mut()
            .flat_map(|u| &mut u.files)
            .for_each(|f| f.date = None);
        i
    };
    let theirs = read_artifact(std::fs::File::open(d.path().join("t.mender")).unwrap()).unwrap();
    let ours = read_artifact(out.as_slice()).unwrap();
    assert_eq!(strip(ours), strip(theirs));
}
