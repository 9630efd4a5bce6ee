//! Writer of the artifacts a configuration deployment installs: one `mender-configure` payload
//! with no files, the configuration as its meta-data, laid out as Mender's deployments service
//! generates them (format 3, nothing compressed, the payload provides
//! `data-partition.mender-configure.version` and clears the earlier one).
//!
//! ```text
//! version                      {"format":"mender","version":3}
//! manifest                     sha256 of header.tar and version
//! header.tar                   header-info, headers/0000/type-info, headers/0000/meta-data
//! data/0000.tar                an empty archive (the payload has no files)
//! ```

use std::io::{self, Write};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::codec::hex32;
use super::writer::member_header;
use super::ArtifactError;

/// The update module that applies a configuration on the device.
pub const MODULE: &str = "mender-configure";
const PROVIDES: &str = "data-partition.mender-configure.version";
const CLEARS: &str = "data-partition.mender-configure.*";

/// Writes the configuration artifact `artifact_name` for one device type.
pub fn write_configuration<W: Write>(
    out: W,
    artifact_name: &str,
    device_type: &str,
    configuration: &Map<String, Value>,
) -> Result<(), ArtifactError> {
    for (what, v) in [
        ("artifact name", artifact_name),
        ("device type", device_type),
    ] {
        if v.is_empty() || v.chars().any(char::is_control) {
            return Err(ArtifactError::InvalidSpec(format!(
                "{what} must be non-empty text without control characters"
            )));
        }
    }
    let header = header_tar(artifact_name, device_type, configuration)?;
    let version = br#"{"format":"mender","version":3}"#;
    let manifest = format!(
        "{}  header.tar\n{}  version\n",
        hex32(&Sha256::digest(&header).into()),
        hex32(&Sha256::digest(version).into()),
    );
    // An empty tar archive: two zero blocks.
    let data = tar::Builder::new(Vec::new()).into_inner()?;

    let mut outer = tar::Builder::new(out);
    for (name, bytes) in [
        ("version", &version[..]),
        ("manifest", manifest.as_bytes()),
        ("header.tar", &header[..]),
        ("data/0000.tar", &data[..]),
    ] {
        let mut h = member_header(bytes.len() as u64, 0o600, 0, false);
        outer.append_data(&mut h, name, bytes)?;
    }
    outer.into_inner()?.flush()?;
    Ok(())
}

fn header_tar(
    artifact_name: &str,
    device_type: &str,
    configuration: &Map<String, Value>,
) -> Result<Vec<u8>, ArtifactError> {
    let info = json!({
        "payloads": [{ "type": MODULE }],
        "artifact_provides": { "artifact_name": artifact_name },
        "artifact_depends": { "device_type": [device_type] },
    });
    let type_info = json!({
        "type": MODULE,
        "artifact_provides": { PROVIDES: artifact_name },
        "artifact_depends": {},
        "clears_artifact_provides": [CLEARS],
    });
    let members = [
        ("header-info", info.to_string()),
        ("headers/0000/type-info", type_info.to_string()),
        (
            "headers/0000/meta-data",
            Value::Object(configuration.clone()).to_string(),
        ),
    ];
    let mut b = tar::Builder::new(Vec::new());
    for (name, text) in &members {
        let mut h = member_header(text.len() as u64, 0o600, 0, false);
        b.append_data(&mut h, name, text.as_bytes())?;
    }
    b.into_inner().map_err(|e: io::Error| e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_as_a_configure_payload_with_its_meta_data() {
        let mut config = Map::new();
        config.insert("timezone".into(), json!("Europe/Oslo"));
        let mut out = Vec::new();
        write_configuration(&mut out, "configuration-1", "raspberrypi4", &config).unwrap();
        let info = crate::artifact::read_artifact(out.as_slice()).unwrap();
        assert_eq!(info.name, "configuration-1");
        assert_eq!(info.device_types, vec!["raspberrypi4".to_string()]);
        let u = &info.updates[0];
        assert_eq!(u.type_name.as_deref(), Some(MODULE));
        assert!(u.files.is_empty());
        assert_eq!(u.meta_data, Some(Value::Object(config)));
        assert_eq!(u.provides[PROVIDES], "configuration-1");
        assert_eq!(u.clears_provides, vec![CLEARS.to_string()]);
    }

    #[test]
    fn refuses_control_characters() {
        let e = write_configuration(Vec::new(), "a\nb", "pi", &Map::new());
        assert!(e.is_err());
    }
}
