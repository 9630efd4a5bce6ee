//! Loading and checking the configuration: files, environment, flags and their errors.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn env_overrides_types() {
    let c = Config::load(
        None,
        &env(&[
            ("FLEETBOX_MAX_BODY_BYTES", "4096"),
            ("FLEETBOX_TLS_NAMES", "a.lan, 10.0.0.1"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.max_body_bytes, 4096);
    assert_eq!(c.tls_names, vec!["a.lan", "10.0.0.1"]);
}

#[test]
fn a_short_metrics_token_is_refused() {
    let load = |t: &str| {
        Config::load(
            None,
            &env(&[("FLEETBOX_METRICS_TOKEN", t)]),
            &Overrides::default(),
        )
    };
    let e = load("short-secret").unwrap_err();
    assert!(e.contains("metrics_token") && e.contains("16"), "{e}");
    assert_eq!(
        load("a-long-enough-scrape-secret").unwrap().metrics_token,
        "a-long-enough-scrape-secret"
    );
    assert!(load("").unwrap().metrics_token.is_empty());
}

#[test]
fn bad_env_value_names_the_variable() {
    let e = Config::load(
        None,
        &env(&[("FLEETBOX_MAX_BODY_BYTES", "lots")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(e.contains("FLEETBOX_MAX_BODY_BYTES"), "{e}");
}

#[test]
fn password_policy_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleetbox.toml");
    std::fs::write(&file, "[password_policy]\nmin = 12\nsymbol = 1\n").unwrap();
    let c = Config::load(Some(&file), &[], &Overrides::default()).unwrap();
    assert_eq!((c.password_min_length, c.password_min_symbol), (12, 1));

    let c = Config::load(
        None,
        &env(&[("FLEETBOX_PASSWORD_POLICY", r#"{"min": 9, "upper": 2}"#)]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!((c.password_min_length, c.password_min_upper), (9, 2));

    for (text, says) in [
        ("[password_policy]\nlength = 3\n", "unknown rule `length`"),
        ("[password_policy]\nmin = -1\n", "must be a count"),
        (
            "password_min_length = 9\n[password_policy]\nmin = 12\n",
            "set the same rule",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let e = Config::load(Some(&file), &[], &Overrides::default()).unwrap_err();
        assert!(e.contains(says), "{text}: {e}");
    }
    let e = Config::load(
        None,
        &env(&[("FLEETBOX_PASSWORD_POLICY", "{min: 9")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(e.contains("FLEETBOX_PASSWORD_POLICY"), "{e}");
}

#[test]
fn secrets_are_masked() {
    let c = Config {
        admin_password: "hunter2hunter2".into(),
        smtp_password: "mailpass99".into(),
        ..Config::default()
    };
    let t = c.to_masked_toml();
    assert!(!t.contains("hunter2"));
    assert!(!t.contains("mailpass99"));
    assert!(t.contains("********"));
}

#[test]
fn mail_and_login_protection_keys() {
    let load = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs), &Overrides::default());
    let c = load(&[("FLEETBOX_LOGIN_MAX_FAILURES", "3")]).unwrap();
    assert_eq!((c.login_max_failures, c.login_lockout_secs), (3, 300));
    let e = load(&[("FLEETBOX_SMTP_URL", "mail.lan")]).unwrap_err();
    assert!(e.contains("`smtp_url`"), "{e}");
    let e = load(&[("FLEETBOX_SMTP_URL", "smtp://mail.lan")]).unwrap_err();
    assert!(e.contains("`smtp_from`"), "{e}");
    let ok = load(&[
        ("FLEETBOX_SMTP_URL", "smtps://mail.lan"),
        ("FLEETBOX_SMTP_FROM", "fleetbox@example.com"),
    ]);
    assert!(ok.is_ok(), "{ok:?}");
    let e = load(&[("FLEETBOX_LOGIN_LOCKOUT_SECS", "0")]).unwrap_err();
    assert!(e.contains("`login_lockout_secs`"), "{e}");
}
