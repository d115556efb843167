//! Property tests: the scenario loader never panics, whatever the text, and every problem it
//! reports has a real position (line and column from 1, inside the text) and a message.

use aftershock::scenario::{DEFAULT_SCENARIO, load_str};
use proptest::prelude::*;
use proptest::sample::Index;

const FILE: &str = "fuzz.ron";

/// Loads `text` and checks the shape of the error, if any.
fn check(text: &str) {
    let Err(e) = load_str(text, FILE, None) else {
        return;
    };
    assert_eq!(e.file, FILE);
    assert!(!e.problems.is_empty(), "an error without problems");
    // Positions may point one past the last char (end of input), never further.
    let lines: Vec<&str> = text.split('\n').collect();
    for p in &e.problems {
        assert!(p.pos.line >= 1 && p.pos.col >= 1, "position {:?}", p.pos);
        assert!(!p.message.trim().is_empty(), "empty message at {:?}", p.pos);
        let l = p.pos.line as usize;
        assert!(
            l <= lines.len(),
            "line {l} past the end ({} lines): {}",
            lines.len(),
            p.message
        );
        let width = lines[l - 1].chars().count();
        assert!(
            p.pos.col as usize <= width + 1,
            "column {} past the end of line {l} ({width} chars): {}",
            p.pos.col,
            p.message
        );
        assert!(!p.hint.trim().is_empty(), "empty hint at {:?}", p.pos);
    }
    // Rendering never panics and keeps the FILE:LINE:COL format.
    let shown = e.to_string();
    assert!(shown.starts_with("fuzz.ron:"), "{shown}");
}

/// Tokens that are likely to confuse a RON parser or the validation after it.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ",",
    "\"",
    ":",
    "0",
    "1",
    "7",
    "9",
    "-1",
    "-",
    ".",
    "1e400",
    "-1e400",
    "NaN",
    "inf",
    "-inf",
    "0x",
    "18446744073709551616",
    "//",
    "/*",
    "*/",
    "r#\"",
    "\\",
    "'",
    "\n",
    "\t",
    " ",
    "Soft",
    "Crash",
    "name: \"edge\"",
    "capacity: 0.0",
    "é",
    "\u{0}",
    "\u{feff}",
    "Some(",
    "()",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Delete up to `len` chars starting at `at`.
    Delete { at: Index, len: usize },
    /// Insert a token at `at`.
    Insert { at: Index, token: &'static str },
    /// Insert random chars at `at`.
    InsertText { at: Index, text: String },
    /// Duplicate one line.
    DuplicateLine { line: Index },
    /// Swap two lines.
    SwapLines { a: Index, b: Index },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<Index>(), prop::sample::select(TOKENS))
            .prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<Index>(), "[(),:\"\\[\\]0-9a-z \\-.e]{1,8}")
            .prop_map(|(at, text)| Mutation::InsertText { at, text }),
        any::<Index>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    match m {
        Mutation::Delete { at, len } => {
            if !chars.is_empty() {
                let start = at.index(chars.len());
                let end = (start + len).min(chars.len());
                chars.drain(start..end);
            }
            chars.into_iter().collect()
        }
        Mutation::Insert { at, token } => {
            let i = at.index(chars.len() + 1);
            chars.splice(i..i, token.chars());
            chars.into_iter().collect()
        }
        Mutation::InsertText { at, text } => {
            let i = at.index(chars.len() + 1);
            chars.splice(i..i, text.chars());
            chars.into_iter().collect()
        }
        Mutation::DuplicateLine { line } => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let i = line.index(lines.len());
            lines.insert(i, lines[i]);
            lines.join("\n")
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
            lines.join("\n")
        }
    }
}

/// Byte ranges of the numeric literals of `text` outside strings and comments.
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if (c.is_ascii_digit()
                || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b'_' | b'e' | b'E'))
                {
                    i += 1;
                }
                spans.push((start, i));
            }
            _ => i += 1,
        }
    }
    spans
}

/// Text for a number: any f64 as Rust prints it, plus edge cases as RON text.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| format!("{v:?}")),
        any::<i64>().prop_map(|v| v.to_string()),
        (-1e6f64..1e6).prop_map(|v| format!("{v}")),
        prop::sample::select(vec![
            "0",
            "0.0",
            "-0.0",
            "-1",
            "-1.0",
            "1",
            "1e400",
            "-1e400",
            "1e-400",
            "NaN",
            "inf",
            "-inf",
            "4294967296",
            "18446744073709551616",
            "-9223372036854775809",
            "1e18",
            "0.5",
            "1.5",
            "0x10",
            "1_000",
            ".5",
            "5.",
            "1e",
            "--1",
            "+1",
        ])
        .prop_map(str::to_string),
    ]
}

