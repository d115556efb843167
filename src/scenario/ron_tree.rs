//! A small RON (Rust Object Notation) parser that keeps source positions.
//!
//! Role: turn scenario text into a [`Node`] tree in which every value remembers the
//! line/column of its first character, and every struct field remembers where its
//! name was written. `de.rs` deserializes from this tree, and validation code uses
//! [`Node::get`] / [`Node::locate`] to point error messages at the right place.
//!
//! Invariants:
//! - Positions are 1-based; `col` counts `char`s, not bytes.
//! - Parsing never panics on any input: every failure is a [`SyntaxError`] with the
//!   position of the problem and, where useful, a hint.
//! - Nesting deeper than [`MAX_DEPTH`] values is an error, so recursion is bounded and
//!   hostile input cannot overflow the stack.
//! - The tree is a faithful record of what was written: duplicate field names are kept
//!   (they are reported by `de.rs`), struct/variant names are kept as written, and
//!   floats such as `1e400` stay infinite (finiteness is checked later).

use std::fmt;

/// Maximum number of nested values (containers) accepted by [`parse`].
pub const MAX_DEPTH: usize = 128;

/// Most values one document may hold. A value takes 64 bytes in the tree (a struct field 96),
/// and a string or name 32 more on the heap, however short it is written: without a limit a
/// file of `0,0,0,...` would take 33 bytes of memory per byte of text. With it the tree of any
/// file stays within about 1 GB plus its strings (see BENCHMARKS.md); a chain of a million
/// services holds 6 million values.
pub const MAX_VALUES: usize = 10_000_000;

/// A position in the source text: 1-based line and 1-based column counted in chars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in chars, from 1.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A parsed value; `pos` is the position of its first char.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Position of the value's first char.
    pub pos: Pos,
    /// The value.
    pub kind: NodeKind,
}

/// The kinds of RON values.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `()`
    Unit,
    /// `true` / `false`
    Bool(bool),
    /// `12`, `-3`, `0x1F`, `1_000`
    Int(Int),
    /// `1.5`, `1e3`, `-0.5`, `inf`, `-inf`, `NaN` (`1e400` becomes infinity)
    Float(f64),
    /// `"..."` with escapes, or raw strings `r"..."`, `r#"..."#`
    Str(String),
    /// `'a'`
    Char(char),
    /// A bare identifier such as a unit enum variant: `Full`
    Ident(String),
    /// `None` / `Some(x)`
    Option(Option<Box<Node>>),
    /// `[a, b]`
    List(Vec<Node>),
    /// `{ k: v }`
    Map(Vec<(Node, Node)>),
    /// `(a, b)` or `Name(a, b)`; `Name()` has no items.
    Tuple {
        /// The name before `(`, if any.
        name: Option<String>,
        /// The items.
        items: Vec<Node>,
    },
    /// `(a: 1, b: 2)` or `Name(a: 1)`
    Struct {
        /// The name before `(`, if any.
        name: Option<String>,
        /// The fields, in file order (duplicates kept).
        fields: Vec<Field>,
    },
}

/// An integer as written, up to the range of `i128`, kept in two 8-byte halves: an `i128`
/// field would align every [`Node`] to 16 bytes and make it 80 bytes instead of 64.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Int {
    hi: i64,
    lo: u64,
}

impl Int {
    /// The value.
    pub fn get(self) -> i128 {
        (i128::from(self.hi) << 64) | i128::from(self.lo)
    }
}

impl From<i128> for Int {
    fn from(v: i128) -> Int {
        Int {
            hi: (v >> 64) as i64,
            lo: v as u64,
        }
    }
}

impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

/// A `name: value` entry of a struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Position of the name.
    pub name_pos: Pos,
    /// The value.
    pub value: Node,
}

/// A syntax error with its position and a hint for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n  help: {}", self.pos, self.message, self.hint)
    }
}

impl std::error::Error for SyntaxError {}

/// One step of a path into a tree: a field (or string map key) or an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A struct field or map key.
    Field(String),
    /// A list or tuple index.
    Index(usize),
}

/// Parses a whole RON document (one top-level value, optionally preceded by
/// `#![enable(...)]` attributes, surrounded by whitespace and comments).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_limited(text, MAX_VALUES)
}

/// [`parse`], refusing a document of more than `max_values` values.
fn parse_limited(text: &str, max_values: usize) -> Result<Node, SyntaxError> {
    let mut p = Parser::new(text, max_values);
    p.skip_ws()?;
    p.skip_attributes()?;
    p.skip_ws()?;
    if p.peek().is_none() {
        return Err(p.err_here(
            "the file contains no value",
            "write a value, for example `(name: \"...\")`",
        ));
    }
    let value = p.value(0)?;
    p.skip_ws()?;
    if p.peek().is_some() {
        let found = p.describe_here();
        return Err(p.err_here(
            &format!("unexpected {found} after the end of the value"),
            "a file holds exactly one value; remove the extra text or put the values in a list `[...]`",
        ));
    }
    Ok(value)
}

/// Parses a path such as `services[3].dependencies[0].retry` (or `at.0`) into segments.
/// Numeric segments (`[3]` or `.3`) become [`Seg::Index`]; everything else a [`Seg::Field`].
pub fn parse_path(s: &str) -> Vec<Seg> {
    fn flush(buf: &mut String, out: &mut Vec<Seg>) {
        if buf.is_empty() {
            return;
        }
        let text = std::mem::take(buf);
        match text.parse::<usize>() {
            Ok(i) if text.chars().all(|c| c.is_ascii_digit()) => out.push(Seg::Index(i)),
            _ => out.push(Seg::Field(text)),
        }
    }
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut buf, &mut out),
            '[' => {
                flush(&mut buf, &mut out);
                let mut inner = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    inner.push(d);
                }
                let inner = inner.trim().to_string();
                match inner.parse::<usize>() {
                    Ok(i) => out.push(Seg::Index(i)),
                    Err(_) => {
                        let key = inner.trim_matches('"').to_string();
                        if !key.is_empty() {
                            out.push(Seg::Field(key));
                        }
                    }
                }
            }
            c => buf.push(c),
        }
    }
    flush(&mut buf, &mut out);
    out
}

