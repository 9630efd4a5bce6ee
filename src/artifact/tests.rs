//! Reader tests: artifacts made on the fly with the `mender-artifact` tool (skipped when it is
//! not installed) and hand-damaged artifacts.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;

/// Whether the `mender-artifact` tool can be run; prints why a test is skipped otherwise.
pub(super) fn have_tool(test: &str) -> bool {
    let ok = Command::new("mender-artifact")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping {test}: mender-artifact is not installed");
    }
    ok
}

/// Runs `mender-artifact` with `args` in `dir`, panicking with its output on failure.
pub(super) fn tool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("mender-artifact")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run mender-artifact");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "mender-artifact {args:?} failed:\n{text}"
    );
    text
}

pub(super) fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

const PAYLOAD: &[u8] = b"PAYLOAD-MARKER hello from a test payload\n";

/// Writes the single-file module control files and the payload into `dir`.
fn module_files(dir: &Path) {
    std::fs::write(dir.join("dest_dir"), "/opt/app\n").unwrap();
    std::fs::write(dir.join("filename"), "payload.bin\n").unwrap();
    std::fs::write(dir.join("permissions"), "644\n").unwrap();
    std::fs::write(dir.join("payload.bin"), PAYLOAD).unwrap();
}

/// Builds a single-file module-image with `mender-artifact`; returns the artifact bytes.
fn module_image(dir: &Path, compression: &str, extra: &[&str]) -> Vec<u8> {
    module_files(dir);
    let mut args = vec!["--compression", compression, "write", "module-image"];
    args.extend([
        "-T",
        "single-file",
        "-t",
        "dev1",
        "-t",
        "dev2",
        "-n",
        "test-1.0",
        "-o",
        "out.mender",
        "-f",
        "dest_dir",
        "-f",
        "filename",
        "-f",
        "permissions",
        "-f",
        "payload.bin",
    ]);
    args.extend(extra);
    tool(dir, &args);
    std::fs::read(dir.join("out.mender")).unwrap()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn check_single_file(info: &ArtifactInfo) {
    assert_eq!(info.format_version, 3);
    assert_eq!(info.name, "test-1.0");
    assert_eq!(info.group, None);
    assert_eq!(info.device_types, ["dev1", "dev2"]);
    assert_eq!(info.provides["artifact_name"], "test-1.0");
    assert_eq!(info.depends["device_type"], json!(["dev1", "dev2"]));
    assert!(!info.signed);
    assert_eq!(info.updates.len(), 1);
    let u = &info.updates[0];
    assert_eq!(u.type_name.as_deref(), Some("single-file"));
    assert_eq!(u.provides["rootfs-image.single-file.version"], "test-1.0");
    assert_eq!(u.clears_provides, ["rootfs-image.single-file.*"]);
    assert_eq!(u.meta_data, None);
    let names: Vec<&str> = u.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["dest_dir", "filename", "permissions", "payload.bin"]
    );
    let p = &u.files[3];
    assert_eq!(p.size, PAYLOAD.len() as u64);
    assert_eq!(p.checksum, sha(PAYLOAD));
    assert_eq!(u.files[0].checksum, sha(b"/opt/app\n"));
    let date = p.date.as_deref().expect("date");
    time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 date");
}

#[test]
fn reads_tool_made_single_file_in_every_compression() {
    if !have_tool("reads_tool_made_single_file_in_every_compression") {
        return;
    }
    // mender-artifact 3.9 offers none, gzip and lzma (xz); zstd is covered by writer tests.
    for (comp, suffix) in [("gzip", ".gz"), ("lzma", ".xz"), ("none", "")] {
        let d = tmp();
        let bytes = module_image(d.path(), comp, &[]);
        let info = read_artifact(bytes.as_slice()).unwrap_or_else(|e| panic!("{comp}: {e}"));
        check_single_file(&info);
        assert_eq!(info.size, bytes.len() as u64);
        let names: Vec<String> = members(&bytes).into_iter().map(|m| m.0).collect();
        assert!(
            names.contains(&format!("data/0000.tar{suffix}")),
            "{names:?}"
        );
    }
}

