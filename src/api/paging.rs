//! Paging helpers for the three dialects.
//! - Mender: `page`/`per_page` (default 20, max 500) with `Link` and `X-Total-Count` headers.
//! - Pelion: cursor `after`/`limit` (2–1000, default 50)/`order`/`include=total_count` and a
//!   list envelope.
//! - Cybus: `pageNumber` (from 1) / `rowsPerPage` (max 100).

use crate::core::paging;
use crate::error::{Error, Result};
use axum::http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use std::collections::HashMap;

fn parse_num(q: &HashMap<String, String>, key: &str) -> Result<Option<u64>> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Error::invalid(key, format!("{key} must be a positive whole number"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MenderPage {
    pub page: u64,
    pub per_page: u64,
}

impl MenderPage {
    pub const DEFAULT_PER_PAGE: u64 = 20;
    pub const MAX_PER_PAGE: u64 = 500;

    pub fn from_query(q: &HashMap<String, String>) -> Result<MenderPage> {
        let page = parse_num(q, "page")?.unwrap_or(1);
        let per_page = parse_num(q, "per_page")?.unwrap_or(Self::DEFAULT_PER_PAGE);
        if page == 0 {
            return Err(Error::invalid("page", "page must be 1 or more"));
        }
        if per_page == 0 || per_page > Self::MAX_PER_PAGE {
            return Err(Error::invalid(
                "per_page",
                format!("per_page must be between 1 and {}", Self::MAX_PER_PAGE),
            ));
        }
        Ok(MenderPage { page, per_page })
    }

    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// The core list query for this page (with the total, for `X-Total-Count`).
    pub fn query(&self) -> paging::Query {
        paging::Query::offset(self.offset(), self.per_page)
    }

    /// `Link` (first, prev, next; other query parameters kept) and `X-Total-Count`.
    pub fn headers(&self, path: &str, query: &HashMap<String, String>, total: u64) -> HeaderMap {
        let mut rest: Vec<(&String, &String)> = query
            .iter()
            .filter(|(k, _)| *k != "page" && *k != "per_page")
            .collect();
        rest.sort();
        let link = |page: u64, rel: &str| {
            let mut q: Vec<String> = rest
                .iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect();
            q.push(format!("page={page}"));
            q.push(format!("per_page={}", self.per_page));
            format!("<{path}?{}>; rel=\"{rel}\"", q.join("&"))
        };
        let mut links = vec![link(1, "first")];
        if self.page > 1 {
            links.push(link(self.page - 1, "prev"));
        }
        if self.page.saturating_mul(self.per_page) < total {
            links.push(link(self.page + 1, "next"));
        }
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            h.insert("link", v);
        }
        h.insert("x-total-count", HeaderValue::from(total));
        h
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PelionPage {
    pub after: Option<String>,
    pub limit: u64,
    pub order: Order,
    pub include_total: bool,
}

impl PelionPage {
    pub fn from_query(q: &HashMap<String, String>, default_limit: u64) -> Result<PelionPage> {
        let limit = parse_num(q, "limit")?.unwrap_or(default_limit);
        if !(2..=1000).contains(&limit) {
            return Err(Error::invalid("limit", "limit must be between 2 and 1000"));
        }
        let order = match q.get("order").map(|s| s.to_ascii_uppercase()) {
            None => Order::Asc,
            Some(o) if o == "ASC" => Order::Asc,
            Some(o) if o == "DESC" => Order::Desc,
            Some(_) => return Err(Error::invalid("order", "order must be ASC or DESC")),
        };
        let include_total = q
            .get("include")
            .map(|s| s.split(',').any(|p| p.trim() == "total_count"))
            .unwrap_or(false);
        Ok(PelionPage {
            after: q.get("after").filter(|s| !s.is_empty()).cloned(),
            limit,
            order,
            include_total,
        })
    }

    /// The core list query: a cursor page (the `after` id in either UUID form).
    pub fn query(&self) -> paging::Query {
        paging::Query {
            page: paging::Page::After {
                after: self
                    .after
                    .as_deref()
                    .map(|a| crate::core::normalize_id(a).unwrap_or_else(|| a.to_string())),
                limit: self.limit,
                descending: self.order == Order::Desc,
            },
            // Counting every match costs a pass over them: only when asked for.
            with_total: self.include_total,
        }
    }

    /// The envelope of a core list, each item rendered by `render`.
    pub fn listed<T>(&self, l: &paging::Listed<T>, render: impl Fn(&T) -> Value) -> Value {
        let data = l.items.iter().map(render).collect();
        self.envelope(data, l.has_more, l.total.unwrap_or(0))
    }

    /// The list envelope. `data` holds at most `limit` items; `has_more` says whether the
    /// query found more.
    /// `total_count` only with `include=total_count`.
    pub fn envelope(&self, data: Vec<Value>, has_more: bool, total: u64) -> Value {
        let mut v = json!({
            "object": "list",
            "data": data,
            "limit": self.limit,
            "after": self.after,
            "order": if self.order == Order::Asc { "ASC" } else { "DESC" },
            "has_more": has_more,
        });
        if self.include_total {
            v["total_count"] = json!(total);
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CybusPage {
    pub page_number: u64,
    pub rows_per_page: u64,
}

impl CybusPage {
    pub const MAX_ROWS: u64 = 100;

    pub fn from_query(q: &HashMap<String, String>) -> Result<CybusPage> {
        let page_number = parse_num(q, "pageNumber")?.unwrap_or(1);
        let rows_per_page = parse_num(q, "rowsPerPage")?.unwrap_or(25);
        if page_number == 0 {
            return Err(Error::invalid("pageNumber", "pageNumber starts at 1"));
        }
        if rows_per_page == 0 || rows_per_page > Self::MAX_ROWS {
            return Err(Error::invalid(
                "rowsPerPage",
                format!("rowsPerPage must be between 1 and {}", Self::MAX_ROWS),
            ));
        }
        Ok(CybusPage {
            page_number,
            rows_per_page,
        })
    }

    pub fn offset(&self) -> u64 {
        (self.page_number - 1).saturating_mul(self.rows_per_page)
    }

    pub fn query(&self) -> paging::Query {
        paging::Query::offset(self.offset(), self.rows_per_page)
    }

    pub fn envelope(&self, data: Vec<Value>, total: u64) -> Value {
        json!({
            "data": data,
            "pagination": {
                "pageNumber": self.page_number,
                "rowsPerPage": self.rows_per_page,
                "totalCount": total,
                "totalPages": total.div_ceil(self.rows_per_page),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn mender_defaults_and_limits() {
        assert_eq!(
            MenderPage::from_query(&q(&[])).unwrap(),
            MenderPage {
                page: 1,
                per_page: 20
            }
        );
        assert!(MenderPage::from_query(&q(&[("per_page", "501")])).is_err());
        assert!(MenderPage::from_query(&q(&[("page", "0")])).is_err());
        assert!(MenderPage::from_query(&q(&[("page", "x")])).is_err());
    }

    #[test]
    fn mender_links() {
        let p = MenderPage {
            page: 2,
            per_page: 10,
        };
        let h = p.headers("/x", &q(&[("status", "pending")]), 35);
        let link = h["link"].to_str().unwrap();
        assert!(link.contains("</x?status=pending&page=1&per_page=10>; rel=\"first\""));
        assert!(link.contains("page=1&per_page=10>; rel=\"prev\""));
        assert!(link.contains("page=3&per_page=10>; rel=\"next\""));
        assert_eq!(h["x-total-count"], "35");
        let last = MenderPage {
            page: 4,
            per_page: 10,
        };
        let h = last.headers("/x", &q(&[]), 35);
        assert!(!h["link"].to_str().unwrap().contains("next"));
    }

    #[test]
    fn pelion() {
        let p = PelionPage::from_query(&q(&[("include", "total_count"), ("order", "desc")]), 50)
            .unwrap();
        assert!(p.include_total);
        assert_eq!(p.order, Order::Desc);
        assert!(PelionPage::from_query(&q(&[("limit", "1")]), 50).is_err());
        let e = p.envelope(vec![json!(1)], false, 1);
        assert_eq!(e["object"], "list");
        assert_eq!(e["total_count"], 1);
    }

    #[test]
    fn cybus() {
        let p = CybusPage::from_query(&q(&[("pageNumber", "2"), ("rowsPerPage", "10")])).unwrap();
        assert_eq!(p.offset(), 10);
        assert!(CybusPage::from_query(&q(&[("rowsPerPage", "101")])).is_err());
        assert_eq!(p.envelope(vec![], 21)["pagination"]["totalPages"], 3);
    }
}
