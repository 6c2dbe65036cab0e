//! NFSv4 client-recovery records in nfsdcld's database, for a node that
//! serves several HA services from one nfsd.
//!
//! A node has one nfsd and nfsd talks to one nfsdcld, which keeps one
//! database (`main.sqlite` in its storage directory). Each service keeps its
//! records on its own shared storage, so when a second service arrives on a
//! node, its records are merged into the database nfsdcld already serves
//! (they become reclaimable at the next nfsd start), and from then on that
//! database is copied back to the arriving service's storage, so that the
//! service can take its clients' records with it when it leaves or its node
//! fails.
//!
//! The database layout is nfsdcld's schema version 4 (nfs-utils
//! `utils/nfsdcld/sqlite.c`):
//! - `parameters(key, value)`: `version` = 4, `first_time`;
//! - `grace(current, recovery)`: the current epoch, and the epoch whose
//!   clients may reclaim (0: no grace period in progress);
//! - `"rec-%016x"(id BLOB PRIMARY KEY, princhash BLOB)`: one table per
//!   epoch, one row per client (its long-form NFSv4 client id).
//!
//! At nfsd start nfsdcld makes the reclaim set the current table (or keeps
//! the recovery table if nfsd restarted during a grace period); a client that
//! reclaims is copied into the current table; at the end of grace the
//! recovery table is dropped. So the clients that may reclaim at the next
//! start are "current ∪ recovery", and records added for the next start go
//! into the recovery table during a grace period, into the current one
//! otherwise. nfsdcld keeps the epochs in memory and only adds or removes
//! rows between grace events, so adding rows to a database it serves is
//! safe (SQLite locks the file).

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cld::DB_FILE;
use crate::ocf::{Deadline, OcfResult};
use crate::sys::bounded;

/// The nfsdcld schema this module reads and writes.
pub const SCHEMA_VERSION: i64 = 4;

/// One client's record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    /// The client's long-form id, as the client sent it.
    pub id: Vec<u8>,
    /// SHA-256 of its Kerberos principal, when it used one.
    pub princhash: Option<Vec<u8>>,
}

impl Record {
    /// The id as text where it is text (Linux clients send
    /// "Linux NFSv4.2 <hostname>"), for logs.
    pub fn show(&self) -> String {
        String::from_utf8_lossy(&self.id).into_owned()
    }
}

type Result<T> = std::result::Result<T, String>;

fn table(epoch: i64) -> String {
    format!("\"rec-{:016x}\"", epoch as u64)
}