#[test]
fn reads_rootfs_image_v3_and_v2() {
    if !have_tool("reads_rootfs_image_v3_and_v2") {
        return;
    }
    let d = tmp();
    let image: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.path().join("rootfs.ext4"), &image).unwrap();
    for v in ["3", "2"] {
        tool(
            d.path(),
            &[
                "write",
                "rootfs-image",
                "-v",
                v,
                "-t",
                "board",
                "-n",
                "rootfs-7",
                "-o",
                "r.mender",
                "-f",
                "rootfs.ext4",
            ],
        );
        let info = read_artifact(std::fs::File::open(d.path().join("r.mender")).unwrap()).unwrap();
        assert_eq!(info.format_version.to_string(), v);
        assert_eq!(info.name, "rootfs-7");
        assert_eq!(info.device_types, ["board"]);
        let u = &info.updates[0];
        assert_eq!(u.type_name.as_deref(), Some("rootfs-image"));
        assert_eq!(u.files.len(), 1);
        assert_eq!(u.files[0].name, "rootfs.ext4");
        assert_eq!(u.files[0].size, image.len() as u64);
        assert_eq!(u.files[0].checksum, sha(&image));
        if v == "3" {
            assert_eq!(u.provides["rootfs-image.checksum"], sha(&image));
            assert_eq!(u.provides["rootfs-image.version"], "rootfs-7");
            assert!(u.clears_provides.contains(&"rootfs-image.*".to_string()));
        } else {
            // Format 2 states only what its name and device types imply.
            assert!(u.provides.is_empty());
            assert_eq!(info.provides.len(), 1);
            assert_eq!(info.provides["artifact_name"], info.name);
            assert_eq!(
                info.depends["device_type"],
                serde_json::json!(info.device_types)
            );
        }
    }
}

#[test]
fn reads_signed_artifact() {
    if !have_tool("reads_signed_artifact") {
        return;
    }
    let d = tmp();
    let key = d.path().join("key.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping reads_signed_artifact: openssl is not available");
        return;
    }
    // mender-artifact 3.9 wants the traditional (PKCS#1) key encoding.
    let st = Command::new("openssl")
        .args(["pkey", "-traditional", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(d.path().join("key-rsa.pem"))
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = module_image(d.path(), "gzip", &["-k", "key-rsa.pem"]);
    assert!(members(&bytes).iter().any(|m| m.0 == "manifest.sig"));
    let info = read_artifact(bytes.as_slice()).unwrap();
    assert!(info.signed);
    assert_eq!(info.updates[0].files.len(), 4);
}

#[test]
fn reads_all_header_features() {
    if !have_tool("reads_all_header_features") {
        return;
    }
    let d = tmp();
    std::fs::write(d.path().join("meta.json"), r#"{"k":"v","n":[1,2]}"#).unwrap();
    std::fs::write(
        d.path().join("ArtifactInstall_Enter_00"),
        "#!/bin/sh\nexit 0\n",
    )
    .unwrap();
    let extra = [
        "-N",
        "old-1",
        "-N",
        "old-2",
        "-G",
        "g-old",
        "-g",
        "g-new",
        "-m",
        "meta.json",
        "-s",
        "ArtifactInstall_Enter_00",
        "-p",
        "foo:bar",
        "-d",
        "dk:dv",
        "--software-name",
        "app",
        "--software-version",
        "1.2",
    ];
    let info = read_artifact(module_image(d.path(), "gzip", &extra).as_slice()).unwrap();
    assert_eq!(info.group.as_deref(), Some("g-new"));
    assert_eq!(info.provides["artifact_group"], "g-new");
    assert_eq!(info.depends["artifact_name"], json!(["old-1", "old-2"]));
    assert_eq!(info.depends["artifact_group"], json!(["g-old"]));
    assert_eq!(info.scripts, ["ArtifactInstall_Enter_00"]);
    let u = &info.updates[0];
    assert_eq!(u.meta_data, Some(json!({"k": "v", "n": [1, 2]})));
    assert_eq!(u.provides["foo"], "bar");
    assert_eq!(u.provides["rootfs-image.app.version"], "1.2");
    assert_eq!(u.depends["dk"], json!("dv"));
    assert_eq!(u.clears_provides, ["rootfs-image.app.*"]);
}

#[test]
fn reads_bootstrap_and_augmented_artifacts() {
    if !have_tool("reads_bootstrap_and_augmented_artifacts") {
        return;
    }
    let d = tmp();
    tool(
        d.path(),
        &[
            "write",
            "bootstrap-artifact",
            "-t",
            "dev1",
            "-n",
            "boot",
            "-p",
            "a:b",
            "-o",
            "b.mender",
            "--no-progress",
        ],
    );
    let info = read_artifact(std::fs::read(d.path().join("b.mender")).unwrap().as_slice()).unwrap();
    assert_eq!(info.updates[0].type_name, None);
    assert!(info.updates[0].files.is_empty());
    assert_eq!(info.updates[0].provides["a"], "b");

    std::fs::write(d.path().join("aug.bin"), "augmented\n").unwrap();
    let ok = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out", "k.pem", "2048"])
        .current_dir(d.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping the augmented part: openssl genrsa failed");
        return;
    }
    let extra = [
        "--augment-type",
        "single-file",
        "--augment-file",
        "aug.bin",
        "--augment-provides",
        "ak:av",
        "-k",
        "k.pem",
    ];
    let bytes = module_image(d.path(), "gzip", &extra);
    let info = read_artifact(bytes.as_slice()).unwrap();
    let u = &info.updates[0];
    assert_eq!(u.provides["ak"], "av");
    assert_eq!(u.provides["rootfs-image.single-file.version"], "test-1.0");
    assert_eq!(u.files.last().unwrap().name, "aug.bin");
    assert!(info.signed);
}

// ---- damaged input -------------------------------------------------------------------------

/// Splits an (outer) tar into its members.
pub(super) fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (name, v)
        })
        .collect()
}

