//! The layer map of `docs/ARCHITECTURE.md`, enforced: every `crate::…` path in a layer's files
//! names a layer that layer may use. An arrow that runs back up fails with its file and line.

use std::path::{Path, PathBuf};

/// Who may use whom: the arrows of the map (a layer always uses itself).
const MAY_USE: [(&str, &[&str]); 7] = [
    ("domain", &[]),
    ("db", &["domain"]),
    ("engine", &["db", "domain"]),
    ("api", &["engine", "db", "domain"]),
    ("ui", &["api", "domain"]),
    ("server", &["ui", "api", "engine", "db", "domain"]),
    ("cli", &["server", "engine", "db", "domain"]),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where `code` names a top-level module with `crate::name` or `crate::{name::…, …}`: each
/// name with its byte offset.
fn named_modules(code: &str) -> Vec<(usize, String)> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at + "crate::".len();
        from = start;
        if code[start..].starts_with('{') {
            // the first name of each item of a use group, which may span lines
            let (mut depth, mut name_start, mut taken) = (0, None::<usize>, false);
            for (i, c) in code[start + 1..].char_indices() {
                let at = start + 1 + i;
                if depth == 0 && !taken && ident(c) {
                    name_start.get_or_insert(at);
                    continue;
                }
                if let Some(s) = name_start.take() {
                    found.push((s, code[s..at].to_owned()));
                    taken = true;
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => taken = false,
                    _ => {}
                }
            }
        } else {
            let name: String = code[start..].chars().take_while(|c| ident(*c)).collect();
            found.push((start, name));
        }
    }
    found
}

/// Crates the domain does without: it is pure rules, compiled for the browser too. `utoipa`
/// is one of them but for the one form [`DOMAIN_MAY_DERIVE`]: a type the projects API answers
/// with may describe its own shape; paths, parameters and request-only types live in
/// `server::projects::openapi`.
const NOT_IN_DOMAIN: [&str; 5] = ["axum::", "sqlx::", "leptos", "tokio::", "utoipa"];

/// What a domain line may say of `utoipa`: a derive, for the server build only.
const DOMAIN_MAY_DERIVE: [&str; 1] = [r#"#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]"#];

#[test]
fn no_layer_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers: Vec<&str> = MAY_USE.iter().map(|(layer, _)| *layer).collect();
    let mut wrong = Vec::new();
    for (layer, allowed) in MAY_USE {
        let mut paths = vec![src.join(format!("{layer}.rs"))];
        files(&src.join(layer), &mut paths);
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            // comments out, lines kept
            let code: String =
                text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
            if layer == "domain" {
                for (n, line) in code.lines().enumerate() {
                    let allowed = DOMAIN_MAY_DERIVE.iter().any(|form| line.trim_start().starts_with(form));
                    for name in NOT_IN_DOMAIN.iter().filter(|name| !allowed && line.contains(*name)) {
                        let file = path.strip_prefix(&src).unwrap().display();
                        wrong.push(format!(
                            "src/{file}:{}: domain uses {}",
                            n + 1,
                            name.trim_end_matches("::")
                        ));
                    }
                }
            }
            for (at, target) in named_modules(&code) {
                if target != layer && layers.contains(&target.as_str()) && !allowed.contains(&target.as_str())
                {
                    let line = code[..at].matches('\n').count() + 1;
                    let file = path.strip_prefix(&src).unwrap().display();
                    wrong.push(format!("src/{file}:{line}: {layer} uses {target}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "arrows that run back up (docs/ARCHITECTURE.md):\n{}", wrong.join("\n"));
}
