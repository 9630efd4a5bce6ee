//! A real directory for the tests: Debian's `slapd` on 127.0.0.1 with a generated tree of
//! people and groups, loaded with `slapadd` before it starts and changed with `ldapmodify`.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "dc=fleetbox,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=fleetbox,dc=test";
pub const ROOT_PW: &str = "directory-root-secret";
/// The read-only account fleetbox searches with.
pub const READER_DN: &str = "cn=reader,dc=fleetbox,dc=test";
pub const READER_PW: &str = "reader-secret";

pub struct Slapd {
    child: Child,
    pub port: u16,
    tls: bool,
    _dir: tempfile::TempDir,
}

/// One person in the generated tree.
pub struct Person<'a> {
    pub uid: &'a str,
    pub password: &'a str,
    pub groups: &'a [&'a str],
    /// `employeeType` values (attribute mode).
    pub types: &'a [&'a str],
    /// Marked disabled the way `usermod --expiredate 1` does (`shadowExpire: 1`).
    pub disabled: bool,
}

fn tree(people: &[Person], groups: &[&str]) -> String {
    let mut l = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: fleetbox test\ndc: fleetbox\n\n\
         dn: {READER_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: reader\nuserPassword: {READER_PW}\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for p in people {
        l += &format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nobjectClass: shadowAccount\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@fleetbox.test\nuserPassword: {pw}\n",
            uid = p.uid,
            pw = p.password
        );
        for t in p.types {
            l += &format!("employeeType: {t}\n");
        }
        if p.disabled {
            l += "shadowExpire: 1\n";
        }
        l += "\n";
    }
    for g in groups {
        l += &format!(
            "dn: cn={g},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {g}\n\
             member: {READER_DN}\n"
        );
        for p in people.iter().filter(|p| p.groups.contains(g)) {
            l += &format!("member: uid={},ou=people,{BASE}\n", p.uid);
        }
        l += "\n";
    }
    l
}

/// The directory's TLS files: a CA (`ca.pem`) and a certificate for 127.0.0.1 it signed.
fn make_tls(dir: &std::path::Path) -> String {
    let run = |args: &[&str]| super::openssl(args, dir);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=directory test CA",
    ]);
    run(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    format!(
        "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\n\
         TLSCertificateKeyFile {d}/server.key\n",
        d = dir.display()
    )
}

/// True when Debian's `slapd` and `ldap-utils` are installed; otherwise the test skips (or
/// fails under FLEETBOX_REQUIRE_REAL_CLIENTS=1, as in CI).
pub fn available(test: &str) -> bool {
    let have = ["/usr/sbin/slapd", "/usr/sbin/slapadd"]
        .iter()
        .all(|p| std::path::Path::new(p).exists())
        && Command::new("sh")
            .args(["-c", "command -v ldapmodify"])
            .output()
            .is_ok_and(|o| o.status.success());
    if have {
        return true;
    }
    if std::env::var("FLEETBOX_REQUIRE_REAL_CLIENTS").as_deref() == Ok("1") {
        panic!("{test}: slapd/ldap-utils are missing (FLEETBOX_REQUIRE_REAL_CLIENTS=1)");
    }
    eprintln!("SKIPPED {test}: slapd and ldap-utils are not installed");
    false
}

impl Slapd {
    pub fn start(people: &[Person], groups: &[&str]) -> Slapd {
        Slapd::start_with(people, groups, false)
    }

    /// The same directory on `ldaps://` only, with a certificate from its own CA
    /// (`ca_path()`).
    pub fn start_tls(people: &[Person], groups: &[&str]) -> Slapd {
        Slapd::start_with(people, groups, true)
    }

    pub fn ca_path(&self) -> PathBuf {
        self._dir.path().join("ca.pem")
    }

    fn start_with(people: &[Person], groups: &[&str], tls: bool) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let tls_conf = if tls {
            make_tls(dir.path())
        } else {
            String::new()
        };
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 pidfile {pid}\n{tls_conf}\
                 database mdb\nmaxsize 10485760\nsuffix \"{BASE}\"\n\
                 rootdn \"{ROOT_DN}\"\nrootpw {ROOT_PW}\ndirectory {db}\n\
                 access to attrs=userPassword by self write by anonymous auth by * none\n\
                 access to * by dn.exact=\"{READER_DN}\" read by self read by * none\n",
                pid = dir.path().join("slapd.pid").display(),
                db = db.display(),
            ),
        )
        .unwrap();
        let ldif = dir.path().join("tree.ldif");
        std::fs::write(&ldif, tree(people, groups)).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .args(["-f", conf.to_str().unwrap(), "-l", ldif.to_str().unwrap()])
            .output()
            .expect("slapadd (Debian's slapd package) is installed by .ci/run");
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::free_port();
        let child = Command::new("/usr/sbin/slapd")
            .args(["-f", conf.to_str().unwrap(), "-d", "0"])
            .arg("-h")
            .arg(format!(
                "{}://127.0.0.1:{port}/",
                if tls { "ldaps" } else { "ldap" }
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Slapd {
            child,
            port,
            tls,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "ldaps" } else { "ldap" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Applies an LDIF change as the directory's root.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW])
            .env("LDAPTLS_CACERT", self.ca_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (ldap-utils) is installed by .ci/run");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The DN of a person of the tree.
    pub fn person_dn(uid: &str) -> String {
        format!("uid={uid},ou=people,{BASE}")
    }

    pub fn group_dn(cn: &str) -> String {
        format!("cn={cn},ou=groups,{BASE}")
    }

    /// Where a test writes config files next to the directory's own.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self._dir.path().join(name)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
