//! Reader tests for format-1 artifacts. Current `mender-artifact` releases can no longer write
//! this format, so the artifacts are assembled here with `tar` and `flate2`.

use std::io::Write;

use serde_json::json;

use super::tests::{pack, sha};
use super::*;

/// Modification time given to every inner file (2017-07-14T02:40:00Z).
const MTIME: u64 = 1_500_000_000;
const DATE: &str = "2017-07-14T02:40:00Z";

type Members = Vec<(String, Vec<u8>)>;

/// One payload of a test artifact.
struct Payload {
    kind: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    /// Content of `headers/NNNN/meta-data`; `None` leaves the file out.
    meta: Option<&'static str>,
}

fn rootfs(content: &[u8]) -> Payload {
    Payload {
        kind: "rootfs-image",
        files: vec![("rootfs.ext4", content.to_vec())],
        meta: Some(""),
    }
}

/// A gzip-compressed tar of `entries`.
fn tar_gz(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(MTIME);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    let mut gz = b.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}

/// The members of `header.tar.gz`, as the old tool laid them out.
fn header_entries(payloads: &[Payload]) -> Members {
    let types: Vec<_> = payloads.iter().map(|p| json!({ "type": p.kind })).collect();
    let info = json!({
        "updates": types,
        "device_types_compatible": ["beaglebone", "qemu"],
        "artifact_name": "release-1",
    });
    let mut out = vec![("header-info".to_string(), info.to_string().into_bytes())];
    for (i, p) in payloads.iter().enumerate() {
        let dir = format!("headers/{i:04}");
        let names: Vec<&str> = p.files.iter().map(|f| f.0).collect();
        let files = json!({ "files": names }).to_string();
        out.push((format!("{dir}/files"), files.into_bytes()));
        let type_info = json!({ "type": p.kind }).to_string();
        out.push((format!("{dir}/type-info"), type_info.into_bytes()));
        if let Some(meta) = p.meta {
            out.push((format!("{dir}/meta-data"), meta.as_bytes().to_vec()));
        }
        for (name, content) in &p.files {
            let sum = format!("{}\n", sha(content));
            out.push((format!("{dir}/checksums/{name}.sha256"), sum.into_bytes()));
        }
    }
    out
}

fn data_members(payloads: &[Payload]) -> Members {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let files: Members = p
                .files
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect();
            (format!("data/{i:04}.tar.gz"), tar_gz(&files))
        })
        .collect()
}

fn version_member() -> (String, Vec<u8>) {
    let v = br#"{"format":"mender","version":1}"#;
    ("version".to_string(), v.to_vec())
}

/// The outer tar of a format-1 artifact with the given header members and data members.
fn assemble(header: &[(String, Vec<u8>)], data: Members) -> Vec<u8> {
    let mut m = vec![version_member(), ("header.tar.gz".into(), tar_gz(header))];
    m.extend(data);
    pack(&m)
}

fn v1_artifact(payloads: &[Payload]) -> Vec<u8> {
    assemble(&header_entries(payloads), data_members(payloads))
}

fn err_of(bytes: &[u8]) -> ArtifactError {
    read_artifact(bytes).expect_err("artifact must be rejected")
}

fn image() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn reads_v1_rootfs_image() {
    let content = image();
    let bytes = v1_artifact(&[rootfs(&content)]);
    let info = read_artifact(bytes.as_slice()).unwrap();
    assert_eq!(info.format_version, 1);
    assert_eq!(info.name, "release-1");
    assert_eq!(info.group, None);
    assert_eq!(info.device_types, ["beaglebone", "qemu"]);
    assert_eq!(info.provides.len(), 1);
    assert_eq!(info.provides["artifact_name"], "release-1");
    assert_eq!(info.depends.len(), 1);
    assert_eq!(info.depends["device_type"], json!(["beaglebone", "qemu"]));
    assert!(!info.signed);
    assert!(info.scripts.is_empty());
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.updates.len(), 1);
    let u = &info.updates[0];
    assert_eq!(u.type_name.as_deref(), Some("rootfs-image"));
    assert_eq!(u.meta_data, None);
    assert!(u.provides.is_empty() && u.depends.is_empty() && u.clears_provides.is_empty());
    assert_eq!(
        u.files,
        [UpdateFile {
            name: "rootfs.ext4".into(),
            checksum: sha(&content),
            size: content.len() as u64,
            date: Some(DATE.into()),
        }]
    );
}

