//! The route registry. Every route is registered through `Routes` with the domain resource it
//! touches (`devices/{id}`, `users/{id}/sessions`) and, per method, whether it reads or writes.
//! The one permission check decides on that resource, whichever URL reached it, so a dialect's
//! paths never leak into roles. `fleetbox routes` lists the table, and the authorization test
//! walks it: a route added later cannot be forgotten by that test.

use super::route_table::{Entry, Op};
use super::state::AppState;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;

/// The handlers of one path, with the methods they answer (axum's `MethodRouter` cannot list
/// them, so they are recorded as they are added).
pub struct Methods {
    router: MethodRouter<AppState>,
    ops: Vec<(Method, Op)>,
}

macro_rules! method_fns {
    ($($name:ident => $method:ident),*) => {
        $(
            pub fn $name<H, T>(handler: H) -> Methods
            where
                H: Handler<T, AppState>,
                T: 'static,
            {
                Methods::default().on(Method::$method, handler)
            }
        )*
        impl Methods {
            $(
                pub fn $name<H, T>(self, handler: H) -> Methods
                where
                    H: Handler<T, AppState>,
                    T: 'static,
                {
                    self.on(Method::$method, handler)
                }
            )*
        }
    };
}

method_fns!(get => GET, post => POST, put => PUT, patch => PATCH, delete => DELETE);

impl Default for Methods {
    fn default() -> Self {
        Methods {
            router: MethodRouter::new(),
            ops: Vec::new(),
        }
    }
}

impl Methods {
    pub fn on<H, T>(mut self, method: Method, handler: H) -> Methods
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.router = self.router.on(filter, handler);
        self.ops.push((method.clone(), Op::of(&method)));
        self
    }

    /// The method added last only reads, though it is not a safe method (a search whose query
    /// travels in a `POST` body).
    pub fn reads(mut self) -> Methods {
        if let Some(last) = self.ops.last_mut() {
            last.1 = Op::Read;
        }
        self
    }

    /// Wraps the handlers (a body-size layer, say); the recorded methods stay as they are.
    pub fn map(mut self, f: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>) -> Self {
        self.router = f(self.router);
        self
    }
}

#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    entries: Vec<Entry>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Registers `methods` at `path`, touching `resource`: a `/`-separated domain name whose
    /// `{param}` levels are filled from the request path.
    pub fn route(mut self, path: &str, resource: &str, methods: Methods) -> Routes {
        check_template(path, resource);
        self.router = self.router.route(path, methods.router);
        for (method, op) in methods.ops {
            self.entries.push(Entry {
                method,
                path: path.to_string(),
                resource: resource.to_string(),
                op,
            });
        }
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.entries.extend(other.entries);
        self
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Every `{param}` of a resource must be a parameter of its path: a typo would otherwise grant
/// on a literal `{id}` level. Checked when the routes are built, so a wrong one fails every test.
fn check_template(path: &str, resource: &str) {
    let params: Vec<&str> = path
        .split('/')
        .filter(|s| s.starts_with('{') && s.ends_with('}'))
        .collect();
    for level in resource.split('/') {
        assert!(
            !level.is_empty() && level != "+" && level != "#",
            "resource `{resource}` of `{path}`: empty or wildcard level"
        );
        if level.starts_with('{') {
            assert!(
                params.contains(&level),
                "resource `{resource}` names {level}, which `{path}` does not have"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::route_table::{Guard, RouteTable};

    #[test]
    #[should_panic(expected = "does not have")]
    fn a_resource_names_only_path_parameters() {
        check_template("/a/{id}", "devices/{did}");
    }

    async fn nothing() {}

    #[test]
    fn the_table_finds_routes_by_template_and_by_uri() {
        let r = Routes::new()
            .route("/s/{id}", "things/{id}", get(nothing).post(nothing).reads())
            .route("/s/{id}/x", "things/{id}/x", delete(nothing));
        let t = RouteTable::new(&[(Guard::Permission, r.entries())]);
        assert_eq!(t.rows().len(), 3);
        let post = t.get("/s/{id}", &Method::POST).unwrap();
        assert_eq!(post.entry.op, Op::Read);
        assert_eq!(t.get("/s/{id}", &Method::HEAD).unwrap().entry.op, Op::Read);
        let del = t.find(&Method::DELETE, "/s/abc/x").unwrap();
        assert_eq!(del.entry.resource, "things/{id}/x");
        assert_eq!(del.entry.op, Op::Write);
        assert!(t.find(&Method::GET, "/s/abc/x").is_none());
        assert!(t.find(&Method::GET, "/nope").is_none());
    }
}