/// (current, recovery) from the grace table (a transaction is a connection).
fn read_epochs(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("SELECT current, recovery FROM grace", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

/// One nfsdcld database.
pub struct ClientDb {
    conn: Connection,
    path: PathBuf,
}

impl ClientDb {
    /// Open the database in `dir`, creating the directory (when its parent
    /// exists) and an empty database in nfsdcld's layout when missing.
    pub fn open(dir: &Path) -> Result<ClientDb> {
        if !dir.is_dir() {
            std::fs::create_dir(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut db = Self::connect(dir, OpenFlags::default())?;
        db.init()?;
        db.require_version()?;
        Ok(db)
    }

    /// Open the database in `dir` for reading only, as it is (storage that
    /// refuses writes can still be read). A missing database is an error.
    pub fn open_read_only(dir: &Path) -> Result<ClientDb> {
        let db = Self::connect(dir, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        db.require_version()?;
        Ok(db)
    }

    /// A connection to `dir`'s database with `flags`; without
    /// SQLITE_OPEN_CREATE among them the file must exist.
    fn connect(dir: &Path, flags: OpenFlags) -> Result<ClientDb> {
        let path = dir.join(DB_FILE);
        // A symbolic link (or a FIFO, a directory) in the database's place
        // is refused, not followed: the records are written, and must never
        // be written elsewhere. (SQLite's own NOFOLLOW would refuse a
        // recovery_dir reached through a link too.)
        let exists = crate::sys::fsfile::open_regular(&path, false)
            .map_err(|e| e.to_string())?
            .is_some();
        if !exists && !flags.contains(OpenFlags::SQLITE_OPEN_CREATE) {
            return Err(format!("{}: no such database", path.display()));
        }
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let db = ClientDb { conn, path };
        db.conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| db.err("set a busy timeout", e))?;
        Ok(db)
    }

    /// The schema this module reads, else an error saying which it is.
    fn require_version(&self) -> Result<()> {
        match self.version()? {
            Some(SCHEMA_VERSION) => Ok(()),
            other => Err(format!(
                "{}: nfsdcld schema version {} (this agent reads version {SCHEMA_VERSION}; start nfsdcld once on it to upgrade it)",
                self.path.display(),
                other.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into())
            )),
        }
    }

    fn err(&self, what: &str, e: rusqlite::Error) -> String {
        format!("{}: cannot {what}: {e}", self.path.display())
    }

    /// The schema version in `parameters`.
    fn version(&self) -> Result<Option<i64>> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM parameters WHERE key='version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err("read its schema version", e))?;
        Ok(v.and_then(|s| s.trim().parse().ok()))
    }

    /// Lay out an empty database as nfsdcld does, unless it has a layout.
    /// `first_time` is 0: this database's records are the service's, and
    /// nfsdcld must not import the node's old local records into it.
    fn init(&mut self) -> Result<()> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(|e| format!("{path}: cannot lock: {e}"))?;
        let has_params: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='parameters'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| format!("{path}: cannot read its tables: {e}"))?;
        if has_params == 0 {
            tx.execute_batch(&format!(
                "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);
                 CREATE TABLE grace (current INTEGER, recovery INTEGER);
                 INSERT INTO grace VALUES (1, 0);
                 CREATE TABLE {} (id BLOB PRIMARY KEY, princhash BLOB);
                 INSERT INTO parameters VALUES ('version', '{SCHEMA_VERSION}');
                 INSERT INTO parameters VALUES ('first_time', '0');",
                table(1)
            ))
            .map_err(|e| format!("{path}: cannot create nfsdcld's tables: {e}"))?;
        }
        tx.commit()
            .map_err(|e| format!("{path}: cannot commit: {e}"))
    }

    /// (current, recovery) epochs.
    pub fn epochs(&self) -> Result<(i64, i64)> {
        read_epochs(&self.conn).map_err(|e| self.err("read the grace table", e))
    }

    fn rows(&self, epoch: i64) -> Result<Vec<Record>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT id, princhash FROM {}", table(epoch)))
            .map_err(|e| self.err("read the client records", e))?;
        let mut rows = st
            .query_map([], |r| {
                Ok(Record {
                    id: r.get(0)?,
                    princhash: r.get::<_, Option<Vec<u8>>>(1)?.filter(|h| !h.is_empty()),
                })
            })
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| self.err("read the client records", e))?;
        rows.sort();
        Ok(rows)
    }

    /// The clients recorded in the current epoch: those that may reclaim
    /// at the next nfsd start whatever the end of a grace period in
    /// progress drops (sorted).
    pub fn current(&self) -> Result<Vec<Record>> {
        self.rows(self.epochs()?.0)
    }

    /// The clients that may reclaim at the next nfsd start (sorted, unique).
    pub fn reclaimable(&self) -> Result<Vec<Record>> {
        let (cur, rec) = self.epochs()?;
        let mut v = self.rows(cur)?;
        if rec != 0 && rec != cur {
            v.extend(self.rows(rec)?);
        }
        v.sort();
        v.dedup_by(|a, b| a.id == b.id);
        Ok(v)
    }

    fn insert(tx: &rusqlite::Transaction, epoch: i64, recs: &[Record]) -> rusqlite::Result<usize> {
        let mut st = tx.prepare(&format!(
            "INSERT OR IGNORE INTO {} (id, princhash) VALUES (?1, ?2)",
            table(epoch)
        ))?;
        let mut n = 0;
        for r in recs {
            n += st.execute(params![r.id, r.princhash])?;
        }
        Ok(n)
    }

    /// Let `recs` reclaim at the next nfsd start too (a database nfsdcld may
    /// be serving). Returns how many were new.
    pub fn add_reclaimable(&mut self, recs: &[Record]) -> Result<usize> {
        // during a grace period the next start offers the recovery epoch
        self.add(recs, |cur, rec| if rec != 0 { rec } else { cur })
    }

    /// Record `recs` in the current epoch (clients nfsd serves now), so
    /// that they may reclaim at the next start whatever the end of a grace
    /// period in progress drops. Returns how many were new.
    pub fn add_current(&mut self, recs: &[Record]) -> Result<usize> {
        self.add(recs, |cur, _| cur)
    }

    /// Insert `recs` into the epoch `which(current, recovery)` names.
    fn add(&mut self, recs: &[Record], which: fn(i64, i64) -> i64) -> Result<usize> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| format!("{path}: cannot lock: {e}"))?;
        let (cur, rec) =
            read_epochs(&tx).map_err(|e| format!("{path}: cannot read the grace table: {e}"))?;
        let n = Self::insert(&tx, which(cur, rec), recs)
            .map_err(|e| format!("{path}: cannot add client records: {e}"))?;
        tx.commit()
            .map_err(|e| format!("{path}: cannot commit: {e}"))?;
        Ok(n)
    }

    /// Make `recs` exactly the clients that may reclaim at the next start
    /// (a database no nfsdcld serves: a copy).
    pub fn replace_with(&mut self, recs: &[Record]) -> Result<()> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(|e| format!("{path}: cannot lock: {e}"))?;
        let (cur, rec) =
            read_epochs(&tx).map_err(|e| format!("{path}: cannot read the grace table: {e}"))?;
        let run = |tx: &rusqlite::Transaction| -> rusqlite::Result<()> {
            if rec != 0 && rec != cur {
                tx.execute_batch(&format!("DROP TABLE IF EXISTS {}", table(rec)))?;
            }
            tx.execute("UPDATE grace SET recovery = 0", [])?;
            tx.execute_batch(&format!("DELETE FROM {}", table(cur)))?;
            Self::insert(tx, cur, recs)?;
            Ok(())
        };
        run(&tx).map_err(|e| format!("{path}: cannot replace client records: {e}"))?;
        tx.commit()
            .map_err(|e| format!("{path}: cannot commit: {e}"))
    }
}