fn replace_numbers(text: &str, spans: &[(usize, usize)], picks: &[(Index, String)]) -> String {
    let mut chosen: Vec<(usize, usize, &str)> = picks
        .iter()
        .map(|(ix, v)| {
            let (s, e) = spans[ix.index(spans.len())];
            (s, e, v.as_str())
        })
        .collect();
    // Replace from the end so earlier spans keep their offsets; one value per span.
    chosen.sort_by_key(|c| std::cmp::Reverse(c.0));
    chosen.dedup_by_key(|c| c.0);
    let mut out = text.to_string();
    for (s, e, v) in chosen {
        out.replace_range(s..e, v);
    }
    out
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn ron_like_text_never_panics(
        text in "(Scenario|name|services|\\(|\\)|\\[|\\]|,|:|\"[a-z]{0,4}\"|[0-9.e-]{1,6}|[a-z_]{1,8}| |\n|//[^\n]{0,6}\n|/\\*|\\*/){0,200}"
    ) {
        check(&text);
    }

    #[test]
    fn mutated_default_scenario_never_panics(
        muts in prop::collection::vec(mutation(), 1..6)
    ) {
        let mut text = DEFAULT_SCENARIO.to_string();
        for m in &muts {
            text = apply(&text, m);
        }
        check(&text);
    }

    #[test]
    fn random_numbers_in_the_default_scenario_never_panic(
        picks in prop::collection::vec((any::<Index>(), number_text()), 1..8)
    ) {
        let spans = number_spans(DEFAULT_SCENARIO);
        let text = replace_numbers(DEFAULT_SCENARIO, &spans, &picks);
        check(&text);
        // A scenario that loads is one the runner accepts.
        if let Ok(s) = load_str(&text, FILE, None) {
            prop_assert!(aftershock::runner::check_budget(&s, s.trials).is_ok());
            prop_assert!(s.topology.services.iter().all(|svc| svc.capacity.is_finite() && svc.capacity > 0.0));
        }
    }

    #[test]
    fn random_expectations_never_panic(expr in expectation_text()) {
        // The first expectation of the default scenario, whatever it says.
        let start = DEFAULT_SCENARIO.find("expectations: [").unwrap();
        let open = start + DEFAULT_SCENARIO[start..].find('"').unwrap();
        let close = open + 1 + DEFAULT_SCENARIO[open + 1..].find('"').unwrap();
        let original = &DEFAULT_SCENARIO[open..=close];
        prop_assert_eq!(DEFAULT_SCENARIO.matches(original).count(), 1);
        let text = DEFAULT_SCENARIO.replace(original, &format!("\"{expr}\""));
        check(&text);
    }
}

/// Text for an expectation: tokens of the expectation language, names, and noise.
fn expectation_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "all-at-once",
        "staged",
        ".",
        "availability",
        "technical_mttr_s",
        "mean",
        "p95",
        "p99",
        "ci(",
        ")",
        "(",
        " ",
        "<",
        "<=",
        ">",
        ">=",
        "==",
        "!=",
        "98%",
        "1h30m",
        "0.5",
        "-1",
        "1e400",
        "NaN",
        "%",
        "and",
        "or",
        "not",
        "é",
        "\\n",
        "\\\"",
        "\\u{1F600}",
        "\t",
        "never_restored_share",
        "never_technically_recovered_share",
        "never_operationally_restored_share",
        "min",
        "p5",
        "x",
        "",
    ]);
    prop::collection::vec(token, 0..12).prop_map(|t| t.concat())
}

#[test]
fn the_default_scenario_loads_and_has_numbers_to_replace() {
    load_str(DEFAULT_SCENARIO, FILE, None).expect("the default scenario is valid");
    let spans = number_spans(DEFAULT_SCENARIO);
    assert!(spans.len() > 50, "found only {} numbers", spans.len());
    for (s, e) in spans {
        let n = &DEFAULT_SCENARIO[s..e];
        assert!(
            n.replace('_', "").parse::<f64>().is_ok(),
            "not a number: {n:?}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for open in ["(", "[", "Some(", "a("] {
        let text = open.repeat(100_000);
        check(&text);
        assert!(load_str(&text, FILE, None).is_err());
    }
}

#[test]
fn empty_and_whitespace_text() {
    for text in [
        "",
        " ",
        "\n\n",
        "// only a comment",
        "/* unclosed",
        "\u{feff}",
    ] {
        check(text);
        assert!(load_str(text, FILE, None).is_err(), "{text:?} loaded");
    }
}