/// Formats segments back into a path: `services[3].dependencies[0].retry`.
pub fn fmt_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

impl Node {
    /// Follows struct fields by name (first occurrence), list/tuple items by index, map values by
    /// string key (`Seg::Field` matches a `Str` or `Ident` key; `Seg::Index` an `Int` key), and looks
    /// THROUGH `Option(Some)` and through single-item tuples used as enum variant content when a
    /// `Seg::Field` does not match the tuple itself (e.g. path `at` then `0` reaches `"30m"` in
    /// `at: Fixed("30m")`, and path `kind` then `target` reaches the string in
    /// `kind: Crash(target: "db")`). `Seg::Index(0)` on a named struct (a newtype variant written
    /// as `Crash(target: "db")`) yields the struct itself. Returns `None` if not found.
    pub fn get(&self, path: &[Seg]) -> Option<&Node> {
        let mut cur = self;
        for seg in path {
            cur = cur.step(seg)?;
        }
        Some(cur)
    }

    /// The position of the deepest node that exists along the path (falls back to `self.pos`).
    pub fn locate(&self, path: &[Seg]) -> Pos {
        let mut cur = self;
        for seg in path {
            match cur.step(seg) {
                Some(next) => cur = next,
                None => break,
            }
        }
        cur.pos
    }

    /// For struct nodes: the position of the first field NAME `name` (for "unknown/duplicate
    /// field" errors). Looks through `Some(...)` and single-item tuples like [`Node::get`].
    pub fn field_name_pos(&self, name: &str) -> Option<Pos> {
        match &self.kind {
            NodeKind::Struct { fields, .. } => {
                fields.iter().find(|f| f.name == name).map(|f| f.name_pos)
            }
            NodeKind::Option(Some(inner)) => inner.field_name_pos(name),
            NodeKind::Tuple { items, .. } if items.len() == 1 => {
                items.first().and_then(|n| n.field_name_pos(name))
            }
            _ => None,
        }
    }

