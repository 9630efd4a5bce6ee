//! SQLite store: a small pool of read connections and one writer thread.
//!
//! Reads run on tokio's blocking pool with a pooled connection. Writes are sent to a single
//! writer thread which groups whatever jobs are queued into one transaction (one fsync for many
//! small writes such as device status and inventory); each job runs inside its own savepoint so a
//! failing job rolls back alone. A job's result is delivered only after the commit succeeded, so
//! an acknowledged write is durable.

pub mod migrate;
pub mod regexp;

pub use migrate::SCHEMA_VERSION;

use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

const READERS: usize = 4;
/// Most jobs grouped into one write transaction.
const MAX_BATCH: usize = 128;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Completion = Box<dyn FnOnce(Option<Error>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    identity: Arc<IdentityWatch>,
    stats: Arc<WriterCounters>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Semaphore,
    writer: Mutex<Option<std_mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the writer has done, for the metrics: jobs waiting, transactions and the jobs in them.
#[derive(Default)]
struct WriterCounters {
    queued: std::sync::atomic::AtomicU64,
    batches: std::sync::atomic::AtomicU64,
    jobs: std::sync::atomic::AtomicU64,
    largest: std::sync::atomic::AtomicU64,
}

/// A reading of the writer's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    /// Writes waiting for the writer now.
    pub queue_depth: u64,
    /// Transactions committed (or attempted) since start.
    pub batches: u64,
    /// Writes in them.
    pub jobs: u64,
    /// The most writes one transaction has held.
    pub largest_batch: u64,
}

/// Whether a committed write changed what credential checks depend on: the `identity_version`
/// row its triggers move (see schema.sql). The writer's update hook notes the row changing; the
/// generation moves only after the transaction committed, so a check that read the old state
/// before the commit cannot keep it under the new generation.
#[derive(Default)]
struct IdentityWatch {
    touched: std::sync::atomic::AtomicBool,
    generation: std::sync::atomic::AtomicU64,
}

impl IdentityWatch {
    fn after_commit(&self) {
        if self.touched.swap(false, Ordering::AcqRel) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Process-wide SQLite settings, made once before the first connection opens. SQLite's memory
/// statistics take a global mutex on every allocation, which every reader and the writer would
/// contend for; nothing here reads them. (After SQLite is initialised the call is refused, which
/// only leaves the statistics on.)
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called before any connection of this process is opened, with the argument
        // SQLITE_CONFIG_MEMSTATUS takes (an int).
        unsafe {
            rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0);
        }
    });
}

