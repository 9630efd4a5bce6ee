//! Mender's permission sets (what its roles are made of), expressed in the one permission
//! model: `{context: http, resource: <domain resource>, operation}`, on the resources routes
//! declare (`devices/{id}`, `users/{id}`, `releases/{name}`), not on any dialect's URLs. A set that
//! supports the `DeviceGroups` scope compiles to permissions limited to those groups; one that
//! supports `ReleaseTags` to permissions limited to releases with one of those tags.

use super::permissions::Permission;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const DEVICE_GROUPS: &str = "DeviceGroups";
pub const RELEASE_TAGS: &str = "ReleaseTags";

pub struct SetDef {
    pub name: &'static str,
    pub description: &'static str,
    /// The scope type the set can be limited by, if any.
    pub scope: Option<&'static str>,
    /// `(resource filter, operation)` pairs granted.
    pub grants: &'static [(&'static str, &'static str)],
}

/// Devices and what hangs off them, as a device reader sees them (remote access and device
/// configuration are separate resources, `remote/…` and `device-config/…`, so reading or
/// managing devices never opens a terminal or changes a configuration).
const READ_DEVICES: &[(&str, &str)] = &[
    ("devices/#", "read"),
    ("device-groups/#", "read"),
    ("device-filters/#", "read"),
    ("device-attributes", "read"),
    ("device-limits", "read"),
];

const READ_RELEASES: &[(&str, &str)] = &[
    ("artifacts/#", "read"),
    ("releases/#", "read"),
    ("release-tags", "read"),
    ("release-types", "read"),
    ("storage-limits", "read"),
];

pub const SETS: &[SetDef] = &[
    SetDef {
        name: "SuperUser",
        description: "Everything, everywhere",
        scope: None,
        grants: &[("#", "#")],
    },
    SetDef {
        name: "ReadDevices",
        description: "See devices, their inventory and authentication",
        scope: Some(DEVICE_GROUPS),
        grants: READ_DEVICES,
    },
    SetDef {
        name: "ManageDevices",
        description: "Accept, reject, decommission, tag and group devices",
        scope: Some(DEVICE_GROUPS),
        grants: &[
            ("devices/#", "readWrite"),
            ("device-groups/#", "readWrite"),
            ("device-filters/#", "readWrite"),
            ("device-attributes", "read"),
            ("device-tokens/#", "readWrite"),
            ("device-limits", "read"),
        ],
    },
    SetDef {
        name: "ConnectToDevices",
        description: "Remote terminal, port forwarding and file transfer",
        scope: Some(DEVICE_GROUPS),
        grants: &[("devices/+/connection", "read"), ("remote/#", "readWrite")],
    },
    SetDef {
        name: "ConfigureDevices",
        description: "Change device configuration",
        scope: Some(DEVICE_GROUPS),
        grants: &[("device-config/#", "readWrite")],
    },
    SetDef {
        name: "DeployToDevices",
        description: "Create and abort deployments",
        scope: Some(DEVICE_GROUPS),
        // Releases are read only: editing and deleting them stays with ManageReleases.
        grants: &[
            ("deployments", "readWrite"),
            ("deployments/#", "read"),
            ("deployments/+/status", "write"),
            ("devices/+/deployments", "readWrite"),
            ("artifacts/#", "read"),
            ("releases/#", "read"),
            ("release-tags", "read"),
            ("release-types", "read"),
            ("device-groups", "read"),
            ("device-filters", "read"),
        ],
    },
    SetDef {
        name: "ReadDeployments",
        description: "See deployments and their progress",
        scope: None,
        grants: &[("deployments/#", "read"), ("devices/+/deployments", "read")],
    },
    SetDef {
        name: "ReadReleases",
        description: "See releases and artifacts",
        scope: Some(RELEASE_TAGS),
        grants: READ_RELEASES,
    },
    SetDef {
        name: "ManageReleases",
        description: "Upload, edit and delete artifacts",
        scope: Some(RELEASE_TAGS),
        grants: &[
            ("artifacts/#", "readWrite"),
            ("releases/#", "readWrite"),
            ("release-tags", "read"),
            ("release-types", "read"),
            ("storage-limits", "read"),
        ],
    },
    SetDef {
        name: "UploadArtifacts",
        description: "Upload and generate artifacts",
        // Not scopable by ReleaseTags: the release an upload joins is only known once the file
        // is read, and a new release has no tags yet, so it could never be in a tag scope.
        scope: None,
        grants: &[("artifacts", "readWrite"), ("artifacts/generate", "write")],
    },
    SetDef {
        name: "ReadUsers",
        description: "See users and roles",
        scope: None,
        grants: &[
            ("users/#", "read"),
            ("roles/#", "read"),
            ("permission-sets", "read"),
        ],
    },
    SetDef {
        name: "ManageUsers",
        description: "Create, change and remove users and roles",
        scope: None,
        grants: &[
            ("users/#", "readWrite"),
            ("roles/#", "readWrite"),
            ("permission-sets", "read"),
            ("settings", "readWrite"),
        ],
    },
    SetDef {
        name: "ReadAuditLogs",
        description: "See and export the audit log, and play back remote terminal sessions",
        scope: None,
        grants: &[("auditlogs/#", "read"), ("remote-sessions/#", "read")],
    },
];