/// Packs members into a tar (with the end-of-archive marker).
pub(super) fn pack(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn writer_artifact(content: &[u8]) -> Vec<u8> {
    let types = ["dev1".to_string()];
    let spec = SingleFileSpec {
        artifact_name: "w-1",
        device_types: &types,
        dest_dir: "/opt/w",
        filename: "payload.bin",
        permissions: None,
        software_name: None,
        software_version: None,
    };
    let mut out = Vec::new();
    writer::write_single_file_with(
        &std::env::temp_dir(),
        &mut out,
        &spec,
        content,
        content.len() as u64,
        codec::Compression::None,
    )
    .unwrap();
    out
}

fn err_of(bytes: &[u8]) -> ArtifactError {
    read_artifact(bytes).expect_err("artifact must be rejected")
}

#[test]
fn rejects_garbage_and_empty_input() {
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let e = err_of(&garbage);
    assert!(matches!(e, ArtifactError::NotArtifact(_)), "{e}");
    assert_eq!(e.to_string(), "not a Mender artifact: not a tar archive");
    let e = err_of(&[]);
    assert_eq!(e.to_string(), "not a Mender artifact: empty input");
    let e = err_of(&pack(&[("hello.txt".into(), b"hi".to_vec())]));
    assert_eq!(
        e.to_string(),
        "not a Mender artifact: missing `version` (first member is `hello.txt`)"
    );
}

#[test]
fn rejects_truncation() {
    let content = vec![0x5au8; 200_000];
    let bytes = writer_artifact(&content);
    read_artifact(bytes.as_slice()).unwrap();
    // Cut in the middle of the payload data.
    let e = err_of(&bytes[..bytes.len() / 2]);
    assert!(matches!(e, ArtifactError::Truncated), "{e}");
    assert_eq!(e.to_string(), "truncated artifact");
    // Cut off the end-of-archive marker only, and cut at a member boundary.
    let e = err_of(&bytes[..bytes.len() - 1024]);
    assert!(matches!(e, ArtifactError::Truncated), "{e}");
    let m = members(&bytes);
    let head = pack(&m[..3]);
    let e = err_of(&head[..head.len() - 1024]);
    assert!(matches!(e, ArtifactError::Truncated), "{e}");
    let e = err_of(&head);
    assert!(
        e.to_string().contains("listed in the manifest but missing"),
        "{e}"
    );
    // Every prefix is rejected.
    for cut in (0..bytes.len()).step_by(4099) {
        assert!(
            read_artifact(&bytes[..cut]).is_err(),
            "prefix {cut} accepted"
        );
    }
}

#[test]
fn rejects_flipped_payload_byte() {
    let content = b"PAYLOAD-MARKER some content to install".to_vec();
    let mut bytes = writer_artifact(&content);
    let at = bytes
        .windows(14)
        .position(|w| w == b"PAYLOAD-MARKER")
        .unwrap();
    bytes[at + 3] ^= 0x01;
    let e = err_of(&bytes);
    assert!(matches!(e, ArtifactError::ChecksumMismatch(_)), "{e}");
    assert_eq!(e.to_string(), "checksum mismatch for data/0000/payload.bin");
}

#[test]
fn rejects_flipped_byte_in_compressed_members() {
    let types = ["dev1".to_string()];
    let spec = SingleFileSpec {
        artifact_name: "w-1",
        device_types: &types,
        dest_dir: "/opt/w",
        filename: "f",
        permissions: Some("0600"),
        software_name: None,
        software_version: None,
    };
    let content = vec![7u8; 10_000];
    let mut out = Vec::new();
    write_single_file(&mut out, &spec, content.as_slice(), content.len() as u64).unwrap();
    let m = members(&out);
    for i in [2, 3] {
        let mut damaged = m.clone();
        let len = damaged[i].1.len();
        damaged[i].1[len / 2] ^= 0x10;
        let e = err_of(&pack(&damaged));
        if i == 2 {
            assert_eq!(e.to_string(), "checksum mismatch for header.tar.gz");
        } else {
            assert!(
                matches!(
                    e,
                    ArtifactError::Corrupt { .. } | ArtifactError::ChecksumMismatch(_)
                ),
                "{e}"
            );
        }
    }
}

#[test]
fn rejects_unsupported_versions_and_layouts() {
    let v4 = br#"{"format":"mender","version":4}"#.to_vec();
    let e = err_of(&pack(&[("version".into(), v4)]));
    assert!(matches!(e, ArtifactError::UnsupportedVersion(4)), "{e}");
    assert_eq!(e.to_string(), "unsupported artifact format version 4");
    let e = err_of(&pack(&[(
        "version".into(),
        b"{\"format\":\"x\",\"version\":3}".to_vec(),
    )]));
    assert!(matches!(e, ArtifactError::NotArtifact(_)), "{e}");

    let good = members(&writer_artifact(b"abc"));
    // Missing manifest.
    let e = err_of(&pack(&[good[0].clone(), good[2].clone(), good[3].clone()]));
    assert!(e.to_string().contains("missing `manifest`"), "{e}");
    // Unknown member.
    let mut m = good.clone();
    m.insert(2, ("extra".into(), b"x".to_vec()));
    assert_eq!(
        err_of(&pack(&m)).to_string(),
        "invalid artifact: unexpected member `extra`"
    );
    // Unsupported compression.
    let mut m = good.clone();
    m[2].0 = "header.tar.bz2".into();
    assert_eq!(
        err_of(&pack(&m)).to_string(),
        "unsupported compression of header.tar.bz2"
    );
    // Missing data.
    let e = err_of(&pack(&good[..3]));
    assert!(
        e.to_string().contains("listed in the manifest but missing"),
        "{e}"
    );
    // Members out of order.
    let mut m = good.clone();
    m.swap(2, 3);
    assert!(err_of(&pack(&m)).to_string().contains("missing header"));
    // Garbage after the end of the archive.
    let mut bytes = pack(&good);
    bytes.extend_from_slice(b"junk");
    let e = err_of(&bytes);
    assert!(
        e.to_string().contains("after the end of the archive"),
        "{e}"
    );
    // Version not matching the manifest.
    let mut m = good.clone();
    m[0].1 = br#"{"format":"mender", "version":3}"#.to_vec();
    assert_eq!(
        err_of(&pack(&m)).to_string(),
        "checksum mismatch for version"
    );
}

#[test]
fn rejects_forbidden_payload_file_name() {
    // mender-artifact (and so the client) refuses names outside letters, digits and `.,_-`.
    let mut m = members(&writer_artifact(b"abc"));
    let manifest = String::from_utf8(m[1].1.clone()).unwrap();
    m[1].1 = manifest.replace("payload.bin", "pay load.bin").into_bytes();
    let mut inner = members(&m[3].1);
    inner[3].0 = "pay load.bin".into();
    m[3].1 = pack(&inner);
    let e = err_of(&pack(&m));
    assert!(e.to_string().contains("`pay load.bin`"), "{e}");
}

/// Yields `data`, then fails instead of ending.
struct Failing<'a> {
    data: &'a [u8],
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.is_empty() {
            return Err(std::io::Error::other("connection reset"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn reports_read_failures_as_io_errors() {
    let bytes = writer_artifact(&[1u8; 50_000]);
    for cut in [0, 700, 3000, bytes.len() / 2, bytes.len() - 600] {
        let e = read_artifact(Failing {
            data: &bytes[..cut],
        })
        .unwrap_err();
        assert!(matches!(e, ArtifactError::Io(_)), "cut {cut}: {e}");
    }
}