fn open_connection(path: &Path) -> Result<Connection> {
    configure_sqlite();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Plans do not depend on bound values: without this the bundled SQLite (built with STAT4)
    // re-prepares a cached statement whenever a bound value changes, i.e. on nearly every
    // execution, which made parsing the biggest cost of a device poll.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // WAL lets readers run beside the writer (and beside CLI commands while the server runs);
    // synchronous=FULL keeps acknowledged writes across a power cut, the batching writer
    // amortises the fsync.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    register_functions(&conn)?;
    // Room for every hot statement, so management queries do not push a poll's statement out
    // and make it parse again.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// SQL functions the queries use: `fleetbox_regexp(pattern, text)` for the inventory `$regex`
/// operator (compiled once per statement).
fn register_functions(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "fleetbox_regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re: std::sync::Arc<Option<regex::Regex>> = ctx.get_or_create_aux(0, |v| {
                Ok::<_, rusqlite::Error>(regexp::compile(v.as_str()?))
            })?;
            let text = ctx.get_raw(1).as_str().unwrap_or_default();
            Ok(re.as_ref().as_ref().is_some_and(|r| r.is_match(text)))
        },
    )?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database file, applies the schema or pending migrations
    /// and starts the writer thread.
    pub fn open(path: &Path) -> Result<Db> {
        let mut conn = open_connection(path)?;
        migrate::migrate(&mut conn)?;
        let identity = Arc::new(IdentityWatch::default());
        let watch = identity.clone();
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
                if table == "identity_version" {
                    watch
                        .touched
                        .store(true, std::sync::atomic::Ordering::Release);
                }
            },
        ))?;
        let (tx, rx) = std_mpsc::channel::<Job>();
        let watch = identity.clone();
        let stats = Arc::new(WriterCounters::default());
        let counters = stats.clone();
        let thread = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || writer_loop(conn, rx, &watch, &counters))
            .map_err(Error::internal)?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                identity,
                stats,
                readers: Mutex::new(Vec::new()),
                read_permits: Semaphore::new(READERS),
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Moves after every committed write of this process that changed a key, role, user or
    /// tenant in a way credential checks depend on (changes by other processes are seen through
    /// the `identity_version` row itself).
    pub fn identity_generation(&self) -> u64 {
        self.inner
            .identity
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs `f` with a read connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(Error::internal)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap().pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path)?,
            };
            let out = f(&conn);
            inner.readers.lock().unwrap().push(conn);
            out
        })
        .await?
    }

    /// Runs `f` with a read connection on the calling thread, without the hop to the blocking
    /// pool that `read` makes. Only for the device hot path (a poll's lookup by primary key or
    /// index, some microseconds against the page cache), where that hop and its wake-ups cost
    /// more than the query. In WAL mode a reader never waits for the writer, so this does not
    /// stall the runtime. At most one such read runs per runtime thread, so the pool stays
    /// bounded by `READERS` plus the number of runtime threads.
    pub fn read_now<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.inner.readers.lock().unwrap().pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.inner.path)?,
        };
        let out = f(&conn);
        self.inner.readers.lock().unwrap().push(conn);
        out
    }

    /// Runs `f` inside the writer's transaction; resolves after the commit.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
            let out = run_in_savepoint(conn, f);
            Box::new(move |commit_err: Option<Error>| {
                let out = match commit_err {
                    Some(e) => Err(e),
                    None => out,
                };
                let _ = tx.send(out);
            })
        });
        let sender = self.inner.writer.lock().unwrap().clone();
        let Some(sender) = sender else {
            return Err(Error::internal("database is closed"));
        };
        self.inner.stats.queued.fetch_add(1, Ordering::Relaxed);
        sender
            .send(job)
            .map_err(|_| Error::internal("database writer stopped"))?;
        rx.await
            .map_err(|_| Error::internal("database writer dropped a job"))?
    }

    /// The writer's counters.
    pub fn writer_stats(&self) -> WriterStats {
        let c = &self.inner.stats;
        WriterStats {
            queue_depth: c.queued.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            jobs: c.jobs.load(Ordering::Relaxed),
            largest_batch: c.largest.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer after the queued jobs, checkpoints the WAL and closes connections.
    pub fn close(&self) {
        self.inner.writer.lock().unwrap().take();
        if let Some(t) = self.inner.writer_thread.lock().unwrap().take() {
            let _ = t.join();
        }
        self.inner.readers.lock().unwrap().clear();
    }
}

fn run_in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

fn writer_loop(
    conn: Connection,
    rx: std_mpsc::Receiver<Job>,
    identity: &IdentityWatch,
    stats: &WriterCounters,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        stats.queued.fetch_sub(n, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(n, Ordering::Relaxed);
        stats.largest.fetch_max(n, Ordering::Relaxed);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let msg = format!("database: begin: {e}");
            tracing::error!("{msg}");
            for job in batch {
                // Run nothing; report the failure to every waiter.
                drop(job);
            }
            continue;
        }
        let completions: Vec<Completion> = batch.into_iter().map(|job| job(&conn)).collect();
        let commit = conn.execute_batch("COMMIT");
        let err = commit.err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!("database commit failed: {e}");
            e.to_string()
        });
        // Before anyone learns the write is done.
        identity.after_commit();
        for done in completions {
            done(
                err.as_ref()
                    .map(|e| Error::internal(format!("database: commit: {e}"))),
            );
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!("WAL checkpoint on close failed: {e}");
    }
    tracing::debug!("database writer stopped");
}

/// Current time in milliseconds since the Unix epoch, the unit of every `*_ts` column.
pub fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}
