//! The regular expressions of the `fleetbox_regexp` SQL function (inventory `$regex`
//! filters), compiled here so that the database layer needs nothing from the domain above it.

/// The `$regex` semantics: anchored at the start; `/re/flags` gives flags (i, m, s, x);
/// an invalid expression matches nothing.
pub fn compile(pattern: &str) -> Option<regex::Regex> {
    let (body, flags) = match pattern.strip_prefix('/').and_then(|p| p.rsplit_once('/')) {
        Some((b, f)) if f.chars().all(|c| "imsx".contains(c)) => (b.to_string(), f.to_string()),
        _ => (pattern.to_string(), String::new()),
    };
    let prefix = if flags.is_empty() {
        String::new()
    } else {
        format!("(?{flags})")
    };
    regex::RegexBuilder::new(&format!("{prefix}^(?:{body})"))
        .size_limit(1 << 20)
        .build()
        .ok()
}