#[test]
fn reads_v1_two_updates_with_and_without_meta_data() {
    let payloads = [
        Payload {
            kind: "rootfs-image",
            files: vec![("rootfs.ext4", image())],
            meta: None,
        },
        Payload {
            kind: "app-image",
            files: vec![("a.bin", b"first\n".to_vec()), ("b.bin", Vec::new())],
            meta: Some(r#"{"port": 8080, "hosts": ["a", "b"]}"#),
        },
    ];
    let mut header = header_entries(&payloads);
    // The old tool's spellings: `.sha256sum`, and `sha256sum` output with the file name.
    let i = header
        .iter()
        .position(|m| m.0 == "headers/0001/checksums/a.bin.sha256")
        .unwrap();
    header[i] = (
        "headers/0001/checksums/a.bin.sha256sum".into(),
        format!("{}  a.bin\n", sha(b"first\n")).into_bytes(),
    );
    // Signatures are skipped; scripts are reported.
    header.push(("headers/0001/signatures/a.bin.sig".into(), b"c2ln".to_vec()));
    header.push((
        "headers/0001/scripts/pre/10_stop".into(),
        b"#!/bin/sh\n".to_vec(),
    ));
    let bytes = assemble(&header, data_members(&payloads));
    let info = read_artifact(bytes.as_slice()).unwrap();
    assert_eq!(info.format_version, 1);
    assert!(!info.signed);
    assert_eq!(info.scripts, ["pre/10_stop"]);
    assert_eq!(info.updates.len(), 2);
    let (u0, u1) = (&info.updates[0], &info.updates[1]);
    assert_eq!(u0.type_name.as_deref(), Some("rootfs-image"));
    assert_eq!(u0.meta_data, None);
    assert_eq!(u0.files.len(), 1);
    assert_eq!(u0.files[0].checksum, sha(&image()));
    assert_eq!(u1.type_name.as_deref(), Some("app-image"));
    assert_eq!(
        u1.meta_data,
        Some(json!({"port": 8080, "hosts": ["a", "b"]}))
    );
    let files: Vec<(&str, u64, &str)> = u1
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.size, f.checksum.as_str()))
        .collect();
    let (first, empty) = (sha(b"first\n"), sha(b""));
    assert_eq!(
        files,
        [("a.bin", 6, first.as_str()), ("b.bin", 0, empty.as_str())]
    );
    assert!(u1.files.iter().all(|f| f.date.as_deref() == Some(DATE)));
}

#[test]
fn rejects_v1_checksum_mismatch() {
    let mut header = header_entries(&[rootfs(b"image v1")]);
    let last = header.len() - 1;
    header[last].1 = format!("{}\n", sha(b"another image")).into_bytes();
    let e = err_of(&assemble(&header, data_members(&[rootfs(b"image v1")])));
    assert!(matches!(e, ArtifactError::ChecksumMismatch(_)), "{e}");
    assert_eq!(e.to_string(), "checksum mismatch for data/0000/rootfs.ext4");
}

#[test]
fn rejects_v1_missing_and_unlisted_payload_files() {
    let payloads = [rootfs(b"image v1")];
    let header = header_entries(&payloads);
    // Payload file missing from the data tar.
    let data = vec![("data/0000.tar.gz".to_string(), tar_gz(&[]))];
    assert_eq!(
        err_of(&assemble(&header, data)).to_string(),
        "invalid artifact: `data/0000/rootfs.ext4` is listed in `headers/0000/files` but \
         missing from the artifact"
    );
    // The whole data member missing.
    assert_eq!(
        err_of(&assemble(&header, Vec::new())).to_string(),
        "invalid artifact: `data/0000/rootfs.ext4` is listed in `headers/0000/files` but \
         missing from the artifact"
    );
    // An extra file that the header does not list.
    let files = vec![
        ("rootfs.ext4".to_string(), b"image v1".to_vec()),
        ("extra.bin".to_string(), b"x".to_vec()),
    ];
    let data = vec![("data/0000.tar.gz".to_string(), tar_gz(&files))];
    assert_eq!(
        err_of(&assemble(&header, data)).to_string(),
        "invalid artifact: `extra.bin` in data/0000.tar.gz is not listed in `headers/0000/files`"
    );
    // The same file twice.
    let twice = vec![files[0].clone(), files[0].clone()];
    let data = vec![("data/0000.tar.gz".to_string(), tar_gz(&twice))];
    assert_eq!(
        err_of(&assemble(&header, data)).to_string(),
        "invalid artifact: `data/0000/rootfs.ext4` occurs more than once"
    );
}

