//! Identity costs with 10,000 users and 10,000 API keys, in process: the API-key check every
//! request with a key pays (one indexed read, a keyed hash, the key's permissions), and a page
//! of the users list as `/v3/users` asks for it (first page, a page deep in the list, with the
//! total count). Run: `cargo bench --bench identity`.

use fleetbox::core::api_keys::{self, NewKey};
use fleetbox::core::credentials::Verifier;
use fleetbox::core::paging::{Page, Query};
use fleetbox::core::users;
use fleetbox::crypto::token::TokenKeys;
use fleetbox::crypto::vault::Vault;
use std::sync::Arc;
use std::time::Instant;
use support::per_op;

mod support;

const USERS: usize = 10_000;
const KEYS: usize = 10_000;

fn main() {
    let support::Rig {
        rt,
        dir,
        db,
        tenant,
    } = support::rig();
    let hasher = Arc::new(Vault::load_or_create(&dir.path().join("api-key.key")).unwrap());
    let verifier = Verifier {
        keys: TokenKeys::load_or_create(&dir.path().join("token.key")).unwrap(),
        api_key_hash: hasher.clone(),
        api_key_cache: Default::default(),
    };

    // Users straight into the table (a password hash each would be 10,000 argon2 runs, and the
    // list does not read it); every user in the default `admin` role's place is not needed.
    let t = tenant.clone();
    let ids: Vec<String> = rt
        .block_on(db.write(move |conn| {
            let mut ids = Vec::with_capacity(USERS);
            let mut stmt = conn.prepare(
                "INSERT INTO users (id, tenant_id, email, full_name, created_ts, updated_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?;
            for i in 0..USERS {
                let id = fleetbox::core::new_id();
                stmt.execute(rusqlite::params![
                    id,
                    t,
                    format!("user{i:05}@example.com"),
                    format!("User {i}"),
                    1_700_000_000_000i64 + i as i64
                ])?;
                ids.push(id);
            }
            Ok(ids)
        }))
        .unwrap();
    let start = Instant::now();
    let mut keys = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let new = NewKey {
            tenant_id: tenant.clone(),
            owner_id: Some(ids[i % USERS].clone()),
            name: format!("key {i}"),
            role_ids: vec![],
            active: true,
        };
        keys.push(
            rt.block_on(api_keys::create(&db, &hasher, new))
                .unwrap()
                .key,
        );
    }
    println!(
        "(made {USERS} users and {KEYS} API keys; the keys one by one in {:.1} s)",
        start.elapsed().as_secs_f64()
    );

    println!("== API-key check (what every request with a key pays)");
    let mut i = 0;
    per_op(
        "first check of each of 10,000 keys (full check)",
        KEYS as u32,
        || {
            i = (i + 7919) % KEYS;
            rt.block_on(verifier.resolve(&db, &keys[i])).unwrap();
        },
    );
    per_op(
        "the same 10,000 keys again (remembered)",
        5 * KEYS as u32,
        || {
            i = (i + 7919) % KEYS;
            rt.block_on(verifier.resolve(&db, &keys[i])).unwrap();
        },
    );
    let uncached = Verifier {
        api_key_cache: Default::default(),
        ..verifier.clone()
    };
    let cold = fleetbox::core::api_keys::resolve;
    per_op(
        "full check alone (no memory), 10,000 keys rotating",
        20_000,
        || {
            i = (i + 7919) % KEYS;
            rt.block_on(cold(&db, &uncached.api_key_hash, &keys[i]))
                .unwrap();
        },
    );
    let mut bad = keys[0].clone();
    bad.pop();
    bad.push('x');
    per_op("refuse a key with a wrong secret", 20_000, || {
        assert!(rt.block_on(verifier.resolve(&db, &bad)).is_err());
    });

    println!("== users list (the core of GET /v3/users), 10,000 users");
    let counted = |after: Option<String>, with_total: bool| Query {
        page: Page::After {
            after,
            limit: 50,
            descending: false,
        },
        with_total,
    };
    let page = |after| counted(after, false);
    let list = |q: &Query| {
        rt.block_on(users::list(&db, &tenant, Default::default(), q))
            .unwrap()
    };
    per_op("first page of 50", 2_000, || {
        assert_eq!(list(&page(None)).items.len(), 50);
    });
    per_op("first page of 50, with total_count", 2_000, || {
        assert_eq!(list(&counted(None, true)).total, Some(USERS as u64));
    });
    let middle = ids[USERS / 2].clone();
    per_op("page of 50 after the 5,000th user", 2_000, || {
        assert_eq!(list(&page(Some(middle.clone()))).items.len(), 50);
    });
    let filter = users::Filter {
        emails: vec!["user07777@example.com".into()],
        ..Default::default()
    };
    per_op("email__eq filter (one match)", 2_000, || {
        let l = rt
            .block_on(users::list(&db, &tenant, filter.clone(), &page(None)))
            .unwrap();
        assert_eq!(l.items.len(), 1);
    });
}
