//! The shape of the source that the README's "Architecture" section promises, checked on
//! the source itself (parsed with `syn`), so that a change which breaks it fails here
//! rather than in a reviewer's reading:
//!
//! - the layers: `wire` → `tcp` → `table` → `engine` ← `io`, the control path on top, and
//!   no module importing one above it (in particular `ops` never imports `app`, and
//!   nothing in the crate imports `testkit`);
//! - `unsafe` only in `io`: every other top-level module forbids it, so the compiler
//!   refuses it there;
//! - no function of the crate, outside tests, longer than 100 lines.
//!
//! Only `src/` is read, and nothing is run.

use proc_macro2::{TokenStream, TokenTree};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// The longest a function of `src/` outside tests may be, from `fn` to its closing brace.
const MAX_FN_LINES: usize = 100;

/// The top-level modules of `src/lib.rs`, each with the modules it may import through
/// `crate::` (or `super::` up to the crate root). A module not listed fails the test: a
/// new module must take its place in the layers here and in the README.
const LAYERS: &[(&str, &[&str])] = &[
    // Leaves: used by every layer, importing nothing.
    ("counters", &[]),
    ("forms", &[]),
    ("rng", &[]),
    // The protocol path.
    ("wire", &["counters"]),
    ("tcp", &["wire", "counters", "forms", "rng"]),
    ("table", &["wire", "tcp", "counters"]),
    ("io", &["forms", "wire"]),
    ("engine", &["wire", "tcp", "table", "io", "counters"]),
    // The control path.
    ("config", &["forms", "io", "tcp"]),
    ("ops", &["counters", "engine", "io"]),
    ("lab", &["config", "forms", "io", "rng", "tcp", "wire"]),
    (
        "gen",
        &[
            "config", "counters", "engine", "forms", "io", "lab", "ops", "rng", "table", "tcp",
            "wire",
        ],
    ),
    (
        "app",
        &[
            "config", "counters", "engine", "forms", "io", "lab", "ops", "table", "tcp", "wire",
        ],
    ),
    // The in-memory test kit, on top of the protocol path.
    (
        "testkit",
        &[
            "counters", "engine", "forms", "io", "rng", "table", "tcp", "wire",
        ],
    ),
];

/// The one module allowed to contain `unsafe`.
const UNSAFE_MODULE: &str = "io";

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A file of the library (not `main.rs`, not the `bpf/` C sources) with its module path
/// from the crate root: `src/engine/stack.rs` → `["engine", "stack"]`.
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    ast: syn::File,
}

fn library_files() -> Vec<SourceFile> {
    let src = src_dir();
    rust_files(&src)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
        .map(|path| {
            let rel = path.strip_prefix(&src).expect("below src/");
            let mut module: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let text = fs::read_to_string(&path).expect("source is UTF-8");
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{}: does not parse: {e}", path.display()));
            SourceFile { path, module, ast }
        })
        .collect()
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        (a.path().is_ident("cfg") || a.path().is_ident("test"))
            && (a.path().is_ident("test")
                || a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
    })
}

/// Collects the top-level modules a file names through `crate::…` or `super::…` paths, in
/// `use` items, in paths anywhere, and in macro invocations' tokens.
struct Imports {
    /// The module path of the item being visited (grows inside inline `mod`s).
    module: Vec<String>,
    found: BTreeSet<String>,
}

impl Imports {
    /// The top-level module a path starting with `first` and going on with `rest` names.
    fn note(&mut self, segments: &[String]) {
        let mut depth = self.module.len();
        let mut i = 0;
        if segments.first().is_some_and(|s| s == "crate") {
            depth = 0;
            i = 1;
        } else {
            if segments.first().is_none_or(|s| s != "super") {
                return;
            }
            while segments.get(i).is_some_and(|s| s == "super") {
                depth = depth.saturating_sub(1);
                i += 1;
            }
        }
        let top = if depth == 0 {
            segments.get(i)
        } else {
            self.module.first()
        };
        if let Some(top) = top {
            self.found.insert(top.clone());
        }
    }

    fn note_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tree) in trees.iter().enumerate() {
            match tree {
                TokenTree::Group(g) => self.note_tokens(g.stream()),
                TokenTree::Ident(id) if id == "crate" => {
                    if let Some(TokenTree::Ident(next)) = trees.get(i + 3) {
                        self.note(&["crate".to_string(), next.to_string()]);
                    }
                }
                _ => {}
            }
        }
    }

    fn note_use(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.note_use(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.note_with(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.note_with(prefix, &r.ident),
            syn::UseTree::Glob(_) => self.note(prefix),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.note_use(prefix, t)),
        }
    }

    fn note_with(&mut self, prefix: &[String], last: &syn::Ident) {
        let mut segments = prefix.to_vec();
        segments.push(last.to_string());
        self.note(&segments);
    }
}

