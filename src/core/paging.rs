//! One list query for every dialect: offset pages (Mender's `page`/`per_page`, Cybus's
//! `pageNumber`/`rowsPerPage`) and cursor pages (Pelion's `after`/`limit`/`order`), over the
//! same order — creation time, then id — so that a row never shows on two pages.
//!
//! A core list takes a `Page` and answers a `Listed`: the items, whether more follow
//! (`has_more`, found by reading one row past the page) and the total when it was asked for.

use crate::error::Result;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// Skip `offset` rows, return up to `limit`.
    Offset { offset: u64, limit: u64 },
    /// The rows after the row with id `after` (from the start when None) in the order,
    /// oldest first unless `descending`; up to `limit`.
    After {
        after: Option<String>,
        limit: u64,
        descending: bool,
    },
}

/// What a list asks for: a page, and whether to count every match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub page: Page,
    pub with_total: bool,
}

impl Query {
    pub fn offset(offset: u64, limit: u64) -> Query {
        Query {
            page: Page::Offset { offset, limit },
            with_total: true,
        }
    }

    pub fn limit(&self) -> u64 {
        match self.page {
            Page::Offset { limit, .. } | Page::After { limit, .. } => limit,
        }
    }

    /// For a table whose rows have `created_ts` and `id`: an extra WHERE condition (always
    /// present; `1` when there is none) with its parameters, and the ORDER BY … LIMIT … tail,
    /// which reads one row more than the page so that `finish` can tell whether more follow.
    /// The cursor row is looked up first (`table` holds it), so that the condition is a plain
    /// row-value range an index on `created_ts` serves; a cursor naming no row (deleted since)
    /// starts from the beginning rather than failing.
    pub fn sql(&self, conn: &Connection, table: &str) -> Result<(String, Vec<SqlValue>, String)> {
        let limit = i64::try_from(self.limit().saturating_add(1)).unwrap_or(i64::MAX);
        match &self.page {
            Page::Offset { offset, .. } => Ok((
                "1".into(),
                Vec::new(),
                format!(
                    "ORDER BY created_ts, id LIMIT {limit} OFFSET {}",
                    i64::try_from(*offset).unwrap_or(i64::MAX)
                ),
            )),
            Page::After {
                after, descending, ..
            } => {
                let (cmp, dir) = if *descending {
                    ("<", "DESC")
                } else {
                    (">", "ASC")
                };
                let tail = format!("ORDER BY created_ts {dir}, id {dir} LIMIT {limit}");
                let cursor: Option<(i64, String)> = match after {
                    None => None,
                    Some(id) => conn
                        .prepare_cached(&format!(
                            "SELECT created_ts, id FROM {table} WHERE id = ?1"
                        ))?
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?,
                };
                Ok(match cursor {
                    None => ("1".into(), Vec::new(), tail),
                    Some((ts, id)) => (
                        format!("(created_ts, id) {cmp} (?, ?)"),
                        vec![SqlValue::Integer(ts), SqlValue::Text(id)],
                        tail,
                    ),
                })
            }
        }
    }

    /// Runs the page on `table`: `select` the columns, `cond`/`args` the caller's filter; the
    /// total (when asked for) counts the filter's matches.
    pub fn run<T>(
        &self,
        conn: &Connection,
        table: &str,
        select: &str,
        cond: &str,
        mut args: Vec<SqlValue>,
        row: impl FnMut(&Row) -> rusqlite::Result<T>,
    ) -> Result<Listed<T>> {
        let total = if self.with_total {
            let n: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE {cond}"),
                params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            Some(u64::try_from(n).unwrap_or(0))
        } else {
            None
        };
        let (page_cond, page_args, tail) = self.sql(conn, table)?;
        args.extend(page_args);
        let mut stmt = conn.prepare(&format!(
            "SELECT {select} FROM {table} WHERE {cond} AND {page_cond} {tail}"
        ))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(self.finish(rows, total))
    }

    /// The page from the rows `sql` read (one past the page, if there are more).
    pub fn finish<T>(&self, mut rows: Vec<T>, total: Option<u64>) -> Listed<T> {
        let limit = usize::try_from(self.limit()).unwrap_or(usize::MAX);
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        Listed {
            items: rows,
            has_more,
            total,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub has_more: bool,
    /// Every match, when the query asked for it.
    pub total: Option<u64>,
}

/// A count or offset as SQLite takes it (`i64`), saturating: "no limit" is `u64::MAX`.
pub fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{params_from_iter, Connection};

    fn table() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, created_ts INTEGER NOT NULL)")
            .unwrap();
        // Two rows share a timestamp: the id breaks the tie.
        for (id, ts) in [("a", 1), ("b", 2), ("c", 2), ("d", 3), ("e", 4)] {
            c.execute("INSERT INTO t VALUES (?1, ?2)", rusqlite::params![id, ts])
                .unwrap();
        }
        c
    }

    fn run(c: &Connection, q: &Query) -> Listed<String> {
        let (cond, args, tail) = q.sql(c, "t").unwrap();
        let mut stmt = c
            .prepare(&format!("SELECT id FROM t WHERE {cond} {tail}"))
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map(params_from_iter(args.iter()), |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        q.finish(rows, None)
    }

    #[test]
    fn cursor_pages_walk_every_row_once_both_ways() {
        let c = table();
        for (descending, want) in [(false, "abcde"), (true, "edcba")] {
            let mut after = None;
            let mut seen = String::new();
            loop {
                let q = Query {
                    page: Page::After {
                        after: after.clone(),
                        limit: 2,
                        descending,
                    },
                    with_total: false,
                };
                let page = run(&c, &q);
                seen.extend(page.items.iter().map(String::as_str));
                if !page.has_more {
                    break;
                }
                after = page.items.last().cloned();
            }
            assert_eq!(seen, want);
        }
        // An unknown cursor starts from the beginning.
        let q = Query {
            page: Page::After {
                after: Some("zz".into()),
                limit: 10,
                descending: false,
            },
            with_total: false,
        };
        assert_eq!(run(&c, &q).items.len(), 5);
    }

    #[test]
    fn offset_pages() {
        let c = table();
        let first = run(&c, &Query::offset(0, 2));
        assert_eq!((first.items.join(""), first.has_more), ("ab".into(), true));
        let last = run(&c, &Query::offset(4, 2));
        assert_eq!((last.items.join(""), last.has_more), ("e".into(), false));
    }
}