/// Make the clients recorded in `from` reclaimable in `into` (which nfsdcld
/// may be serving). Returns how many were new.
pub fn merge(from: &Path, into: &Path) -> Result<usize> {
    let src = ClientDb::open(from)?.reclaimable()?;
    ClientDb::open(into)?.add_reclaimable(&src)
}

/// Make `copy` hold exactly the clients recorded in `from` (nfsdcld must
/// not be serving `copy`). Returns how many there are.
pub fn mirror(from: &Path, copy: &Path) -> Result<usize> {
    let src = ClientDb::open(from)?.reclaimable()?;
    ClientDb::open(copy)?.replace_with(&src)?;
    Ok(src.len())
}

/// [`merge`] in a child bounded by `deadline` (at most 15 s): the
/// databases live on shared storage that may hang.
pub fn merge_bounded(deadline: &Deadline, from: &Path, into: &Path) -> OcfResult<()> {
    let what = format!(
        "merging the NFSv4 client records of {} into {}",
        from.display(),
        into.display()
    );
    let n = bounded::run(&deadline.within(Duration::from_secs(15)), &what, || {
        merge(from, into).map_err(|e| format!("{what}: {e}"))
    })?;
    log::info!(
        "{n} NFSv4 client records of {} added to {}",
        from.display(),
        into.display()
    );
    Ok(())
}

