//! Messages as the user reads them: a string literal broken over two source lines without a
//! `\` continuation keeps the line break and the next line's indentation (issue 12 item 20:
//! "not restarting it after                      3 restarts"). This reads every non-test
//! source file of the workspace with a Rust tokenizer and refuses such literals where they are
//! messages: arguments of the formatting and error macros and of `context`-like calls (a help
//! text laid out on purpose, or an SQL statement, may span lines).

use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, TokenStream, TokenTree};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source dir").filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `#` `[...]` is `#[cfg(test)]`.
fn is_cfg_test(group: &proc_macro2::Group) -> bool {
    group.delimiter() == Delimiter::Bracket
        && group.stream().to_string().replace(' ', "") == "cfg(test)"
}

/// Macros and calls whose string arguments are messages a user reads.
const MESSAGE_MACROS: &[&str] = &[
    "format", "bail", "anyhow", "eprintln", "println", "eprint", "print", "write", "writeln",
    "panic", "ensure", "outln", "out",
];
const MESSAGE_CALLS: &[&str] = &["context", "expect", "say", "note", "Refused", "Status"];

/// Whether the tokens before index `i` (a parenthesised group) make it a message's arguments.
fn is_message_call(tokens: &[TokenTree], i: usize) -> bool {
    let ident = |t: Option<&TokenTree>| match t {
        Some(TokenTree::Ident(id)) => Some(id.to_string()),
        _ => None,
    };
    let before = i.checked_sub(1).and_then(|j| tokens.get(j));
    if let Some(TokenTree::Punct(p)) = before {
        let name = i.checked_sub(2).and_then(|j| ident(tokens.get(j)));
        return p.as_char() == '!' && name.is_some_and(|n| MESSAGE_MACROS.contains(&n.as_str()));
    }
    ident(before).is_some_and(|n| MESSAGE_CALLS.iter().any(|c| n.ends_with(c)))
}

/// Message literals outside `#[cfg(test)]` items whose text holds a line break followed by
/// indentation: `(line, literal)`.
fn broken_literals(stream: TokenStream, out: &mut Vec<(usize, String)>) {
    walk(stream, false, out);
}

fn walk(stream: TokenStream, in_message: bool, out: &mut Vec<(usize, String)>) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                if let Some(TokenTree::Group(g)) = tokens.get(i + 1) {
                    if is_cfg_test(g) {
                        // Skip the item: up to its body `{...}` or its `;`.
                        i += 2;
                        while i < tokens.len() {
                            match &tokens[i] {
                                TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => break,
                                TokenTree::Punct(p) if p.as_char() == ';' => break,
                                _ => i += 1,
                            }
                        }
                    }
                }
            }
            TokenTree::Group(g) => {
                let message = in_message || is_message_call(&tokens, i);
                walk(g.stream(), message, out);
            }
            TokenTree::Literal(lit) => {
                let text = lit.to_string();
                if in_message && text.starts_with('"') && lost_continuation(&text) {
                    out.push((lit.span().start().line, text));
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// A raw line break not escaped by `\`, followed by spaces.
fn lost_continuation(text: &str) -> bool {
    let lines: Vec<&str> = text.split('\n').collect();
    lines.windows(2).any(|w| !w[0].ends_with('\\') && w[1].starts_with("  "))
}

#[test]
fn no_message_keeps_a_line_break_and_indentation_from_the_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).expect("crates").filter_map(Result::ok) {
        rust_files(&krate.path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        let stream: TokenStream = text.parse().expect("tokenize source");
        let mut broken = Vec::new();
        broken_literals(stream, &mut broken);
        found.extend(
            broken.into_iter().map(|(line, lit)| format!("{}:{line}: {lit}", file.display())),
        );
    }
    assert!(found.is_empty(), "literals broken without `\\`:\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_a_lost_continuation_and_accepts_the_others() {
    let source = "fn f() { say(&format!(\"after\n        3 restarts\")); }\n\
                  fn g() { say(\"after \\\n        3 restarts\"); }\n\
                  const SQL: &str = \"CREATE TABLE t (\n    a TEXT\n);\";\n\
                  fn e() -> anyhow::Error { anyhow::anyhow!(\"no\n    way\") }\n\
                  #[cfg(test)]\nmod tests { fn h() { x(format!(\"a\n    b\")); } }\n";
    let mut found = Vec::new();
    broken_literals(source.parse().unwrap(), &mut found);
    let lines: Vec<usize> = found.iter().map(|f| f.0).collect();
    assert_eq!(lines, [1, 8], "{found:?}");
}