    fn step(&self, seg: &Seg) -> Option<&Node> {
        let direct = match (&self.kind, seg) {
            (NodeKind::Struct { fields, .. }, Seg::Field(n)) => {
                fields.iter().find(|f| &f.name == n).map(|f| &f.value)
            }
            (NodeKind::Struct { name: Some(_), .. }, Seg::Index(0)) => Some(self),
            (NodeKind::List(items) | NodeKind::Tuple { items, .. }, Seg::Index(i)) => items.get(*i),
            (NodeKind::Map(entries), Seg::Field(n)) => entries
                .iter()
                .find(|(k, _)| matches!(&k.kind, NodeKind::Str(s) | NodeKind::Ident(s) if s == n))
                .map(|(_, v)| v),
            (NodeKind::Map(entries), Seg::Index(i)) => {
                let want = i128::try_from(*i).ok()?;
                entries
                    .iter()
                    .find(|(k, _)| matches!(k.kind, NodeKind::Int(v) if v.get() == want))
                    .map(|(_, v)| v)
            }
            _ => None,
        };
        if direct.is_some() {
            return direct;
        }
        match &self.kind {
            NodeKind::Option(Some(inner)) => inner.step(seg),
            NodeKind::Tuple { items, .. } if items.len() == 1 && matches!(seg, Seg::Field(_)) => {
                items.first().and_then(|n| n.step(seg))
            }
            _ => None,
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `v` without spare capacity: a struct of two fields grown by `push` would keep room for four,
/// and a large file holds millions of them.
fn shrunk<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

#[derive(Clone, Copy)]
struct Mark {
    i: usize,
    line: u32,
    col: u32,
}

/// The cursor over the text: `i` is a byte offset, always on a char boundary (the text is read
/// in place, not copied into a `Vec<char>`, which would take four bytes per byte of text).
struct Parser<'a> {
    text: &'a str,
    i: usize,
    /// Values read so far.
    values: usize,
    /// Most values accepted ([`MAX_VALUES`] but in tests).
    max_values: usize,
    line: u32,
    col: u32,
}

type PResult<T> = Result<T, SyntaxError>;

/// Which closing delimiter a container is waiting for.
#[derive(Clone, Copy)]
struct Opener {
    open: char,
    close: char,
    pos: Pos,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, max_values: usize) -> Self {
        Parser {
            text,
            i: 0,
            values: 0,
            max_values,
            line: 1,
            col: 1,
        }
    }

    /// The text from the cursor on.
    fn rest(&self) -> &'a str {
        self.text.get(self.i..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The char `n` chars after the cursor (`n` is small: it walks the chars before it).
    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    /// How many `#` follow the cursor, from `n` bytes after it.
    fn hashes_from(&self, n: usize) -> usize {
        let bytes = self.rest().as_bytes();
        bytes
            .get(n..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| b == b'#')
            .count()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            i: self.i,
            line: self.line,
            col: self.col,
        }
    }

    fn reset(&mut self, m: Mark) {
        self.i = m.i;
        self.line = m.line;
        self.col = m.col;
    }

    fn err_at(pos: Pos, message: &str, hint: &str) -> SyntaxError {
        SyntaxError {
            pos,
            message: message.to_string(),
            hint: hint.to_string(),
        }
    }

    fn err_here(&self, message: &str, hint: &str) -> SyntaxError {
        Self::err_at(self.pos(), message, hint)
    }

    fn eof_unclosed(&self, op: Opener) -> SyntaxError {
        self.err_here(
            &format!(
                "unexpected end of file: `{}` opened at {} is never closed",
                op.open, op.pos
            ),
            &format!("add the missing `{}`", op.close),
        )
    }

    /// Describes the token at the cursor for "found ..." messages.
    fn describe_here(&self) -> String {
        let Some(c) = self.peek() else {
            return "end of file".to_string();
        };
        if is_ident_start(c) || c.is_ascii_digit() {
            let word: String = self
                .rest()
                .chars()
                .take_while(|c| is_ident_char(*c) || *c == '.')
                .take(40)
                .collect();
            return format!("`{word}`");
        }
        match c {
            '"' => "a string".to_string(),
            '\'' => "a character literal".to_string(),
            c if c.is_control() => format!("character {:?}", c),
            c => format!("`{c}`"),
        }
    }

    fn skip_ws(&mut self) -> PResult<()> {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => self.block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn block_comment(&mut self) -> PResult<()> {
        let start = self.pos();
        self.bump();
        self.bump();
        let mut depth = 1usize;
        loop {
            match (self.peek(), self.peek_at(1)) {
                (None, _) => {
                    return Err(Self::err_at(
                        start,
                        "unterminated block comment (opened here)",
                        "close it with `*/`",
                    ));
                }
                (Some('*'), Some('/')) => {
                    self.bump();
                    self.bump();
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    depth += 1;
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// Skips `#![enable(...)]` style attributes at the top of the file.
    fn skip_attributes(&mut self) -> PResult<()> {
        while self.peek() == Some('#') {
            let start = self.pos();
            self.bump();
            if self.peek() != Some('!') || self.peek_at(1) != Some('[') {
                return Err(Self::err_at(
                    start,
                    "expected an attribute like `#![enable(implicit_some)]`",
                    "write the attribute as `#![enable(implicit_some)]`, or remove the line",
                ));
            }
            self.bump();
            self.bump();
            loop {
                match self.bump() {
                    None => {
                        return Err(Self::err_at(
                            start,
                            "unterminated attribute (opened here)",
                            "close it with `]`",
                        ));
                    }
                    Some(']') => break,
                    Some(_) => {}
                }
            }
            self.skip_ws()?;
        }
        Ok(())
    }

    fn at_raw_ident(&self) -> bool {
        self.peek() == Some('r')
            && self.peek_at(1) == Some('#')
            && self.peek_at(2).is_some_and(is_ident_start)
    }

    fn at_raw_string(&self) -> bool {
        if self.peek() != Some('r') {
            return false;
        }
        // `r`, then `#`s (one byte each), then `"`.
        let n = 1 + self.hashes_from(1);
        self.rest().as_bytes().get(n) == Some(&b'"')
    }

    /// Reads an identifier (optionally `r#`-prefixed). Caller checks the first char.
    fn ident(&mut self) -> String {
        if self.at_raw_ident() {
            self.bump();
            self.bump();
        }
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if !is_ident_char(c) {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }

    fn value(&mut self, depth: usize) -> PResult<Node> {
        if depth >= MAX_DEPTH {
            return Err(self.err_here(
                &format!("values are nested too deeply (more than {MAX_DEPTH} levels)"),
                "flatten the structure",
            ));
        }
        self.values += 1;
        if self.values > self.max_values {
            return Err(self.err_here(
                &format!(
                    "the file holds more than {} values, more than any scenario",
                    self.max_values
                ),
                "a chain of a million services holds 6 million; split the file, or remove repeated entries",
            ));
        }
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Err(self.err_here(
                "unexpected end of file: expected a value",
                "the file ends too early: finish the last entry, then close every `(` and `[`",
            ));
        };
        let kind = match c {
            '(' => {
                self.bump();
                self.paren_body(pos, None, depth)?
            }
            '[' => {
                self.bump();
                self.list(pos, depth)?
            }
            '{' => {
                self.bump();
                self.map(pos, depth)?
            }
            '"' => NodeKind::Str(self.string()?),
            '\'' => NodeKind::Char(self.char_lit()?),
            'r' if self.at_raw_string() => NodeKind::Str(self.raw_string()?),
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number()?,
            c if is_ident_start(c) => self.ident_value(pos, depth)?,
            _ => {
                let found = self.describe_here();
                return Err(self.err_here(&format!("expected a value, found {found}"), "write a value here: a number, a \"string\", `true`, a list `[...]` or a struct `(...)`"));
            }
        };
        Ok(Node { pos, kind })
    }

    fn ident_value(&mut self, pos: Pos, depth: usize) -> PResult<NodeKind> {
        let raw = self.at_raw_ident();
        let name = self.ident();
        if !raw {
            match name.as_str() {
                "true" => return Ok(NodeKind::Bool(true)),
                "false" => return Ok(NodeKind::Bool(false)),
                "None" => return Ok(NodeKind::Option(None)),
                "inf" => return Ok(NodeKind::Float(f64::INFINITY)),
                "NaN" => return Ok(NodeKind::Float(f64::NAN)),
                "Some" => {
                    self.skip_ws()?;
                    if self.peek() != Some('(') {
                        return Err(Self::err_at(
                            pos,
                            "`Some` needs a value in parentheses",
                            "write `Some(value)`, or `None`",
                        ));
                    }
                    let open = Opener {
                        open: '(',
                        close: ')',
                        pos: self.pos(),
                    };
                    self.bump();
                    self.skip_ws()?;
                    if self.peek() == Some(')') {
                        return Err(self
                            .err_here("`Some()` needs a value", "write `Some(value)`, or `None`"));
                    }
                    let inner = self.value(depth + 1)?;
                    self.skip_ws()?;
                    return match self.peek() {
                        Some(')') => {
                            self.bump();
                            Ok(NodeKind::Option(Some(Box::new(inner))))
                        }
                        None => Err(self.eof_unclosed(open)),
                        Some(_) => {
                            let found = self.describe_here();
                            Err(self.err_here(
                                &format!("expected `)` to close `Some(`, found {found}"),
                                "`Some(...)` holds exactly one value",
                            ))
                        }
                    };
                }
                _ => {}
            }
        }
        let after = self.mark();
        self.skip_ws()?;
        if self.peek() == Some('(') {
            let paren_pos = self.pos();
            self.bump();
            return self.paren_body(paren_pos, Some(name), depth);
        }
        self.reset(after);
        Ok(NodeKind::Ident(name))
    }

    /// True if the cursor is at `ident :` (but not `ident ::`).
    fn looks_like_field(&mut self) -> bool {
        let Some(c) = self.peek() else {
            return false;
        };
        if !is_ident_start(c) {
            return false;
        }
        let m = self.mark();
        self.ident();
        let ok = self.skip_ws().is_ok() && self.peek() == Some(':') && self.peek_at(1) != Some(':');
        self.reset(m);
        ok
    }

    /// Parses after `(` (which was at `open_pos`): unit, tuple or struct.
    fn paren_body(
        &mut self,
        open_pos: Pos,
        name: Option<String>,
        depth: usize,
    ) -> PResult<NodeKind> {
        let op = Opener {
            open: '(',
            close: ')',
            pos: open_pos,
        };
        self.skip_ws()?;
        if self.peek() == Some(')') {
            self.bump();
            return Ok(match name {
                None => NodeKind::Unit,
                Some(n) => NodeKind::Tuple {
                    name: Some(n),
                    items: Vec::new(),
                },
            });
        }
        if self.looks_like_field() {
            let fields = self.struct_fields(op, depth)?;
            Ok(NodeKind::Struct { name, fields })
        } else {
            let items = self.items(op, depth, "items")?;
            Ok(NodeKind::Tuple { name, items })
        }
    }

    fn struct_fields(&mut self, op: Opener, depth: usize) -> PResult<Vec<Field>> {
        let mut fields = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(')') => {
                    self.bump();
                    return Ok(shrunk(fields));
                }
                None => return Err(self.eof_unclosed(op)),
                Some(c) if is_ident_start(c) => {}
                Some(_) => {
                    let found = self.describe_here();
                    return Err(self.err_here(
                        &format!("expected a field name or `)`, found {found}"),
                        "every entry of a struct is written `name: value`",
                    ));
                }
            }
            let name_pos = self.pos();
            let name = self.ident();
            self.skip_ws()?;
            match self.peek() {
                Some(':') => {
                    self.bump();
                }
                None => return Err(self.eof_unclosed(op)),
                Some(_) => {
                    let found = self.describe_here();
                    return Err(self.err_here(
                        &format!("expected `:` after field name `{name}`, found {found}"),
                        "every entry of a struct is written `name: value`",
                    ));
                }
            }
            self.skip_ws()?;
            if self.peek().is_none() {
                return Err(self.eof_unclosed(op));
            }
            let value = self.value(depth + 1)?;
            fields.push(Field {
                name: name.clone(),
                name_pos,
                value,
            });
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(')') => {
                    self.bump();
                    return Ok(shrunk(fields));
                }
                None => return Err(self.eof_unclosed(op)),
                Some(_) => {
                    let found = self.describe_here();
                    return Err(self.err_here(
                        &format!("expected `,` or `)` after field `{name}`, found {found}"),
                        "separate fields with commas",
                    ));
                }
            }
        }
    }

    /// Comma-separated values up to `op.close` (the opener is already consumed).
    fn items(&mut self, op: Opener, depth: usize, what: &str) -> PResult<Vec<Node>> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(c) if c == op.close => {
                    self.bump();
                    return Ok(shrunk(items));
                }
                None => return Err(self.eof_unclosed(op)),
                Some(_) => {}
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(c) if c == op.close => {
                    self.bump();
                    return Ok(shrunk(items));
                }
                None => return Err(self.eof_unclosed(op)),
                Some(_) => {
                    let found = self.describe_here();
                    let mut hint = format!("separate {what} with commas");
                    if op.open == '(' && self.looks_like_field() {
                        hint = "a value cannot be mixed with `name: value` fields; \
                                either name every entry or none"
                            .to_string();
                    }
                    return Err(SyntaxError {
                        pos: self.pos(),
                        message: format!("expected `,` or `{}`, found {found}", op.close),
                        hint,
                    });
                }
            }
        }
    }