pub fn find(name: &str) -> Option<&'static SetDef> {
    SETS.iter().find(|s| s.name == name)
}

/// A permission set in a role, as Mender clients send and see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopedSet {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Vec<String>,
}

impl ScopedSet {
    pub fn plain(name: &str) -> ScopedSet {
        ScopedSet {
            name: name.into(),
            scope: None,
        }
    }
}

/// Checks the sets of a role and compiles them into permissions. `field` names the list in
/// error messages.
pub fn compile(field: &str, sets: &[ScopedSet]) -> Result<Vec<Permission>> {
    let mut out = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let def = find(&set.name).ok_or_else(|| {
            let known: Vec<&str> = SETS.iter().map(|s| s.name).collect();
            Error::invalid(
                format!("{at}.name"),
                format!(
                    "{at}.name: unknown permission set `{}`; known: {}",
                    set.name,
                    known.join(", ")
                ),
            )
        })?;
        let values = match &set.scope {
            None => None,
            Some(scope) => {
                if def.scope != Some(scope.kind.as_str()) {
                    return Err(Error::invalid(
                        format!("{at}.scope.type"),
                        match def.scope {
                            Some(t) => {
                                format!("{at}.scope.type: {} can only be scoped by {t}", def.name)
                            }
                            None => format!("{at}.scope.type: {} cannot be scoped", def.name),
                        },
                    ));
                }
                if scope.kind == RELEASE_TAGS {
                    // Checked and lower-cased like the tags they are compared with.
                    let field = format!("{at}.scope.value");
                    let tags = super::releases::normalize_tags(&field, &scope.value)?;
                    if tags.is_empty() {
                        return Err(Error::invalid(
                            field.clone(),
                            format!("{field} must list at least one tag"),
                        ));
                    }
                    Some(tags)
                } else if scope.value.is_empty() || scope.value.iter().any(|g| g.trim().is_empty())
                {
                    return Err(Error::invalid(
                        format!("{at}.scope.value"),
                        format!("{at}.scope.value must list at least one non-empty group name"),
                    ));
                } else {
                    Some(scope.value.clone())
                }
            }
        };
        let (groups, tags) = match def.scope {
            Some(RELEASE_TAGS) => (None, values),
            _ => (values, None),
        };
        for (resource, op) in def.grants {
            let context = if *resource == "#" { "#" } else { "http" };
            out.push(
                Permission::new(context, resource, op)
                    .in_groups(groups.clone())
                    .with_tags(tags.clone()),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::permissions::any_allows;
    use super::*;

    #[test]
    fn compiles_and_scopes() {
        let perms = compile(
            "p",
            &[ScopedSet {
                name: "ReadDevices".into(),
                scope: Some(Scope {
                    kind: DEVICE_GROUPS.into(),
                    value: vec!["lab".into()],
                }),
            }],
        )
        .unwrap();
        assert!(perms
            .iter()
            .all(|p| p.groups.as_deref() == Some(&["lab".to_string()][..])));
        assert!(perms
            .iter()
            .any(|p| p.allows("http", "devices/x/inventory", "read")));
        assert!(!perms
            .iter()
            .any(|p| p.allows("http", "devices/x/inventory", "write")));
    }

    #[test]
    fn rejects_bad_sets() {
        let e = compile("p", &[ScopedSet::plain("Nope")]).unwrap_err();
        assert!(e.to_string().contains("unknown permission set"));
        let bad_scope = ScopedSet {
            name: "ReadUsers".into(),
            scope: Some(Scope {
                kind: DEVICE_GROUPS.into(),
                value: vec!["g".into()],
            }),
        };
        assert!(compile("p", &[bad_scope]).is_err());
    }

    #[test]
    fn connect_is_not_reading() {
        let read = compile("p", &[ScopedSet::plain("ReadDevices")]).unwrap();
        assert!(read
            .iter()
            .any(|p| p.allows("http", "devices/x/connection", "read")));
        assert!(!read
            .iter()
            .any(|p| p.allows("http", "remote/x/terminal", "read")));
    }

    fn tagged(name: &str, tags: &[&str]) -> ScopedSet {
        ScopedSet {
            name: name.into(),
            scope: Some(Scope {
                kind: RELEASE_TAGS.into(),
                value: tags.iter().map(|t| t.to_string()).collect(),
            }),
        }
    }

    #[test]
    fn release_tag_scopes() {
        let perms = compile("p", &[tagged("ManageReleases", &["Prod", "beta", "prod"])]).unwrap();
        // Lower-cased and deduplicated, like release tags; no device groups.
        assert!(perms.iter().all(|p| p.tags.as_deref()
            == Some(&["prod".to_string(), "beta".to_string()][..])
            && p.groups.is_none()));
        for (resource, op) in [
            ("releases", "write"),
            ("releases/r1/tags", "write"),
            ("artifacts/x", "write"),
            ("release-tags", "read"),
        ] {
            assert!(any_allows(&perms, "http", resource, op), "{resource} {op}");
        }
        assert!(compile("p", &[tagged("ReadReleases", &["prod"])]).is_ok());
        // Uploading is not scopable; neither are device sets by tags.
        for set in ["UploadArtifacts", "ReadDevices"] {
            let e = compile("p", &[tagged(set, &["prod"])]).unwrap_err();
            assert!(e.to_string().contains("p[0].scope.type"), "{e}");
        }
        for bad in [&[][..], &["no spaces"][..], &[""][..]] {
            let e = compile("p", &[tagged("ReadReleases", bad)]).unwrap_err();
            assert!(e.to_string().contains("p[0].scope.value"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn only_release_managers_change_releases() {
        let deploy = compile("p", &[ScopedSet::plain("DeployToDevices")]).unwrap();
        for (resource, op, allowed) in [
            ("deployments", "write", true),
            ("deployments/d1/devices", "read", true),
            ("deployments/d1/status", "write", true),
            ("deployments/d1/devices/x/log", "read", true),
            ("devices/x/deployments", "write", true),
            ("releases", "read", true),
            ("releases", "write", false),
            ("releases/r1", "write", false),
            ("releases/r1/tags", "write", false),
        ] {
            assert_eq!(
                any_allows(&deploy, "http", resource, op),
                allowed,
                "{resource} {op}"
            );
        }
        let read = compile("p", &[ScopedSet::plain("ReadReleases")]).unwrap();
        assert!(any_allows(&read, "http", "releases/r1", "read"));
        assert!(!any_allows(&read, "http", "releases/r1", "write"));
    }
}