impl<'ast> Visit<'ast> for Imports {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.note_use(&mut Vec::new(), &u.tree);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.note(&segments);
        syn::visit::visit_path(self, p);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.note_tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// README "Architecture": nothing lower imports anything higher. Each top-level module
/// imports only the modules `LAYERS` allows it.
#[test]
fn layers_import_only_downwards() {
    let mut wrong = Vec::new();
    let mut tops = BTreeSet::new();
    for file in library_files() {
        let Some(top) = file.module.first().cloned() else {
            continue; // lib.rs declares the modules
        };
        tops.insert(top.clone());
        let Some((_, allowed)) = LAYERS.iter().find(|(m, _)| *m == top) else {
            wrong.push(format!(
                "{}: module `{top}` has no place in LAYERS (tests/architecture.rs)",
                file.path.display()
            ));
            continue;
        };
        let mut imports = Imports {
            module: file.module.clone(),
            found: BTreeSet::new(),
        };
        imports.visit_file(&file.ast);
        for m in imports.found.iter().filter(|m| **m != top) {
            if !allowed.contains(&m.as_str()) {
                wrong.push(format!("{}: `{top}` imports `{m}`", file.path.display()));
            }
        }
    }
    for expected in [
        "wire", "tcp", "table", "engine", "io", "app", "ops", "testkit",
    ] {
        assert!(
            tops.contains(expected),
            "no module `{expected}` found below src/"
        );
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// README "Architecture": only `io` contains `unsafe`. Every other top-level module says
/// `#![forbid(unsafe_code)]`, so the compiler refuses `unsafe` in it.
#[test]
fn only_io_may_contain_unsafe() {
    let mut missing = Vec::new();
    for file in library_files() {
        if file.module.len() != 1 || file.module[0] == UNSAFE_MODULE {
            continue;
        }
        let forbids = file.ast.attrs.iter().any(|a| {
            a.path().is_ident("forbid")
                && a.parse_args::<syn::Ident>()
                    .is_ok_and(|i| i == "unsafe_code")
        });
        if !forbids {
            missing.push(file.path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "top-level modules without #![forbid(unsafe_code)]:\n{}",
        missing.join("\n")
    );
}

/// Finds the functions of a file longer than `MAX_FN_LINES`, outside `#[cfg(test)]`
/// modules and `#[test]` functions.
struct LongFunctions<'a> {
    path: &'a Path,
    found: Vec<String>,
}

impl LongFunctions<'_> {
    fn check(&mut self, name: &syn::Ident, fn_token: &syn::token::Fn, block: &syn::Block) {
        let start = fn_token.span.start().line;
        let end = block.brace_token.span.close().end().line;
        let lines = end + 1 - start;
        if lines > MAX_FN_LINES {
            self.found.push(format!(
                "{}:{start} {name}: {lines} lines",
                self.path.display()
            ));
        }
    }
}

impl<'ast> Visit<'ast> for LongFunctions<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_cfg_test(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_cfg_test(&f.attrs) {
            self.check(&f.sig.ident, &f.sig.fn_token, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            self.check(&f.sig.ident, &f.sig.fn_token, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.check(&f.sig.ident, &f.sig.fn_token, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// Issue 11: no function in `src/` outside tests is longer than 100 lines. Files named
/// `tests.rs` are test modules (`#[cfg(test)] mod tests;`) and are left out.
#[test]
fn no_function_is_longer_than_100_lines() {
    let mut long = Vec::new();
    for file in library_files() {
        if file.path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let mut visitor = LongFunctions {
            path: &file.path,
            found: Vec::new(),
        };
        visitor.visit_file(&file.ast);
        long.extend(visitor.found);
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them by step):\n{}",
        long.join("\n")
    );
}

/// The checks above must see what they check: a file with an upward import, a long
/// function and a missing forbid is caught by each.
#[test]
fn the_checks_catch_what_they_look_for() {
    let ast: syn::File = syn::parse_str(
        "use crate::engine::Stack;\nfn f() { super::super::app::run(); crate::ops::x!(); }",
    )
    .unwrap();
    let mut imports = Imports {
        module: vec!["wire".into(), "ipv4".into()],
        found: BTreeSet::new(),
    };
    imports.visit_file(&ast);
    let found: Vec<&str> = imports.found.iter().map(String::as_str).collect();
    assert_eq!(found, ["app", "engine", "ops"]);

    let body = "let _x = 1;\n".repeat(MAX_FN_LINES);
    let ast: syn::File = syn::parse_str(&format!("fn long() {{\n{body}}}")).unwrap();
    let mut visitor = LongFunctions {
        path: Path::new("x.rs"),
        found: Vec::new(),
    };
    visitor.visit_file(&ast);
    assert_eq!(
        visitor.found,
        [format!("x.rs:1 long: {} lines", MAX_FN_LINES + 2)]
    );

    let ast: syn::File = syn::parse_str("#[cfg(test)] mod tests { fn long() {\n}\n}").unwrap();
    let mut visitor = LongFunctions {
        path: Path::new("x.rs"),
        found: Vec::new(),
    };
    visitor.visit_file(&ast);
    assert!(visitor.found.is_empty());
}