#[test]
fn rejects_v1_header_checksum_problems() {
    let payloads = [rootfs(b"image v1")];
    let data = || data_members(&payloads);
    let good = header_entries(&payloads);
    let last = good.len() - 1;
    // No checksum for a listed file.
    let e = err_of(&assemble(&good[..last], data()));
    assert_eq!(
        e.to_string(),
        "invalid artifact: header.tar.gz has no checksum for `rootfs.ext4` \
         (`headers/0000/checksums/rootfs.ext4.sha256`)"
    );
    // A checksum for a file that is not listed.
    let mut h = good.clone();
    h.push((
        "headers/0000/checksums/other.sha256".into(),
        sha(b"").into_bytes(),
    ));
    let e = err_of(&assemble(&h, data()));
    assert!(e.to_string().contains("checksum for `other`"), "{e}");
    // A checksum that is not one.
    let mut h = good.clone();
    h[last].1 = b"not-hex\n".to_vec();
    assert_eq!(
        err_of(&assemble(&h, data())).to_string(),
        "invalid artifact: malformed checksum `headers/0000/checksums/rootfs.ext4.sha256` in \
         header.tar.gz"
    );
    // Unknown header member in a payload folder.
    let mut h = good.clone();
    h.push(("headers/0000/other/x".into(), b"x".to_vec()));
    assert_eq!(
        err_of(&assemble(&h, data())).to_string(),
        "invalid artifact: unexpected member `headers/0000/other/x` in header.tar.gz"
    );
    // `files` absent.
    let h: Members = good
        .iter()
        .filter(|m| !m.0.ends_with("/files"))
        .cloned()
        .collect();
    let e = err_of(&assemble(&h, data()));
    assert!(e.to_string().contains("lacks `headers/0000/files`"), "{e}");
}

#[test]
fn rejects_v1_missing_or_misplaced_header() {
    let payloads = [rootfs(b"image v1")];
    let header = (
        "header.tar.gz".to_string(),
        tar_gz(&header_entries(&payloads)),
    );
    let data = data_members(&payloads).remove(0);
    assert_eq!(
        err_of(&pack(&[version_member(), data.clone()])).to_string(),
        "invalid artifact: missing header before `data/0000.tar.gz`"
    );
    assert_eq!(
        err_of(&pack(&[version_member()])).to_string(),
        "invalid artifact: missing `header.tar.gz`"
    );
    let m = [
        version_member(),
        header.clone(),
        data.clone(),
        header.clone(),
    ];
    assert_eq!(
        err_of(&pack(&m)).to_string(),
        "invalid artifact: member `header.tar.gz` is duplicated or out of order"
    );
    let m = [header.clone(), version_member(), data.clone()];
    assert!(matches!(err_of(&pack(&m)), ArtifactError::NotArtifact(_)));
    let manifest = ("manifest".to_string(), b"".to_vec());
    let m = [version_member(), manifest, header.clone(), data.clone()];
    assert_eq!(
        err_of(&pack(&m)).to_string(),
        "invalid artifact: `manifest` is not allowed in a format 1 artifact"
    );
    let m = [version_member(), header.clone(), data.clone(), data];
    assert_eq!(
        err_of(&pack(&m)).to_string(),
        "invalid artifact: member `data/0000.tar.gz` is duplicated or out of order"
    );
    // Format 0 does not exist.
    let v0 = (
        "version".to_string(),
        br#"{"format":"mender","version":0}"#.to_vec(),
    );
    let e = err_of(&pack(&[v0, header]));
    assert!(matches!(e, ArtifactError::UnsupportedVersion(0)), "{e}");
}

#[test]
fn rejects_v1_truncation_and_garbage() {
    let bytes = v1_artifact(&[rootfs(&image())]);
    read_artifact(bytes.as_slice()).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 1024, bytes.len() - 600] {
        let e = err_of(&bytes[..cut]);
        assert!(matches!(e, ArtifactError::Truncated), "cut {cut}: {e}");
    }
    for cut in (0..bytes.len()).step_by(2053) {
        assert!(
            read_artifact(&bytes[..cut]).is_err(),
            "prefix {cut} accepted"
        );
    }
    // Damaged compressed members.
    let m = super::tests::members(&bytes);
    for (i, what) in [(1, "header.tar.gz"), (2, "data/0000.tar.gz")] {
        let mut damaged = m.clone();
        let len = damaged[i].1.len();
        damaged[i].1[len / 2] ^= 0x10;
        let e = err_of(&pack(&damaged));
        assert!(
            matches!(&e, ArtifactError::Corrupt { member, .. } if member == what)
                || matches!(e, ArtifactError::ChecksumMismatch(_)),
            "{what}: {e}"
        );
    }
    // Garbage instead of the header.
    let mut damaged = m.clone();
    damaged[1].1 = b"definitely not gzip".to_vec();
    let e = err_of(&pack(&damaged));
    assert!(
        matches!(&e, ArtifactError::Corrupt { member, .. } if member == "header.tar.gz"),
        "{e}"
    );
    // Garbage after the end of the archive.
    let mut junk = bytes.clone();
    junk.extend_from_slice(b"junk");
    let e = err_of(&junk);
    assert!(
        e.to_string().contains("after the end of the archive"),
        "{e}"
    );
}