/// The NFSv4 clients nfsd serves (confirmed, with a name) that the
/// current epoch of a database does not record.
///
/// Two kinds: an NFSv4.0 client that only reclaimed after a takeover
/// (nfsd records one only at its first OPEN_CONFIRM, and reclaimed opens
/// need no confirmation, so the end of that grace period drops the epoch
/// it was recorded in and the next takeover refuses its reclaims: Linux
/// 6.1 and 6.12, test `uml_nfsv4_0_client_keeps_its_lock_through_two_takeovers`);
/// and any client whose record nfsdcld failed to write (its storage full
/// or read-only: the kernel only logs "Unable to create client record"
/// and does not try again). An NFSv4.1+ client is missing for a moment
/// between its session and its RECLAIM_COMPLETE too; recording it early
/// is harmless.
pub fn missing(clients: &[super::NfsdClient], recorded: &[Record]) -> Vec<Record> {
    let known: std::collections::BTreeSet<&[u8]> =
        recorded.iter().map(|r| r.id.as_slice()).collect();
    let mut v: Vec<Record> = (clients.iter())
        .filter(|c| c.confirmed())
        .filter_map(|c| c.name_bytes())
        .filter(|id| !known.contains(id.as_slice()))
        .map(|id| Record {
            id,
            princhash: None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// What [`record_missing_bounded`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// The clients it recorded (as text).
    pub added: Vec<String>,
    /// The clients missing that it could not record, and why (without the
    /// database's path).
    pub failed: Option<(Vec<String>, String)>,
}

/// Record in the current epoch of the database nfsdcld serves (`serving`)
/// the clients nfsd serves that it lacks ([`missing`]), in a child bounded
/// by `deadline` (at most 10 s). The database is read first, and written
/// only when something is missing: storage that refuses writes fails only
/// then. An error: the database could not be read at all.
pub fn record_missing_bounded(
    deadline: &Deadline,
    serving: &Path,
    clients: &[super::NfsdClient],
) -> OcfResult<Recording> {
    if !clients.iter().any(|c| c.confirmed()) {
        return Ok(Recording::default());
    }
    let what = format!("checking the NFSv4 client records in {}", serving.display());
    let done = bounded::run(&deadline.within(Duration::from_secs(10)), &what, || {
        let recorded = (ClientDb::open_read_only(serving).and_then(|db| db.current()))
            .map_err(|e| format!("{what}: {e}"))?;
        let missing = missing(clients, &recorded);
        if missing.is_empty() {
            return Ok(Recording::default());
        }
        let names: Vec<String> = missing.iter().map(Record::show).collect();
        Ok(
            match ClientDb::open(serving).and_then(|mut db| db.add_current(&missing)) {
                Ok(_) => Recording {
                    added: names,
                    failed: None,
                },
                Err(e) => {
                    // the cause alone: Pacemaker keeps 128 characters of an
                    // exit reason, and the directory is recovery_dir
                    let db = format!("{}: ", serving.join(DB_FILE).display());
                    let cause = e.strip_prefix(&db).map_or(e.clone(), String::from);
                    Recording {
                        added: vec![],
                        failed: Some((names, cause)),
                    }
                }
            },
        )
    })?;
    Ok(done)
}

/// [`mirror`] the serving database to `copy` in a child bounded by
/// `deadline` (at most 10 s). With `only_if_newer`, nothing is written
/// unless the serving database changed since the copy was made.
pub fn mirror_bounded(
    deadline: &Deadline,
    serving: &Path,
    copy: &Path,
    only_if_newer: bool,
) -> OcfResult<()> {
    let mtime = |d: &Path| {
        std::fs::metadata(d.join(DB_FILE))
            .and_then(|m| m.modified())
            .ok()
    };
    let what = format!(
        "copying the NFSv4 client records of {} to {}",
        serving.display(),
        copy.display()
    );
    let copied = bounded::run(&deadline.within(Duration::from_secs(10)), &what, || {
        if only_if_newer {
            if let (Some(s), Some(c)) = (mtime(serving), mtime(copy)) {
                if c > s {
                    return Ok(None);
                }
            }
        }
        let n = mirror(serving, copy).map_err(|e| format!("{what}: {e}"))?;
        Ok(Some(n))
    })?;
    if let Some(n) = copied {
        log::debug!("{n} NFSv4 client records copied to {}", copy.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[Record]) -> Vec<String> {
        v.iter().map(Record::show).collect()
    }

    /// What nfsdcld does at nfsd start (sqlite_grace_start).
    fn grace_start(db: &ClientDb) {
        let (cur, rec) = db.epochs().unwrap();
        if rec == 0 {
            db.conn
                .execute_batch(&format!(
                    "UPDATE grace SET current = {}, recovery = {cur};
                     CREATE TABLE {} (id BLOB PRIMARY KEY, princhash BLOB);",
                    cur + 1,
                    table(cur + 1)
                ))
                .unwrap();
        } else {
            db.conn
                .execute_batch(&format!("DELETE FROM {}", table(cur)))
                .unwrap();
        }
    }

    /// What nfsdcld does when a client creates its record or reclaims.
    fn client_seen(db: &ClientDb, id: &str) {
        let (cur, _) = db.epochs().unwrap();
        db.conn
            .execute(
                &format!("INSERT OR REPLACE INTO {} (id) VALUES (?1)", table(cur)),
                [id.as_bytes()],
            )
            .unwrap();
    }

    /// What nfsdcld does at the end of grace (sqlite_grace_done).
    fn grace_done(db: &ClientDb) {
        let (_, rec) = db.epochs().unwrap();
        db.conn
            .execute_batch(&format!(
                "UPDATE grace SET recovery = 0; DROP TABLE {};",
                table(rec)
            ))
            .unwrap();
    }

    #[test]
    fn new_database_has_nfsdclds_layout() {
        let d = tempfile::tempdir().unwrap();
        let db = ClientDb::open(&d.path().join("cld")).unwrap();
        assert_eq!(db.epochs().unwrap(), (1, 0));
        assert!(db.reclaimable().unwrap().is_empty());
        let t: String = db
            .conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE name LIKE 'rec-%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(t, "rec-0000000000000001");
        // Opening again keeps it.
        drop(db);
        let db = ClientDb::open(&d.path().join("cld")).unwrap();
        assert_eq!(db.epochs().unwrap(), (1, 0));
    }

    #[test]
    fn reclaimable_includes_clients_not_yet_back_during_grace() {
        let d = tempfile::tempdir().unwrap();
        let db = ClientDb::open(d.path()).unwrap();
        client_seen(&db, "a");
        client_seen(&db, "b");
        grace_start(&db);
        client_seen(&db, "a"); // a reclaimed, b not yet
        client_seen(&db, "c"); // new during grace? (a reclaim-less create)
        assert_eq!(ids(&db.reclaimable().unwrap()), ["a", "b", "c"]);
        grace_done(&db);
        assert_eq!(
            ids(&db.reclaimable().unwrap()),
            ["a", "c"],
            "b never came back"
        );
    }

    /// An NFSv4.0 client that only reclaimed is in no epoch but the
    /// recovery one, which the end of grace drops; recorded in the current
    /// one while nfsd serves it, it may reclaim at the next start.
    #[test]
    fn a_client_recorded_current_during_grace_outlives_its_end() {
        let d = tempfile::tempdir().unwrap();
        let mut db = ClientDb::open(d.path()).unwrap();
        client_seen(&db, "v4.0 client");
        grace_start(&db); // a takeover: it reclaims, nfsd records nothing
        let rec = Record {
            id: b"v4.0 client".to_vec(),
            princhash: None,
        };
        assert_eq!(db.add_current(std::slice::from_ref(&rec)).unwrap(), 1);
        assert_eq!(db.add_current(&[rec]).unwrap(), 0, "idempotent");
        grace_done(&db);
        assert_eq!(ids(&db.reclaimable().unwrap()), ["v4.0 client"]);
    }

    fn nfsd_client(name: &str, status: &str, minor: u32) -> super::super::NfsdClient {
        super::super::NfsdClient::parse_info(
            "1",
            &format!("name: {name}\nstatus: {status}\nminor version: {minor}\n"),
        )
    }

    /// Missing: a confirmed client (any minor version) with a readable
    /// name that the current epoch lacks, also when the recovery epoch
    /// has it (a client not yet back in a grace period).
    #[test]
    fn missing_clients_are_the_confirmed_ones_the_current_epoch_lacks() {
        let d = tempfile::tempdir().unwrap();
        let db = ClientDb::open(d.path()).unwrap();
        client_seen(&db, "back");
        client_seen(&db, "not yet back");
        grace_start(&db);
        client_seen(&db, "back");
        let clients = [
            nfsd_client("\"back\"", "confirmed", 2),
            nfsd_client("\"not yet back\"", "confirmed", 1),
            nfsd_client("\"v4.0 reclaimer\"", "confirmed", 0),
            nfsd_client("\"v4.0 reclaimer\"", "courtesy", 0),
            nfsd_client("\"unrecorded\\x00\"", "courtesy", 2),
            nfsd_client("\"half-way\"", "unconfirmed", 2),
            nfsd_client("not quoted", "confirmed", 2),
        ];
        let ro = ClientDb::open_read_only(d.path()).unwrap();
        assert_eq!(
            ids(&missing(&clients, &ro.current().unwrap())),
            ["not yet back", "unrecorded\0", "v4.0 reclaimer"]
        );
        assert_eq!(missing(&clients[..1], &ro.current().unwrap()), []);
        // what the monitor does with them: recorded once, then nothing
        let deadline = Deadline::from_timeout(Duration::from_secs(20));
        let r = record_missing_bounded(&deadline, d.path(), &clients).unwrap();
        assert_eq!(r.added, ["not yet back", "unrecorded\0", "v4.0 reclaimer"]);
        assert_eq!(r.failed, None);
        let again = record_missing_bounded(&deadline, d.path(), &clients).unwrap();
        assert_eq!(again, Recording::default());
        grace_done(&db);
        assert_eq!(db.current().unwrap().len(), 4);
        // no database to read: an error, not "nothing missing"
        let none = d.path().join("none");
        std::fs::create_dir(&none).unwrap();
        let e = record_missing_bounded(&deadline, &none, &clients).unwrap_err();
        assert!(e.reason.contains("no such database"), "{e}");
        assert!(!none.join(DB_FILE).exists(), "created by a read");
        assert_eq!(
            record_missing_bounded(&deadline, &none, &clients[5..6]).unwrap(),
            Recording::default(),
            "no confirmed client: nothing read"
        );
    }

    #[test]
    fn merged_records_become_the_reclaim_set_at_the_next_start() {
        let d = tempfile::tempdir().unwrap();
        let (one, two) = (d.path().join("one"), d.path().join("two"));
        let db1 = ClientDb::open(&one).unwrap();
        client_seen(&db1, "client-of-one");
        let db2 = ClientDb::open(&two).unwrap();
        client_seen(&db2, "client-of-two");
        assert_eq!(merge(&one, &two).unwrap(), 1);
        assert_eq!(merge(&one, &two).unwrap(), 0, "idempotent");
        grace_start(&db2);
        let (_, rec) = db2.epochs().unwrap();
        assert_eq!(
            ids(&db2.rows(rec).unwrap()),
            ["client-of-one", "client-of-two"]
        );

        // Merged while two is in grace: into its recovery table, which a
        // restart in grace keeps as the reclaim set.
        let db3 = ClientDb::open(&d.path().join("three")).unwrap();
        client_seen(&db3, "client-of-three");
        merge(&d.path().join("three"), &two).unwrap();
        grace_start(&db2); // nfsd restarted during grace
        let (_, rec) = db2.epochs().unwrap();
        assert_eq!(
            ids(&db2.rows(rec).unwrap()),
            ["client-of-one", "client-of-three", "client-of-two"]
        );
    }

    #[test]
    fn mirror_makes_an_exact_copy() {
        let d = tempfile::tempdir().unwrap();
        let (prim, copy) = (d.path().join("p"), d.path().join("c"));
        let p = ClientDb::open(&prim).unwrap();
        client_seen(&p, "x");
        client_seen(&p, "y");
        grace_start(&p);
        client_seen(&p, "x");
        let c = ClientDb::open(&copy).unwrap();
        client_seen(&c, "stale");
        grace_start(&c);
        assert_eq!(mirror(&prim, &copy).unwrap(), 2);
        assert_eq!(c.epochs().unwrap().1, 0, "the copy is not in grace");
        assert_eq!(ids(&c.reclaimable().unwrap()), ["x", "y"]);
        // And what it holds is what a start there would offer.
        grace_start(&c);
        let (_, rec) = c.epochs().unwrap();
        assert_eq!(ids(&c.rows(rec).unwrap()), ["x", "y"]);
    }

    #[test]
    fn princhash_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        let mut db = ClientDb::open(&a).unwrap();
        let r = Record {
            id: b"krb client".to_vec(),
            princhash: Some(vec![7u8; 32]),
        };
        db.add_reclaimable(std::slice::from_ref(&r)).unwrap();
        mirror(&a, &b).unwrap();
        assert_eq!(ClientDb::open(&b).unwrap().reclaimable().unwrap(), [r]);
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let c = Connection::open(d.path().join(DB_FILE)).unwrap();
        c.execute_batch(
            "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);
             INSERT INTO parameters VALUES ('version', '3');",
        )
        .unwrap();
        let e = ClientDb::open(d.path()).err().unwrap();
        assert!(e.contains("schema version 3"), "{e}");
    }

    #[test]
    fn missing_parent_is_an_error() {
        let e = ClientDb::open(Path::new("/nonexistent-hanfs/x/cld"))
            .err()
            .unwrap();
        assert!(e.contains("cannot create"), "{e}");
    }

    /// A damaged database in recovery_dir (empty, torn, garbage, a sparse
    /// huge file, a link elsewhere) is an error naming it, or (empty) a new
    /// database; a link is not followed, and its target is left as it was.
    #[test]
    fn damaged_databases_are_errors_and_links_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good");
        ClientDb::open(&good)
            .unwrap()
            .add_reclaimable(&[Record {
                id: b"c1".to_vec(),
                princhash: None,
            }])
            .unwrap();
        let whole = std::fs::read(good.join(DB_FILE)).unwrap();
        let damaged = d.path().join("damaged");
        std::fs::create_dir(&damaged).unwrap();
        let db = damaged.join(DB_FILE);
        for (what, bytes) in [
            ("torn", whole[..whole.len() / 2].to_vec()),
            (
                "garbage",
                (0..5000u32).map(|i| (i * 7 % 251) as u8).collect(),
            ),
        ] {
            std::fs::write(&db, &bytes).unwrap();
            let e = ClientDb::open(&damaged).and_then(|c| c.reclaimable()).err();
            let e = e.unwrap_or_else(|| panic!("{what}: read as a database"));
            assert!(e.contains(&db.display().to_string()), "{what}: {e}");
        }
        std::fs::File::create(&db)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        assert!(ClientDb::open(&damaged).is_err(), "a sparse file of zeros");
        std::fs::write(&db, b"").unwrap();
        assert_eq!(ClientDb::open(&damaged).unwrap().reclaimable().unwrap(), []);
        std::fs::remove_file(&db).unwrap();
        std::os::unix::fs::symlink(good.join(DB_FILE), &db).unwrap();
        let e = ClientDb::open(&damaged).err().unwrap();
        assert!(e.contains("is a symbolic link (not followed)"), "{e}");
        std::fs::remove_file(&db).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &db).unwrap();
        assert!(ClientDb::open(&damaged).is_err());
        assert!(
            !d.path().join("elsewhere").exists(),
            "created through the link"
        );
        assert_eq!(
            std::fs::read(good.join(DB_FILE)).unwrap(),
            whole,
            "target changed"
        );
        // A recovery_dir reached through a link to a directory is fine.
        let via = d.path().join("via");
        std::os::unix::fs::symlink(&good, &via).unwrap();
        assert_eq!(
            ids(&ClientDb::open(&via).unwrap().reclaimable().unwrap()),
            ["c1"]
        );
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any bytes as the database: opened and read, or an error; never
        /// a panic.
        #[test]
        fn any_database_file_is_read_or_an_error(
            bytes in proptest::collection::vec(any::<u8>(), 0..3000),
            sqlite_header in any::<bool>(),
        ) {
            let d = tempfile::tempdir().unwrap();
            let mut data = if sqlite_header { b"SQLite format 3\0".to_vec() } else { Vec::new() };
            data.extend(bytes);
            std::fs::write(d.path().join(DB_FILE), &data).unwrap();
            if let Ok(db) = ClientDb::open_read_only(d.path()) {
                let _ = db.current();
            }
            if let Ok(db) = ClientDb::open(d.path()) {
                let _ = db.reclaimable();
            }
        }
    }
}