    fn list(&mut self, pos: Pos, depth: usize) -> PResult<NodeKind> {
        let op = Opener {
            open: '[',
            close: ']',
            pos,
        };
        Ok(NodeKind::List(self.items(op, depth, "list items")?))
    }

    fn map(&mut self, pos: Pos, depth: usize) -> PResult<NodeKind> {
        let op = Opener {
            open: '{',
            close: '}',
            pos,
        };
        let mut entries = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some('}') => {
                    self.bump();
                    return Ok(NodeKind::Map(entries));
                }
                None => return Err(self.eof_unclosed(op)),
                Some(_) => {}
            }
            let key = self.value(depth + 1)?;
            self.skip_ws()?;
            match self.peek() {
                Some(':') => {
                    self.bump();
                }
                None => return Err(self.eof_unclosed(op)),
                Some(_) => {
                    let found = self.describe_here();
                    return Err(self.err_here(
                        &format!("expected `:` after a map key, found {found}"),
                        "map entries are written `key: value`",
                    ));
                }
            }
            self.skip_ws()?;
            if self.peek().is_none() {
                return Err(self.eof_unclosed(op));
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    return Ok(NodeKind::Map(entries));
                }
                None => return Err(self.eof_unclosed(op)),
                Some(_) => {
                    let found = self.describe_here();
                    return Err(self.err_here(
                        &format!("expected `,` or `}}`, found {found}"),
                        "separate map entries with commas",
                    ));
                }
            }
        }
    }

    /// Parses an escape after the backslash (already consumed); `esc_pos` is the backslash.
    fn escape(&mut self, esc_pos: Pos, open: Pos, what: &str) -> PResult<Option<char>> {
        let unterminated = || {
            Self::err_at(
                open,
                &format!("unterminated {what} (opened here)"),
                "close it with the matching quote",
            )
        };
        let Some(c) = self.bump() else {
            return Err(unterminated());
        };
        let out = match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            '\n' => {
                // line continuation: skip leading whitespace of the next line
                while self.peek().is_some_and(char::is_whitespace) {
                    self.bump();
                }
                return Ok(None);
            }
            'x' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    let d = self.bump().and_then(|d| d.to_digit(16));
                    match d {
                        Some(d) => v = v * 16 + d,
                        None => {
                            return Err(Self::err_at(
                                esc_pos,
                                "invalid `\\x` escape",
                                "write two hex digits, e.g. `\\x41`",
                            ));
                        }
                    }
                }
                match char::from_u32(v) {
                    Some(ch) if v <= 0x7f => ch,
                    _ => {
                        return Err(Self::err_at(
                            esc_pos,
                            "`\\x` escapes must be at most `\\x7F`",
                            "use `\\u{...}` for other characters",
                        ));
                    }
                }
            }
            'u' => {
                let bad = |msg: &str| {
                    Self::err_at(
                        esc_pos,
                        msg,
                        "write a unicode escape as `\\u{1F600}` or `\\u00e9`",
                    )
                };
                let mut v = 0u32;
                if self.peek() == Some('{') {
                    self.bump();
                    let mut n = 0;
                    loop {
                        match self.bump() {
                            Some('}') if n > 0 => break,
                            Some(d) if d.is_ascii_hexdigit() && n < 6 => {
                                v = v * 16 + d.to_digit(16).unwrap_or(0);
                                n += 1;
                            }
                            Some('_') if n > 0 => {}
                            _ => return Err(bad("invalid unicode escape")),
                        }
                    }
                } else {
                    for _ in 0..4 {
                        match self.bump().and_then(|d| d.to_digit(16)) {
                            Some(d) => v = v * 16 + d,
                            None => return Err(bad("invalid unicode escape")),
                        }
                    }
                }
                match char::from_u32(v) {
                    Some(ch) => ch,
                    None => return Err(bad("unicode escape is not a valid character")),
                }
            }
            other => {
                return Err(Self::err_at(
                    esc_pos,
                    &format!("unknown escape `\\{other}`"),
                    "valid escapes are \\n \\t \\r \\0 \\\\ \\\" \\' \\x41 \\u{...}; to write a backslash use `\\\\`",
                ));
            }
        };
        Ok(Some(out))
    }

    fn string(&mut self) -> PResult<String> {
        let open = self.pos();
        self.bump();
        let mut s = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None => {
                    return Err(Self::err_at(
                        open,
                        "unterminated string (opened here)",
                        "close it with `\"`",
                    ));
                }
                Some('"') => return Ok(s),
                Some('\\') => {
                    if let Some(c) = self.escape(here, open, "string")? {
                        s.push(c);
                    }
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn raw_string(&mut self) -> PResult<String> {
        let open = self.pos();
        self.bump(); // r
        let mut hashes = 0usize;
        while self.peek() == Some('#') {
            self.bump();
            hashes += 1;
        }
        self.bump(); // "
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    let closing = format!("\"{}", "#".repeat(hashes));
                    return Err(Self::err_at(
                        open,
                        "unterminated raw string (opened here)",
                        &format!("close it with `{closing}`"),
                    ));
                }
                Some('"') => {
                    let closes = self.hashes_from(0) >= hashes;
                    if closes {
                        for _ in 0..hashes {
                            self.bump();
                        }
                        return Ok(s);
                    }
                    s.push('"');
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn char_lit(&mut self) -> PResult<char> {
        let open = self.pos();
        self.bump();
        let here = self.pos();
        let c = match self.bump() {
            None => {
                return Err(Self::err_at(
                    open,
                    "unterminated character literal (opened here)",
                    "close it with `'`",
                ));
            }
            Some('\\') => match self.escape(here, open, "character literal")? {
                Some(c) => c,
                None => {
                    return Err(Self::err_at(
                        here,
                        "invalid character literal",
                        "write one character between single quotes, e.g. 'a' or '\\n'",
                    ));
                }
            },
            Some('\'') => {
                return Err(Self::err_at(
                    open,
                    "empty character literal",
                    "write one character between the quotes, e.g. 'a'",
                ));
            }
            Some(c) => c,
        };
        if self.peek() == Some('\'') {
            self.bump();
            Ok(c)
        } else {
            Err(Self::err_at(
                open,
                "unterminated character literal (opened here)",
                "a character literal holds one character; use double quotes for strings",
            ))
        }
    }

    fn number(&mut self) -> PResult<NodeKind> {
        let start = self.pos();
        let mut neg = false;
        match self.peek() {
            Some('-') => {
                self.bump();
                neg = true;
            }
            Some('+') => {
                self.bump();
            }
            _ => {}
        }
        let sign = if neg { "-" } else { "" };
        if self.peek().is_some_and(is_ident_start) {
            let word = self.ident();
            return match word.as_str() {
                "inf" => Ok(NodeKind::Float(if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                })),
                "NaN" => Ok(NodeKind::Float(f64::NAN)),
                _ => Err(Self::err_at(
                    start,
                    &format!("expected a number after the sign, found `{word}`"),
                    "write digits after the sign, e.g. `-1.5`, or `-inf`",
                )),
            };
        }
        let radix = match (self.peek(), self.peek_at(1)) {
            (Some('0'), Some('x')) => 16,
            (Some('0'), Some('o')) => 8,
            (Some('0'), Some('b')) => 2,
            _ => 10,
        };
        if radix != 10 {
            self.bump();
            self.bump();
            let mut digits = String::new();
            while let Some(c) = self.peek() {
                if !is_ident_char(c) {
                    break;
                }
                if c != '_' {
                    digits.push(c);
                }
                self.bump();
            }
            let text = format!("{sign}{digits}");
            return match i128::from_str_radix(&text, radix) {
                Ok(v) if !digits.is_empty() => Ok(NodeKind::Int(v.into())),
                _ => Err(Self::err_at(
                    start,
                    &format!("invalid number `{sign}0{}{digits}`", radix_letter(radix)),
                    "write hexadecimal as `0xFF`, octal as `0o17` and binary as `0b101`",
                )),
            };
        }
        let mut raw = String::new();
        let mut is_float = false;
        while let Some(c) = self.peek() {
            let prev_is_exp = raw.ends_with(['e', 'E']);
            if c.is_ascii_digit() || c == '_' {
                raw.push(c);
            } else if c == '.' && self.peek_at(1).is_none_or(|d| d.is_ascii_digit()) {
                is_float = true;
                raw.push(c);
            } else if c == '.' && raw.chars().next().is_some_and(|d| d.is_ascii_digit()) {
                // `1.` followed by something else: accept a trailing dot like `1.`
                is_float = true;
                raw.push(c);
            } else if c == 'e' || c == 'E' {
                is_float = true;
                raw.push(c);
            } else if (c == '+' || c == '-') && prev_is_exp {
                raw.push(c);
            } else {
                break;
            }
            self.bump();
        }
        if self.peek().is_some_and(is_ident_char) {
            let mut bad = raw.clone();
            while let Some(c) = self.peek() {
                if !is_ident_char(c) || bad.chars().count() > 40 {
                    break;
                }
                bad.push(c);
                self.bump();
            }
            return Err(Self::err_at(
                start,
                &format!("invalid number `{sign}{bad}`"),
                "numbers are written like 12, -3, 1.5, 1e3, 0x1F or 1_000; quote text as \"...\"",
            ));
        }
        let clean: String = raw.chars().filter(|c| *c != '_').collect();
        if clean.is_empty() {
            let found = self.describe_here();
            return Err(Self::err_at(
                start,
                &format!("expected a number, found {found}"),
                "write a number such as `12` or `1.5`",
            ));
        }
        let text = format!("{sign}{clean}");
        if is_float {
            match text.parse::<f64>() {
                Ok(v) => Ok(NodeKind::Float(v)),
                Err(_) => Err(Self::err_at(
                    start,
                    &format!("invalid number `{sign}{raw}`"),
                    "write a number such as `12`, `1.5` or `1e3` (digits may be grouped with `_`)",
                )),
            }
        } else {
            match text.parse::<i128>() {
                Ok(v) => Ok(NodeKind::Int(v.into())),
                Err(_) => Err(Self::err_at(
                    start,
                    &format!("integer `{sign}{raw}` is too large"),
                    "write a smaller integer, or a float such as `1e40`",
                )),
            }
        }
    }
}

fn radix_letter(radix: u32) -> char {
    match radix {
        16 => 'x',
        8 => 'o',
        _ => 'b',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }

    fn ok(text: &str) -> Node {
        match parse(text) {
            Ok(n) => n,
            Err(e) => panic!("unexpected syntax error in {text:?}: {e}"),
        }
    }

    fn err(text: &str) -> SyntaxError {
        match parse(text) {
            Ok(n) => panic!("expected an error for {text:?}, got {n:?}"),
            Err(e) => e,
        }
    }

    fn kind(text: &str) -> NodeKind {
        ok(text).kind
    }

    #[test]
    fn positions_count_chars_and_skip_comments() {
        let text = "// héllo wörld ✓\n(\n    /* ünï /* nested */ còde */ name: \"ä✓\", value: 12,\n  list: [1, 2],\n)";
        let root = ok(text);
        assert_eq!(root.pos, p(2, 1));
        assert_eq!(root.field_name_pos("name"), Some(p(3, 33)));
        let name = root.get(&parse_path("name")).map(|n| n.pos);
        assert_eq!(name, Some(p(3, 39)));
        let value = root.get(&parse_path("value"));
        assert_eq!(value.map(|n| n.pos), Some(p(3, 52)));
        assert_eq!(value.map(|n| &n.kind), Some(&NodeKind::Int(Int::from(12))));
        assert_eq!(root.locate(&parse_path("list[1]")), p(4, 13));
        // missing element: deepest existing node is the list
        assert_eq!(root.locate(&parse_path("list[7].x")), p(4, 9));
        assert_eq!(root.locate(&parse_path("nope")), p(2, 1));
    }

    #[test]
    fn scalars() {
        assert_eq!(kind("()"), NodeKind::Unit);
        assert_eq!(kind("true"), NodeKind::Bool(true));
        assert_eq!(kind("false"), NodeKind::Bool(false));
        assert_eq!(kind("12"), NodeKind::Int(Int::from(12)));
        assert_eq!(kind("-3"), NodeKind::Int(Int::from(-3)));
        assert_eq!(kind("+3"), NodeKind::Int(Int::from(3)));
        assert_eq!(kind("0x1F"), NodeKind::Int(Int::from(31)));
        assert_eq!(kind("0o17"), NodeKind::Int(Int::from(15)));
        assert_eq!(kind("0b101"), NodeKind::Int(Int::from(5)));
        assert_eq!(kind("-0x10"), NodeKind::Int(Int::from(-16)));
        assert_eq!(kind("1_000"), NodeKind::Int(Int::from(1000)));
        assert_eq!(kind("1.5"), NodeKind::Float(1.5));
        assert_eq!(kind("1e3"), NodeKind::Float(1000.0));
        assert_eq!(kind("2.5E-1"), NodeKind::Float(0.25));
        assert_eq!(kind("-0.5"), NodeKind::Float(-0.5));
        assert_eq!(kind(".5"), NodeKind::Float(0.5));
        assert_eq!(kind("inf"), NodeKind::Float(f64::INFINITY));
        assert_eq!(kind("-inf"), NodeKind::Float(f64::NEG_INFINITY));
        assert_eq!(kind("1e400"), NodeKind::Float(f64::INFINITY));
        assert!(matches!(kind("NaN"), NodeKind::Float(f) if f.is_nan()));
        assert_eq!(kind("'a'"), NodeKind::Char('a'));
        assert_eq!(kind("'\\n'"), NodeKind::Char('\n'));
        assert_eq!(kind("'✓'"), NodeKind::Char('✓'));
        assert_eq!(kind("Full"), NodeKind::Ident("Full".into()));
        assert_eq!(kind("r#type"), NodeKind::Ident("type".into()));
        assert_eq!(kind("None"), NodeKind::Option(None));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            kind(r#""a\nb\t\\\"\u{1F600}\u00e9\x41\'""#),
            NodeKind::Str("a\nb\t\\\"\u{1F600}éA'".into())
        );
        assert_eq!(kind("\"multi\nline\""), NodeKind::Str("multi\nline".into()));
        assert_eq!(kind(r##"r"raw \n""##), NodeKind::Str("raw \\n".into()));
        assert_eq!(
            kind(r###"r#"has "quotes" inside"#"###),
            NodeKind::Str("has \"quotes\" inside".into())
        );
        assert_eq!(
            kind(r####"r##"a "# b"##"####),
            NodeKind::Str("a \"# b".into())
        );
        let e = err(r#""bad \q escape""#);
        assert_eq!(e.pos, p(1, 6));
        assert!(e.message.contains("unknown escape"), "{}", e.message);
    }

    #[test]
    fn containers() {
        assert_eq!(
            kind("[1, 2,]"),
            NodeKind::List(vec![
                Node {
                    pos: p(1, 2),
                    kind: NodeKind::Int(Int::from(1))
                },
                Node {
                    pos: p(1, 5),
                    kind: NodeKind::Int(Int::from(2))
                },
            ])
        );
        assert_eq!(kind("[]"), NodeKind::List(vec![]));
        match kind("{ \"a\": 1, b: 2, }") {
            NodeKind::Map(entries) => {
                assert_eq!(entries.len(), 2);
                assert_eq!(entries[0].0.kind, NodeKind::Str("a".into()));
                assert_eq!(entries[1].0.kind, NodeKind::Ident("b".into()));
                assert_eq!(entries[1].1.pos, p(1, 14));
            }
            other => panic!("{other:?}"),
        }
        match kind("(1, \"x\",)") {
            NodeKind::Tuple { name: None, items } => assert_eq!(items.len(), 2),
            other => panic!("{other:?}"),
        }
        match kind("Pair(1, 2)") {
            NodeKind::Tuple {
                name: Some(n),
                items,
            } => {
                assert_eq!(n, "Pair");
                assert_eq!(items.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            kind("Empty()"),
            NodeKind::Tuple {
                name: Some("Empty".into()),
                items: vec![]
            }
        );
        match kind("Service(name: \"a\", capacity: 3,)") {
            NodeKind::Struct { name, fields } => {
                assert_eq!(name.as_deref(), Some("Service"));
                assert_eq!(fields.len(), 2);
                assert_eq!(fields[1].name, "capacity");
                assert_eq!(fields[1].name_pos, p(1, 20));
                assert_eq!(fields[1].value.pos, p(1, 30));
            }
            other => panic!("{other:?}"),
        }
        match kind("(a: 1, a: 2)") {
            NodeKind::Struct { name: None, fields } => assert_eq!(fields.len(), 2),
            other => panic!("{other:?}"),
        }
        match kind("Some( (x: 1) )") {
            NodeKind::Option(Some(inner)) => {
                assert_eq!(inner.pos, p(1, 7));
                assert!(matches!(inner.kind, NodeKind::Struct { .. }));
            }
            other => panic!("{other:?}"),
        }
        // name and paren may be separated by whitespace / comments
        assert!(matches!(
            kind("Crash /* c */ (target: \"db\")"),
            NodeKind::Struct { .. }
        ));
    }

    #[test]
    fn header_and_comments() {
        let text = "#![enable(implicit_some)]\n#![enable(unwrap_newtypes)]\n// c\n/* a /* b */ c */ (x: 1) // end\n/* trailing */";
        let root = ok(text);
        assert_eq!(root.pos, p(4, 19));
        assert_eq!(
            root.get(&[Seg::Field("x".into())]).map(|n| n.pos),
            Some(p(4, 23))
        );
    }

    #[test]
    fn syntax_error_unterminated_string() {
        let e = err("(\n  name: \"abc,\n  x: 1,\n)");
        assert_eq!(e.pos, p(2, 9));
        assert_eq!(e.message, "unterminated string (opened here)");
    }

    #[test]
    fn syntax_error_unclosed_paren() {
        let e = err("(\n  a: 1,\n  b: (\n    c: 2,\n");
        assert_eq!(e.pos, p(5, 1));
        assert_eq!(
            e.message,
            "unexpected end of file: `(` opened at 3:6 is never closed"
        );
        let e = err("[1, 2");
        assert_eq!(e.pos, p(1, 6));
        assert!(e.message.contains("`[` opened at 1:1"), "{}", e.message);
    }

    #[test]
    fn syntax_error_missing_comma() {
        let e = err("Service(\n  capacity: 3\n  capacity2: 4,\n)");
        assert_eq!(e.pos, p(3, 3));
        assert_eq!(
            e.message,
            "expected `,` or `)` after field `capacity`, found `capacity2`"
        );
        assert_eq!(e.hint, "separate fields with commas");
        let e = err("[1 2]");
        assert_eq!(e.pos, p(1, 4));
        assert_eq!(e.message, "expected `,` or `]`, found `2`");
    }

    #[test]
    fn syntax_error_garbage_after_value() {
        let e = err("(a: 1)\n\n  xyz");
        assert_eq!(e.pos, p(3, 3));
        assert_eq!(e.message, "unexpected `xyz` after the end of the value");
        let e = err("1 )");
        assert_eq!(e.pos, p(1, 3));
    }

    #[test]
    fn syntax_error_misc() {
        assert_eq!(err("").message, "the file contains no value");
        assert_eq!(err("  // only comment\n").pos, p(2, 1));
        let e = err("(a: 1, /* never closed");
        assert_eq!(e.pos, p(1, 8));
        assert_eq!(err("(a 1)").message, "expected `,` or `)`, found `1`");
        let e = err("(a: 1, 2)");
        assert_eq!(e.pos, p(1, 8));
        assert!(
            e.message.starts_with("expected a field name"),
            "{}",
            e.message
        );
        let e = err("(x: 12abc)");
        assert_eq!(e.pos, p(1, 5));
        assert!(
            e.message.contains("invalid number `12abc`"),
            "{}",
            e.message
        );
        let e = err("(x: 1000000000000000000000000000000000000000000)");
        assert!(e.message.contains("too large"), "{}", e.message);
        let e = err("(x: 'ab')");
        assert_eq!(e.pos, p(1, 5));
        let e = err("Some(1, 2)");
        assert_eq!(e.pos, p(1, 7));
        let e = err("#![enable(x)\n(a: 1)");
        assert_eq!(e.pos, p(1, 1));
        let e = err("(x: @)");
        assert_eq!(
            (e.pos, e.message.as_str()),
            (p(1, 5), "expected a value, found `@`")
        );
    }

    #[test]
    fn nodes_stay_small() {
        // A large file holds millions of values: 16 bytes more a value is 100 MB more for a
        // chain of a million services.
        assert!(
            std::mem::size_of::<Node>() <= 64,
            "{}",
            std::mem::size_of::<Node>()
        );
        assert!(
            std::mem::size_of::<Field>() <= 96,
            "{}",
            std::mem::size_of::<Field>()
        );
    }

    #[test]
    fn integers_keep_the_range_of_i128() {
        for v in [
            0,
            1,
            -1,
            i128::from(i64::MAX) + 1,
            i128::from(u64::MAX),
            i128::MIN,
            i128::MAX,
        ] {
            assert_eq!(Int::from(v).get(), v);
        }
    }

    #[test]
    fn too_many_values_is_an_error_at_the_first_value_over() {
        // `(a: [1, 2], b: 3)` holds five values: the struct, the list, 1, 2 and 3.
        let text = "(a: [1, 2], b: 3)";
        assert!(parse_limited(text, 5).is_ok());
        let e = parse_limited(text, 4).unwrap_err();
        assert_eq!(e.pos, p(1, 16));
        assert_eq!(
            e.message,
            "the file holds more than 4 values, more than any scenario"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for open in ["(", "[", "Some(", "A(", "{1:"] {
            let text = open.repeat(10_000);
            let e = err(&text);
            assert!(
                e.message.contains("nested too deeply"),
                "{open}: {}",
                e.message
            );
        }
        // exactly at the limit is fine
        let text = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&text).is_ok());
        let text = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&text).is_err());
    }

    #[test]
    fn path_lookup_through_variants_and_options() {
        let root = ok(r#"(
            at: Fixed("30m"),
            kind: Crash(target: "db"),
            wrapped: Crash((target: "cache")),
            maybe: Some((retry: 3)),
            services: [(name: "a"), (name: "b", deps: ["x", "y"])],
            table: { "k": 1, 7: 2 },
        )"#);
        let get = |s: &str| root.get(&parse_path(s)).map(|n| n.kind.clone());
        assert_eq!(get("at[0]"), Some(NodeKind::Str("30m".into())));
        assert_eq!(get("at.0"), Some(NodeKind::Str("30m".into())));
        assert_eq!(get("kind.target"), Some(NodeKind::Str("db".into())));
        assert_eq!(get("kind.0.target"), Some(NodeKind::Str("db".into())));
        assert_eq!(get("wrapped.target"), Some(NodeKind::Str("cache".into())));
        assert_eq!(get("maybe.retry"), Some(NodeKind::Int(Int::from(3))));
        assert_eq!(get("services[1].deps[1]"), Some(NodeKind::Str("y".into())));
        assert_eq!(get("table.k"), Some(NodeKind::Int(Int::from(1))));
        assert_eq!(get("table[7]"), Some(NodeKind::Int(Int::from(2))));
        assert_eq!(get("services[2]"), None);
        assert_eq!(get("kind.nope"), None);
        assert_eq!(root.locate(&parse_path("services[1].deps[9]")), p(6, 55));
        let svc = root.get(&parse_path("services[1]"));
        assert_eq!(svc.and_then(|s| s.field_name_pos("deps")), Some(p(6, 49)));
        assert_eq!(root.field_name_pos("maybe"), Some(p(5, 13)));
        assert_eq!(root.field_name_pos("absent"), None);
    }

    #[test]
    fn path_parse_and_format_round_trip() {
        let path = parse_path("services[3].dependencies[0].retry");
        assert_eq!(
            path,
            vec![
                Seg::Field("services".into()),
                Seg::Index(3),
                Seg::Field("dependencies".into()),
                Seg::Index(0),
                Seg::Field("retry".into()),
            ]
        );
        assert_eq!(fmt_path(&path), "services[3].dependencies[0].retry");
        assert_eq!(
            parse_path("at.0"),
            vec![Seg::Field("at".into()), Seg::Index(0)]
        );
        assert_eq!(parse_path(""), vec![]);
        assert_eq!(
            parse_path("a[\"k\"]"),
            vec![Seg::Field("a".into()), Seg::Field("k".into())]
        );
        assert_eq!(fmt_path(&[Seg::Index(2), Seg::Field("x".into())]), "[2].x");
        let _ = parse_path("[[[..]]]x[");
    }

    const VALID: &str = r##"#![enable(implicit_some)]
// scenario
Scenario(
    name: "demo ✓",
    seed: 0x2A,
    services: [
        Service(name: "db", capacity: 1_000, latency: 1.5e-3, policy: Full),
        (name: "api", capacity: 8, policy: Fixed("30m"), tags: {"a": 'x'}),
    ],
    faults: [Crash(target: "db"), Pair(1, -2), Slow((factor: 2.0))],
    retry: Some(( count: 3, backoff: r#"raw"# )),
    extra: None, unit: (), flag: true,
)"##;

    #[test]
    fn valid_document_parses() {
        let root = ok(VALID);
        assert_eq!(
            root.get(&parse_path("services[0].capacity"))
                .map(|n| &n.kind),
            Some(&NodeKind::Int(Int::from(1000)))
        );
    }

    fn mutate(doc: &str, ops: &[(u8, usize, char)]) -> String {
        let mut chars: Vec<char> = doc.chars().collect();
        for (op, idx, c) in ops {
            let len = chars.len();
            match op % 3 {
                0 if len > 0 => {
                    chars.remove(idx % len);
                }
                1 => chars.insert(idx % (len + 1), *c),
                _ if len > 0 => chars[idx % len] = *c,
                _ => {}
            }
        }
        chars.into_iter().collect()
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_mutations(
            ops in proptest::collection::vec((0u8..3, any::<usize>(), prop_oneof![
                any::<char>(),
                proptest::sample::select(vec!['(', ')', '[', ']', '{', '}', ',', ':', '"', '\'', '/', '*', '#', 'r', '\\', '-', '.', 'e', '0', '\n', ' ']),
            ]), 1..8)
        ) {
            let text = mutate(VALID, &ops);
            if let Ok(root) = parse(&text) {
                let _ = root.locate(&parse_path("services[1].policy.0"));
            }
        }

        #[test]
        fn path_parse_never_panics(s in ".{0,40}") {
            let path = parse_path(&s);
            let _ = fmt_path(&path);
        }
    }
}
