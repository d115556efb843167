//! A serde `Deserializer` over a parsed RON tree ([`Node`]) that collects
//! user-facing errors with positions.
//!
//! Role: turn a [`Node`] produced by `ron_tree::parse` into any
//! `#[derive(Deserialize)]` type, reporting problems the way a person editing a
//! scenario file needs them: `LINE:COL: message` plus an optional hint.
//!
//! Invariants:
//! - Never panics on any tree; every problem is a [`DeError`] with a position.
//! - Unknown and duplicate struct fields are checked here (target types need no
//!   `deny_unknown_fields`): each one is recorded at the field name's position and
//!   skipped, so *all* of them are reported in one run.
//! - The first shape error (wrong type, missing field, unknown variant, custom error
//!   from a type's own `Deserialize` impl, ...) stops deserialization; it is
//!   positioned at the node being deserialized when it was raised.
//! - Struct names written in the file (`Service(...)`) are not checked against the
//!   Rust type name; enum variant names are.
//! - Errors are returned sorted by position.

use std::cell::RefCell;
use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Expected, Unexpected, Visitor};

use super::ron_tree::{self, Field, Node, NodeKind, Pos, SyntaxError};
use super::suggest::edit_distance;

/// A user-facing deserialization (or syntax) error.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// Where.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n  help: {}", self.pos, self.message, self.hint)
    }
}

impl std::error::Error for DeError {}

impl From<SyntaxError> for DeError {
    fn from(e: SyntaxError) -> Self {
        DeError {
            pos: e.pos,
            message: e.message,
            hint: e.hint,
        }
    }
}

/// Deserialize `T` from a parsed tree. Returns every unknown-field and duplicate-field error (each
/// with the field name's position and a "did you mean `x`?" hint when an expected field is within
/// edit distance 2, or otherwise a hint listing the expected fields), and the first shape error
/// (wrong type, missing field, unknown enum variant, ...), which stops deserialization.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, Vec<DeError>> {
    from_node_counted(node).map_err(|(errors, _)| errors)
}

/// [`from_node`], with the number of errors found beyond the first [`MAX_KEPT`] (counted, not
/// kept: a file of millions of errors must not take millions of messages' memory).
pub fn from_node_counted<T: de::DeserializeOwned>(node: &Node) -> Result<T, (Vec<DeError>, usize)> {
    let ctx = Ctx::default();
    let result = T::deserialize(NodeDe { node, ctx: &ctx }).map_err(|e| e.at(node));
    let mut errors = ctx.errors.into_inner();
    match result {
        Ok(v) if errors.is_empty() => return Ok(v),
        Ok(_) => {}
        Err(e) => errors.push(e.into_de_error(node.pos)),
    }
    errors.sort_by_key(|e| e.pos);
    Err((errors, ctx.omitted.get()))
}

/// Errors kept in full for one file (the report shows the first
/// [`super::MAX_PROBLEMS`]; the rest are only counted).
pub const MAX_KEPT: usize = 10_000;

/// Convenience: parse + [`from_node`], with a `SyntaxError` converted into a one-element
/// `Vec<DeError>`.
pub fn from_str<T: de::DeserializeOwned>(text: &str) -> Result<T, Vec<DeError>> {
    let node = ron_tree::parse(text).map_err(|e| vec![DeError::from(e)])?;
    from_node(&node)
}

// ---------------------------------------------------------------------------------------------
// Error plumbing
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Ctx {
    errors: RefCell<Vec<DeError>>,
    /// Errors beyond [`MAX_KEPT`], counted only.
    omitted: std::cell::Cell<usize>,
}

impl Ctx {
    fn push(&self, e: DeError) {
        let mut errors = self.errors.borrow_mut();
        if errors.len() < MAX_KEPT {
            errors.push(e);
        } else {
            self.omitted.set(self.omitted.get() + 1);
        }
    }
}

#[derive(Debug, Clone)]
enum ErrKind {
    Plain,
    /// Message is rewritten with a description of the node once the node is known.
    InvalidType(String),
    /// Needs the struct/variant name appended.
    MissingField(String),
    /// Needs the enum name appended.
    UnknownVariant(String),
}

/// The internal serde error type; positions are attached on the way out.
#[derive(Debug, Clone)]
struct Error {
    pos: Option<Pos>,
    message: String,
    hint: String,
    kind: ErrKind,
}

impl Error {
    fn plain(message: String, hint: String) -> Self {
        Error {
            pos: None,
            message,
            hint,
            kind: ErrKind::Plain,
        }
    }

    fn at_pos(pos: Pos, message: String, hint: String) -> Self {
        Error {
            pos: Some(pos),
            message,
            hint,
            kind: ErrKind::Plain,
        }
    }

    /// Gives the error the position of `node` unless it already has one.
    fn at(mut self, node: &Node) -> Self {
        if self.pos.is_none() {
            self.pos = Some(node.pos);
            if let ErrKind::InvalidType(expected) = &self.kind {
                self.message = format!("expected {expected}, found {}", describe(node));
                self.kind = ErrKind::Plain;
            }
        }
        self
    }

    /// Adds the struct (or variant) name to a "missing field" error.
    fn in_type(mut self, type_name: &str) -> Self {
        let type_name = user_facing(type_name);
        if let ErrKind::MissingField(field) = &self.kind {
            self.message = format!("missing field `{field}` in `{type_name}`");
            self.kind = ErrKind::Plain;
        }
        self
    }

    /// Adds the enum name to an "unknown variant" error.
    fn in_enum(mut self, enum_name: &str) -> Self {
        let enum_name = user_facing(enum_name);
        if let ErrKind::UnknownVariant(variant) = &self.kind {
            self.message = format!("unknown variant `{variant}` for `{enum_name}`");
            self.kind = ErrKind::Plain;
        }
        self
    }

    fn into_de_error(self, fallback: Pos) -> DeError {
        DeError {
            pos: self.pos.unwrap_or(fallback),
            message: self.message,
            hint: self.hint,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::plain(
            msg.to_string(),
            "write this value in the form the setting takes; the files of `scenarios/` show every setting written out".to_string(),
        )
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let expected = humanize_expected(&exp.to_string());
        Error {
            pos: None,
            message: format!("expected {expected}, found {}", describe_unexpected(&unexp)),
            hint: write_here(&expected),
            kind: ErrKind::InvalidType(expected),
        }
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let expected = humanize_expected(&exp.to_string());
        Error::plain(
            format!(
                "invalid value {}: expected {expected}",
                describe_unexpected(&unexp),
            ),
            write_here(&expected),
        )
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        let items = if len == 1 { "item" } else { "items" };
        let expected = humanize_expected(&exp.to_string());
        Error::plain(
            format!("expected {expected}, found {len} {items}"),
            format!("give {expected}: add or remove items to match"),
        )
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error {
            pos: None,
            message: format!("unknown variant `{variant}`"),
            hint: suggest(variant, expected, "variants"),
            kind: ErrKind::UnknownVariant(variant.to_string()),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::plain(
            format!("unknown field `{field}`"),
            suggest(field, expected, "fields"),
        )
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            pos: None,
            message: format!("missing field `{field}`"),
            hint: format!("add `{field}: ...`"),
            kind: ErrKind::MissingField(field.to_string()),
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error::plain(
            format!("duplicate field `{field}`"),
            "remove one of the two entries".to_string(),
        )
    }
}

/// The hint for a value of the wrong kind: write what is expected, with an example when the
/// kind has an obvious one.
fn write_here(expected: &str) -> String {
    let example = match expected {
        "an integer" => Some("3"),
        "a number" => Some("1.5"),
        "`true` or `false`" => Some("true"),
        "a string" | "a string in double quotes" => Some("\"name\""),
        "a single character" | "a single character like 'a'" => Some("'a'"),
        "a list `[...]`" => Some("[\"a\", \"b\"]"),
        "a value or `None`" => Some("None"),
        "a name" => Some("name"),
        _ => None,
    };
    match example {
        Some(e) => format!("write {expected} here, e.g. `{e}`"),
        None => format!("write {expected} here"),
    }
}

/// Turns serde's "expected" wording (`u32`, `struct Service`, ...) into user wording.
fn humanize_expected(exp: &str) -> String {
    match exp {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "an integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a borrowed string" | "a string" => "a string".to_string(),
        "unit" => "`()`".to_string(),
        "option" => "a value or `None`".to_string(),
        "a sequence" => "a list `[...]`".to_string(),
        "a map" => "a map `{...}`".to_string(),
        "a boolean" => "`true` or `false`".to_string(),
        _ => {
            if let Some(rest) = exp.strip_prefix("struct ") {
                format!("a `{rest}` struct `(...)`")
            } else if let Some(rest) = exp.strip_prefix("tuple struct ") {
                format!("a `{rest}` tuple `(...)`")
            } else if let Some(rest) = exp.strip_prefix("unit struct ") {
                format!("`{rest}`")
            } else if let Some(rest) = exp.strip_prefix("enum ") {
                format!("a `{rest}` variant")
            } else if let Some(rest) = exp.strip_prefix("struct variant ") {
                format!("`{}(...)` with named fields", last_segment(rest))
            } else if let Some(rest) = exp.strip_prefix("tuple variant ") {
                format!("`{}(...)`", last_segment(rest))
            } else {
                exp.to_string()
            }
        }
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

fn describe_unexpected(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Bool(b) => format!("`{b}`"),
        Unexpected::Unsigned(v) => v.to_string(),
        Unexpected::Signed(v) => v.to_string(),
        Unexpected::Float(v) => v.to_string(),
        Unexpected::Char(c) => format!("the character {c:?}"),
        Unexpected::Str(s) => format!("the string {:?}", truncate(s)),
        Unexpected::Bytes(_) => "bytes".to_string(),
        Unexpected::Unit => "`()`".to_string(),
        Unexpected::Option => "an optional value".to_string(),
        Unexpected::NewtypeStruct => "a wrapped value".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "a map or struct".to_string(),
        Unexpected::Enum => "an enum variant".to_string(),
        Unexpected::UnitVariant => "a variant without value".to_string(),
        Unexpected::NewtypeVariant => "a variant with one value".to_string(),
        Unexpected::TupleVariant => "a variant with values".to_string(),
        Unexpected::StructVariant => "a variant with fields".to_string(),
        Unexpected::Other(s) => (*s).to_string(),
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        let mut t: String = s.chars().take(37).collect();
        t.push_str("...");
        t
    } else {
        s.to_string()
    }
}

/// Describes a node for "found ..." messages.
fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Unit => "`()`".to_string(),
        NodeKind::Bool(b) => format!("`{b}`"),
        NodeKind::Int(i) => i.to_string(),
        NodeKind::Float(f) => f.to_string(),
        NodeKind::Str(s) => format!("the string {:?}", truncate(s)),
        NodeKind::Char(c) => format!("the character {c:?}"),
        NodeKind::Ident(s) => format!("`{s}`"),
        NodeKind::Option(None) => "`None`".to_string(),
        NodeKind::Option(Some(_)) => "`Some(...)`".to_string(),
        NodeKind::List(_) => "a list `[...]`".to_string(),
        NodeKind::Map(_) => "a map `{...}`".to_string(),
        NodeKind::Tuple { name: Some(n), .. } => format!("`{n}(...)`"),
        NodeKind::Tuple { name: None, .. } => "a tuple `(...)`".to_string(),
        NodeKind::Struct { name: Some(n), .. } => format!("`{n}(...)` with fields"),
        NodeKind::Struct { name: None, .. } => "a struct `(...)`".to_string(),
    }
}

/// The name users know a type by: the schema's `Raw` prefix is an implementation detail
/// (`RawService` is written `Service(...)` in files).
fn user_facing(type_name: &str) -> &str {
    type_name
        .strip_prefix("Raw")
        .filter(|s| !s.is_empty())
        .unwrap_or(type_name)
}

/// "did you mean `x`?" if a candidate is within edit distance 2, else the list of candidates.
fn suggest(name: &str, candidates: &[&str], what: &str) -> String {
    let best = candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.chars().count().max(name.chars().count()))
        .min_by_key(|(d, _)| *d);
    if let Some((_, c)) = best {
        return format!("did you mean `{c}`?");
    }
    if candidates.is_empty() {
        return format!("no {what} are expected here: remove it");
    }
    let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    format!("expected one of: {}", list.join(", "))
}

// ---------------------------------------------------------------------------------------------
// The deserializer
// ---------------------------------------------------------------------------------------------

struct NodeDe<'de, 'c> {
    node: &'de Node,
    ctx: &'c Ctx,
}

impl<'de, 'c> NodeDe<'de, 'c> {
    /// "expected X, found Y", with a hint derived from what is expected.
    fn mismatch(&self, expected: &str) -> Error {
        self.mismatch_with(expected, write_here(expected))
    }

    /// "expected X, found Y", with `hint`.
    fn mismatch_with(&self, expected: &str, hint: String) -> Error {
        Error::at_pos(
            self.node.pos,
            format!("expected {expected}, found {}", describe(self.node)),
            hint,
        )
    }

    fn seq<V: Visitor<'de>>(&self, items: &'de [Node], visitor: V) -> Result<V::Value, Error> {
        let mut acc = SeqAcc {
            items: items.iter(),
            ctx: self.ctx,
        };
        let value = visitor.visit_seq(&mut acc)?;
        let left = acc.items.len();
        if left > 0 {
            let expected = items.len() - left;
            return Err(Error::at_pos(
                self.node.pos,
                format!("too many items: expected {expected}, found {}", items.len()),
                "remove the extra items".to_string(),
            ));
        }
        Ok(value)
    }

    /// Visits a struct's fields, reporting (and skipping) unknown and duplicate ones.
    fn checked_fields<V: Visitor<'de>>(
        &self,
        type_name: &str,
        expected: &'static [&'static str],
        entries: &'de [Field],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let type_name = user_facing(type_name);
        let mut kept: Vec<&'de Field> = Vec::with_capacity(entries.len());
        for f in entries {
            if !expected.contains(&f.name.as_str()) {
                self.ctx.push(DeError {
                    pos: f.name_pos,
                    message: format!("unknown field `{}` in `{type_name}`", f.name),
                    hint: suggest(&f.name, expected, "fields"),
                });
                continue;
            }
            if let Some(first) = kept.iter().find(|k| k.name == f.name) {
                self.ctx.push(DeError {
                    pos: f.name_pos,
                    message: format!("duplicate field `{}`", f.name),
                    hint: format!(
                        "`{}` is already set at {}; remove one of them",
                        f.name, first.name_pos
                    ),
                });
                continue;
            }
            kept.push(f);
        }
        visitor
            .visit_map(FieldsAcc {
                fields: kept.into_iter(),
                current: None,
                ctx: self.ctx,
            })
            .map_err(|e| e.in_type(type_name))
    }

    fn struct_example(fields: &[&str]) -> String {
        let shown: Vec<String> = fields.iter().take(3).map(|f| format!("{f}: ...")).collect();
        let more = if fields.len() > 3 { ", ..." } else { "" };
        format!("write it as `({}{more})`", shown.join(", "))
    }
}

macro_rules! de_int {
    ($method:ident, $ty:ty, $visit:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match &self.node.kind {
                NodeKind::Int(v) => match <$ty>::try_from(v.get()) {
                    Ok(x) => visitor.$visit(x),
                    Err(_) => Err(Error::at_pos(
                        self.node.pos,
                        format!(
                            "integer {v} is out of range: it must be between {} and {}",
                            <$ty>::MIN,
                            <$ty>::MAX
                        ),
                        format!("use a whole number from {} to {}", <$ty>::MIN, <$ty>::MAX),
                    )),
                },
                NodeKind::Float(f) => Err(Error::at_pos(
                    self.node.pos,
                    format!("expected an integer, found {f}"),
                    "write a whole number, without a decimal point".to_string(),
                )),
                NodeKind::Str(_) => Err(self.mismatch_with(
                    "an integer",
                    "numbers are written without quotes".to_string(),
                )),
                _ => Err(self.mismatch("an integer")),
            }
        }
    };
}

impl<'de, 'c> de::Deserializer<'de> for NodeDe<'de, 'c> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Unit => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Int(v) => {
                if let Ok(x) = i64::try_from(v.get()) {
                    visitor.visit_i64(x)
                } else if let Ok(x) = u64::try_from(v.get()) {
                    visitor.visit_u64(x)
                } else {
                    visitor.visit_i128(v.get())
                }
            }
            NodeKind::Float(f) => visitor.visit_f64(*f),
            NodeKind::Str(s) => visitor.visit_borrowed_str(s),
            NodeKind::Char(c) => visitor.visit_char(*c),
            NodeKind::Ident(s) => visitor.visit_borrowed_str(s),
            NodeKind::Option(None) => visitor.visit_none(),
            NodeKind::Option(Some(inner)) => visitor
                .visit_some(NodeDe {
                    node: inner,
                    ctx: self.ctx,
                })
                .map_err(|e| e.at(inner)),
            NodeKind::List(items) | NodeKind::Tuple { items, .. } => self.seq(items, visitor),
            NodeKind::Map(entries) => visitor.visit_map(MapAcc {
                entries: entries.iter(),
                current: None,
                ctx: self.ctx,
            }),
            NodeKind::Struct { fields, .. } => visitor.visit_map(FieldsAcc {
                fields: fields.iter().collect::<Vec<_>>().into_iter(),
                current: None,
                ctx: self.ctx,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.mismatch("`true` or `false`")),
        }
    }

    de_int!(deserialize_i8, i8, visit_i8);
    de_int!(deserialize_i16, i16, visit_i16);
    de_int!(deserialize_i32, i32, visit_i32);
    de_int!(deserialize_i64, i64, visit_i64);
    de_int!(deserialize_i128, i128, visit_i128);
    de_int!(deserialize_u8, u8, visit_u8);
    de_int!(deserialize_u16, u16, visit_u16);
    de_int!(deserialize_u32, u32, visit_u32);
    de_int!(deserialize_u64, u64, visit_u64);
    de_int!(deserialize_u128, u128, visit_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Float(f) => visitor.visit_f64(*f),
            // Precision loss above 2^53 is accepted: these are user-written literals.
            #[allow(clippy::cast_precision_loss)]
            NodeKind::Int(v) => visitor.visit_f64(v.get() as f64),
            NodeKind::Str(_) => {
                Err(self
                    .mismatch_with("a number", "numbers are written without quotes".to_string()))
            }
            _ => Err(self.mismatch("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Char(c) => visitor.visit_char(*c),
            NodeKind::Str(s) => {
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => visitor.visit_char(c),
                    _ => Err(self.mismatch("a single character")),
                }
            }
            _ => Err(self.mismatch("a single character like 'a'")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Str(s) => visitor.visit_borrowed_str(s),
            NodeKind::Char(c) => visitor.visit_string(c.to_string()),
            NodeKind::Ident(s) => Err(self.mismatch_with(
                "a string",
                format!("strings are written in double quotes: \"{s}\""),
            )),
            _ => Err(self.mismatch("a string in double quotes")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Str(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            NodeKind::List(items) => self.seq(items, visitor),
            _ => Err(self.mismatch("a string or a list of bytes")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Option(None) => visitor.visit_none(),
            NodeKind::Option(Some(inner)) => visitor
                .visit_some(NodeDe {
                    node: inner,
                    ctx: self.ctx,
                })
                .map_err(|e| e.at(inner)),
            // implicit `Some`: a bare value
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Unit => visitor.visit_unit(),
            _ => Err(self.mismatch("`()`")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Unit | NodeKind::Ident(_) => visitor.visit_unit(),
            NodeKind::Tuple { items, .. } if items.is_empty() => visitor.visit_unit(),
            _ => Err(self.mismatch(&format!("`{name}` or `()`"))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Accept both `Name(x)` / `(x)` (RON's own form) and a bare `x` (transparent). A tuple
        // named otherwise (`Fixed("30m")` where a bare duration is expected) is not this
        // newtype: its content is not taken, so the error names what was written.
        match &self.node.kind {
            NodeKind::Tuple { name: n, items }
                if items.len() == 1
                    && n.as_deref()
                        .is_none_or(|n| n == name || n == user_facing(name)) =>
            {
                match items.first() {
                    Some(inner) => visitor
                        .visit_newtype_struct(NodeDe {
                            node: inner,
                            ctx: self.ctx,
                        })
                        .map_err(|e| e.at(inner)),
                    None => visitor.visit_newtype_struct(self),
                }
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::List(items) | NodeKind::Tuple { items, .. } => self.seq(items, visitor),
            _ => Err(self.mismatch("a list `[...]`")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::List(items) | NodeKind::Tuple { items, .. } => self.seq(items, visitor),
            NodeKind::Unit if len == 0 => self.seq(&[], visitor),
            _ => Err(self.mismatch(&format!("a tuple of {len} values `(...)`"))),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::List(items) | NodeKind::Tuple { items, .. } => self.seq(items, visitor),
            NodeKind::Unit if len == 0 => self.seq(&[], visitor),
            _ => Err(self.mismatch(&format!("`{name}(...)` with {len} values"))),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Map(entries) => visitor.visit_map(MapAcc {
                entries: entries.iter(),
                current: None,
                ctx: self.ctx,
            }),
            NodeKind::Struct { fields, .. } => visitor.visit_map(FieldsAcc {
                fields: fields.iter().collect::<Vec<_>>().into_iter(),
                current: None,
                ctx: self.ctx,
            }),
            NodeKind::Unit => visitor.visit_map(MapAcc {
                entries: [].iter(),
                current: None,
                ctx: self.ctx,
            }),
            _ => Err(self.mismatch("a map `{key: value, ...}`")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let entries: &'de [Field] = match &self.node.kind {
            NodeKind::Struct { fields: f, .. } => f,
            NodeKind::Unit => &[],
            NodeKind::Tuple { items, .. } if items.is_empty() => &[],
            _ => {
                return Err(self.mismatch_with(
                    &format!("a `{name}` struct `(...)`"),
                    Self::struct_example(fields),
                ));
            }
        };
        self.checked_fields(name, fields, entries, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (variant, content): (&'de str, Content<'de>) = match &self.node.kind {
            NodeKind::Ident(s) | NodeKind::Str(s) => (s, Content::Nothing),
            NodeKind::Tuple {
                name: Some(v),
                items,
            } => (v, Content::Items(items)),
            NodeKind::Struct {
                name: Some(v),
                fields,
            } => (v, Content::Fields(fields)),
            NodeKind::Option(None) => ("None", Content::Nothing),
            NodeKind::Option(Some(inner)) => ("Some", Content::Items(std::slice::from_ref(inner))),
            _ => {
                let list: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
                return Err(self.mismatch_with(
                    &format!("a `{name}` variant"),
                    format!("expected one of: {}", list.join(", ")),
                ));
            }
        };
        visitor
            .visit_enum(EnumAcc {
                de: self,
                variant,
                content,
            })
            .map_err(|e| e.in_enum(name))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            NodeKind::Ident(s) | NodeKind::Str(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.mismatch("a name")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

// ---------------------------------------------------------------------------------------------
// Access helpers
// ---------------------------------------------------------------------------------------------

struct SeqAcc<'de, 'c> {
    items: std::slice::Iter<'de, Node>,
    ctx: &'c Ctx,
}

impl<'de, 'c> de::SeqAccess<'de> for SeqAcc<'de, 'c> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => seed
                .deserialize(NodeDe {
                    node,
                    ctx: self.ctx,
                })
                .map(Some)
                .map_err(|e| e.at(node)),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct FieldsAcc<'de, 'c> {
    fields: std::vec::IntoIter<&'de Field>,
    current: Option<&'de Field>,
    ctx: &'c Ctx,
}

impl<'de, 'c> de::MapAccess<'de> for FieldsAcc<'de, 'c> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.fields.next() {
            None => Ok(None),
            Some(f) => {
                self.current = Some(f);
                seed.deserialize(BorrowedStrDeserializer::<Error>::new(&f.name))
                    .map(Some)
                    .map_err(|mut e| {
                        if e.pos.is_none() {
                            e.pos = Some(f.name_pos);
                        }
                        e
                    })
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        match self.current.take() {
            Some(f) => seed
                .deserialize(NodeDe {
                    node: &f.value,
                    ctx: self.ctx,
                })
                .map_err(|e| e.at(&f.value)),
            None => Err(Error::plain(
                "internal error: value requested before key".to_string(),
                "this is a bug in aftershock: please report it with the scenario file".to_string(),
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

struct MapAcc<'de, 'c> {
    entries: std::slice::Iter<'de, (Node, Node)>,
    current: Option<&'de Node>,
    ctx: &'c Ctx,
}

impl<'de, 'c> de::MapAccess<'de> for MapAcc<'de, 'c> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.current = Some(v);
                seed.deserialize(NodeDe {
                    node: k,
                    ctx: self.ctx,
                })
                .map(Some)
                .map_err(|e| e.at(k))
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        match self.current.take() {
            Some(v) => seed
                .deserialize(NodeDe {
                    node: v,
                    ctx: self.ctx,
                })
                .map_err(|e| e.at(v)),
            None => Err(Error::plain(
                "internal error: value requested before key".to_string(),
                "this is a bug in aftershock: please report it with the scenario file".to_string(),
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// What follows an enum variant's name.
#[derive(Clone, Copy)]
enum Content<'de> {
    /// `Full`
    Nothing,
    /// `Fixed("30m")`, `Pair(1, 2)`, `Full()`
    Items(&'de [Node]),
    /// `Crash(target: "db")`
    Fields(&'de [Field]),
}

struct EnumAcc<'de, 'c> {
    de: NodeDe<'de, 'c>,
    variant: &'de str,
    content: Content<'de>,
}

impl<'de, 'c> de::EnumAccess<'de> for EnumAcc<'de, 'c> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let node = self.de.node;
        let v = seed
            .deserialize(BorrowedStrDeserializer::<Error>::new(self.variant))
            .map_err(|e| e.at(node))?;
        Ok((v, self))
    }
}

impl<'de, 'c> de::VariantAccess<'de> for EnumAcc<'de, 'c> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            Content::Nothing => Ok(()),
            Content::Items([]) => Ok(()),
            _ => Err(Error::at_pos(
                self.de.node.pos,
                format!("variant `{}` takes no value", self.variant),
                format!("write just `{}`", self.variant),
            )),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        let ctx = self.de.ctx;
        match self.content {
            Content::Items([item]) => seed
                .deserialize(NodeDe { node: item, ctx })
                .map_err(|e| e.at(item)),
            // `Crash(target: "db")` for a newtype variant wrapping a struct
            Content::Fields(_) => {
                let node = self.de.node;
                seed.deserialize(NodeDe { node, ctx })
                    .map_err(|e| e.at(node))
            }
            Content::Nothing => Err(Error::at_pos(
                self.de.node.pos,
                format!("variant `{}` needs a value", self.variant),
                format!("write `{}(...)`", self.variant),
            )),
            Content::Items(items) => Err(Error::at_pos(
                self.de.node.pos,
                format!(
                    "variant `{}` takes exactly one value, found {}",
                    self.variant,
                    items.len()
                ),
                format!("write `{}(value)` with one value", self.variant),
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.content {
            Content::Items(items) => self.de.seq(items, visitor),
            _ => Err(Error::at_pos(
                self.de.node.pos,
                format!("variant `{}` takes {len} values", self.variant),
                format!("write `{}({})`", self.variant, vec!["..."; len].join(", ")),
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let variant = self.variant;
        match self.content {
            Content::Fields(entries) => self.de.checked_fields(variant, fields, entries, visitor),
            // `Crash((target: "db"))`
            Content::Items([inner]) => match &inner.kind {
                NodeKind::Struct {
                    name: None,
                    fields: entries,
                } => {
                    let de = NodeDe {
                        node: inner,
                        ctx: self.de.ctx,
                    };
                    de.checked_fields(variant, fields, entries, visitor)
                        .map_err(|e| e.at(inner))
                }
                _ => Err(self.struct_variant_error(fields)),
            },
            Content::Items([]) => self.de.checked_fields(variant, fields, &[], visitor),
            _ => Err(self.struct_variant_error(fields)),
        }
    }
}

impl EnumAcc<'_, '_> {
    fn struct_variant_error(&self, fields: &[&str]) -> Error {
        let shown: Vec<String> = fields.iter().take(3).map(|f| format!("{f}: ...")).collect();
        let more = if fields.len() > 3 { ", ..." } else { "" };
        Error::at_pos(
            self.de.node.pos,
            format!("variant `{}` takes named fields", self.variant),
            format!("write `{}({}{more})`", self.variant, shown.join(", ")),
        )
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_types)] // tests deserialisation into HashMap on purpose
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use std::collections::{BTreeMap, HashMap};

    fn p(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }

    /// Seconds, written in the file as a string like "30m" (custom Deserialize impl).
    #[derive(Debug, PartialEq, Clone, Copy)]
    struct Dur(u64);

    impl<'de> Deserialize<'de> for Dur {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            let cut = s.char_indices().last().map_or(0, |(i, _)| i);
            let (num, unit) = (s.get(..cut).unwrap_or(""), s.get(cut..).unwrap_or(""));
            let n: u64 = num
                .parse()
                .map_err(|_| de::Error::custom(format!("invalid duration {s:?}")))?;
            match unit {
                "s" => Ok(Dur(n)),
                "m" => Ok(Dur(n * 60)),
                _ => Err(de::Error::custom(format!(
                    "invalid duration unit in {s:?}: use s or m"
                ))),
            }
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Scenario {
        name: String,
        seed: u64,
        services: Vec<Service>,
        #[serde(default)]
        faults: Vec<Policy>,
        #[serde(default)]
        retry: Option<Retry>,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        tags: BTreeMap<String, u32>,
        duration: Dur,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Service {
        name: String,
        capacity: u32,
        #[serde(default)]
        latency: f64,
        #[serde(default)]
        dependencies: Vec<String>,
        policy: Policy,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Policy {
        Full,
        Fixed(String),
        Pair(u8, i32),
        Crash { target: String },
        Wrapped(Inner),
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        factor: f64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Retry {
        count: u8,
        #[serde(default)]
        backoff: Option<f64>,
    }

    const DOC: &str = r#"// a realistic scenario
Scenario(
    name: "checkout ✓",
    seed: 42,
    services: [
        Service(name: "db", capacity: 100, latency: 0.5, policy: Full),
        (name: "api", capacity: 8, dependencies: ["db"], policy: Fixed("30m")),
        (name: "cache", capacity: 3, policy: Crash(target: "db")),
        (name: "lb", capacity: 1, policy: Pair(1, -2)),
        (name: "q", capacity: 1, policy: Wrapped((factor: 2)),),
    ],
    faults: [Full, Crash(target: "x")],
    retry: Some((count: 3, backoff: Some(1.5))),
    tags: {"a": 1, "b": 2},
    duration: "30m",
)"#;

    fn expected() -> Scenario {
        let svc = |name: &str, capacity: u32, policy: Policy| Service {
            name: name.to_string(),
            capacity,
            latency: 0.0,
            dependencies: vec![],
            policy,
        };
        Scenario {
            name: "checkout ✓".into(),
            seed: 42,
            services: vec![
                Service {
                    latency: 0.5,
                    ..svc("db", 100, Policy::Full)
                },
                Service {
                    dependencies: vec!["db".into()],
                    ..svc("api", 8, Policy::Fixed("30m".into()))
                },
                svc(
                    "cache",
                    3,
                    Policy::Crash {
                        target: "db".into(),
                    },
                ),
                svc("lb", 1, Policy::Pair(1, -2)),
                svc("q", 1, Policy::Wrapped(Inner { factor: 2.0 })),
            ],
            faults: vec![Policy::Full, Policy::Crash { target: "x".into() }],
            retry: Some(Retry {
                count: 3,
                backoff: Some(1.5),
            }),
            note: None,
            tags: [("a".to_string(), 1), ("b".to_string(), 2)].into(),
            duration: Dur(1800),
        }
    }

    fn errs<T: de::DeserializeOwned + fmt::Debug>(text: &str) -> Vec<DeError> {
        match from_str::<T>(text) {
            Ok(v) => panic!("expected errors, got {v:?}"),
            Err(e) => e,
        }
    }

    fn one<T: de::DeserializeOwned + fmt::Debug>(text: &str) -> DeError {
        let e = errs::<T>(text);
        assert_eq!(e.len(), 1, "{e:#?}");
        e.into_iter().next().unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn realistic_document() {
        assert_eq!(from_str::<Scenario>(DOC), Ok(expected()));
    }

    #[test]
    fn options_in_both_forms_and_defaults() {
        let base = r#"(name: "n", seed: 1, services: [], duration: "5s", RETRY)"#;
        let get = |r: &str| from_str::<Scenario>(&base.replace("RETRY", r)).map(|s| s.retry);
        let r3 = Some(Retry {
            count: 3,
            backoff: None,
        });
        assert_eq!(get("retry: Some((count: 3))"), Ok(r3));
        let r3 = Some(Retry {
            count: 3,
            backoff: None,
        });
        assert_eq!(get("retry: (count: 3)"), Ok(r3));
        assert_eq!(get("retry: None"), Ok(None));
        assert_eq!(get(""), Ok(None));
        let s = from_str::<Scenario>(&base.replace("RETRY", "note: \"hi\""));
        assert_eq!(
            s.map(|s| (s.note, s.faults, s.duration)),
            Ok((Some("hi".into()), vec![], Dur(5)))
        );
    }

    #[test]
    fn unknown_fields_in_different_structs_are_all_reported() {
        let text = DOC
            .replace("seed: 42", "sede: 42,\n    seed: 42")
            .replace("capacity: 8,", "capcity: 8, capacity: 8,")
            .replace("(count: 3,", "(count: 3, zzz: 1,");
        let e = errs::<Scenario>(&text);
        assert_eq!(e.len(), 3, "{e:#?}");
        assert_eq!(e[0].pos, p(4, 5));
        assert_eq!(e[0].message, "unknown field `sede` in `Scenario`");
        assert_eq!(e[0].hint, "did you mean `seed`?");
        assert_eq!(e[1].pos, p(8, 23));
        assert_eq!(e[1].message, "unknown field `capcity` in `Service`");
        assert_eq!(e[1].hint, "did you mean `capacity`?");
        assert_eq!(e[2].message, "unknown field `zzz` in `Retry`");
        assert_eq!(e[2].hint, "expected one of: `count`, `backoff`");
    }

    #[test]
    fn duplicate_field() {
        let text = DOC.replace("seed: 42,", "seed: 42, seed: 43,");
        let e = one::<Scenario>(&text);
        assert_eq!(e.pos, p(4, 15));
        assert_eq!(e.message, "duplicate field `seed`");
        assert!(e.hint.contains("4:5"), "{e:?}");
    }

    #[test]
    fn missing_field() {
        let text = DOC.replace("(name: \"cache\", capacity: 3, ", "(name: \"cache\", ");
        let e = one::<Scenario>(&text);
        assert_eq!(e.pos, p(8, 9));
        assert_eq!(e.message, "missing field `capacity` in `Service`");
        assert_eq!(e.hint, "add `capacity: ...`");
        // missing field of a struct variant
        let e = one::<Policy>("Crash()");
        assert_eq!(e.message, "missing field `target` in `Crash`");
    }

    #[test]
    fn unknown_fields_and_a_shape_error_together() {
        let text = DOC
            .replace("sede", "x")
            .replace("seed: 42", "sede: 42, seed: \"42\"");
        let e = errs::<Scenario>(&text);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!(e[0].message, "unknown field `sede` in `Scenario`");
        assert_eq!(e[1].pos, p(4, 21));
        assert_eq!(e[1].message, "expected an integer, found the string \"42\"");
    }

    #[test]
    fn wrong_types() {
        let e = one::<Scenario>(&DOC.replace("capacity: 8", "capacity: 1.5"));
        assert_eq!(
            (e.pos, e.message.as_str()),
            (p(7, 33), "expected an integer, found 1.5")
        );
        let e = one::<Scenario>(&DOC.replace("name: \"db\"", "name: db"));
        assert_eq!(e.pos, p(6, 23));
        assert_eq!(e.message, "expected a string, found `db`");
        assert_eq!(e.hint, "strings are written in double quotes: \"db\"");
        let e = one::<Scenario>(&DOC.replace("services: [", "services: 3, note: ["));
        assert!(e.message.starts_with("expected a list"), "{e:?}");
        assert_eq!(e.pos, p(5, 15));
        let e = one::<Scenario>(&DOC.replace("(name: \"lb\"", "Fixed(1, 2), (name: \"lb\""));
        assert_eq!(e.pos, p(9, 9));
        assert!(
            e.message.starts_with("expected a `Service` struct"),
            "{e:?}"
        );
        let e = one::<Vec<bool>>("[true, 1]");
        assert_eq!(
            (e.pos, e.message.as_str()),
            (p(1, 8), "expected `true` or `false`, found 1")
        );
        let e = one::<(u8, u8)>("(1, 2, 3)");
        assert!(e.message.contains("too many items"), "{e:?}");
        let e = one::<(u8, u8)>("(1)");
        assert_eq!(e.message, "expected a tuple of size 2, found 1 item");
    }

    #[test]
    fn unknown_variant_and_variant_shapes() {
        let e = one::<Scenario>(&DOC.replace("policy: Full", "policy: Ful"));
        assert_eq!(e.pos, p(6, 66));
        assert_eq!(e.message, "unknown variant `Ful` for `Policy`");
        assert_eq!(e.hint, "did you mean `Full`?");
        let e = one::<Policy>("Explode");
        assert_eq!(
            e.hint,
            "expected one of: `Full`, `Fixed`, `Pair`, `Crash`, `Wrapped`"
        );
        assert_eq!(
            one::<Policy>("Full(1)").message,
            "variant `Full` takes no value"
        );
        assert_eq!(
            one::<Policy>("Fixed").message,
            "variant `Fixed` needs a value"
        );
        assert_eq!(
            one::<Policy>("Pair").message,
            "variant `Pair` takes 2 values"
        );
        assert_eq!(
            one::<Policy>("Crash").message,
            "variant `Crash` takes named fields"
        );
        let e = errs::<Policy>("Crash(targt: \"x\")");
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].pos, p(1, 1));
        assert_eq!(e[0].message, "missing field `target` in `Crash`");
        assert_eq!(e[1].pos, p(1, 7));
        assert_eq!(e[1].message, "unknown field `targt` in `Crash`");
        assert_eq!(e[1].hint, "did you mean `target`?");
        // accepted alternative spellings
        assert_eq!(from_str::<Policy>("\"Full\""), Ok(Policy::Full));
        assert_eq!(from_str::<Policy>("Full()"), Ok(Policy::Full));
        assert_eq!(
            from_str::<Policy>("Crash((target: \"a\"))"),
            Ok(Policy::Crash { target: "a".into() })
        );
        assert_eq!(
            from_str::<Policy>("Wrapped(factor: 1)"),
            Ok(Policy::Wrapped(Inner { factor: 1.0 }))
        );
    }

    #[test]
    fn integer_out_of_range() {
        let e = one::<Scenario>(&DOC.replace("count: 3", "count: 300"));
        assert_eq!(e.pos, p(13, 25));
        assert_eq!(
            e.message,
            "integer 300 is out of range: it must be between 0 and 255"
        );
        let e = one::<i8>("-129");
        assert!(e.message.contains("between -128 and 127"), "{e:?}");
        assert_eq!(from_str::<u128>("0xFF"), Ok(255));
        assert_eq!(from_str::<f32>("3"), Ok(3.0));
    }

    #[test]
    fn custom_error_gets_the_value_position() {
        let e = one::<Scenario>(&DOC.replace("\"30m\",\n)", "\"30h\",\n)"));
        assert_eq!(e.pos, p(15, 15));
        assert_eq!(e.message, "invalid duration unit in \"30h\": use s or m");
        let e = one::<Vec<Dur>>("[\"1s\",\n  \"xm\"]");
        assert_eq!(
            (e.pos, e.message.as_str()),
            (p(2, 3), "invalid duration \"xm\"")
        );
    }

    #[test]
    fn syntax_errors_become_de_errors() {
        let e = one::<Scenario>("(name: \"x)");
        assert_eq!(e.pos, p(1, 8));
        assert_eq!(e.message, "unterminated string (opened here)");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Any {
        Unit(()),
        B(bool),
        I(i64),
        F(f64),
        S(String),
        L(Vec<Any>),
        M(BTreeMap<String, Any>),
        Opt(Option<i64>),
    }

    #[test]
    fn deserialize_any_handles_every_kind() {
        let v = from_str::<Any>(
            r#"(a: 1, b: [true, 2.5, "s", Ident], c: (), d: (1, 2), e: Some(3), f: None, g: {"k": Name(x: 1)})"#,
        );
        for part in [
            "(a: 1)",
            "[true, 2.5, \"s\", Ident]",
            "()",
            "(1, 2)",
            "None",
            "{\"k\": Name(x: 1)}",
        ] {
            let r = from_str::<Any>(part);
            assert!(r.is_ok(), "{part}: {r:?}");
        }
        let Ok(Any::M(m)) = v else { panic!("{v:?}") };
        assert_eq!(m.get("a"), Some(&Any::I(1)));
        assert_eq!(
            m.get("b"),
            Some(&Any::L(vec![
                Any::B(true),
                Any::F(2.5),
                Any::S("s".into()),
                Any::S("Ident".into()),
            ]))
        );
        assert_eq!(m.get("c"), Some(&Any::Unit(())));
        assert_eq!(m.get("d"), Some(&Any::L(vec![Any::I(1), Any::I(2)])));
        assert_eq!(m.get("e"), Some(&Any::Opt(Some(3))));
        assert_eq!(m.get("f"), Some(&Any::Opt(None)));
        assert!(matches!(m.get("g"), Some(Any::M(_))));
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Misc {
        ch: char,
        pair: (u8, String),
        arr: [i16; 3],
        hm: HashMap<String, Vec<u8>>,
        unit: (),
        marker: Marker,
        meters: Meters,
        big: i64,
        neg: i32,
        f: f32,
        opt: Option<Option<u8>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Marker;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Meters(u32);

    const MISC: &str = r#"#![enable(implicit_some)]
Misc(
    ch: 'x',
    pair: (7, "seven"),
    arr: (1, -2, 0x3),
    hm: {"a": [1, 2], "b": []},
    unit: (),
    marker: Marker,
    meters: Meters(5),
    big: -9223372036854775808,
    neg: -5,
    f: 1e3,
    opt: Some(None),
)"#;

    #[test]
    fn cross_check_with_ron() {
        let ours = from_str::<Scenario>(DOC);
        let theirs = ron::from_str::<Scenario>(DOC).map_err(|e| e.to_string());
        assert_eq!(ours.as_ref().ok(), theirs.as_ref().ok());
        assert!(ours.is_ok());

        let ours = from_str::<Misc>(MISC);
        let theirs = ron::from_str::<Misc>(MISC).map_err(|e| e.to_string());
        assert!(ours.is_ok(), "{ours:?}");
        assert!(theirs.is_ok(), "{theirs:?}");
        assert_eq!(ours.ok(), theirs.ok());

        for doc in [
            "[Full, Fixed(\"a\"), Pair(3, 4), Crash(target: \"t\"), Wrapped((factor: 0.5))]",
            "[Pair(0, -2147483648), Fixed(r#\"raw \"q\"\"#)]",
        ] {
            let ours = from_str::<Vec<Policy>>(doc);
            let theirs = ron::from_str::<Vec<Policy>>(doc).map_err(|e| e.to_string());
            assert!(ours.is_ok(), "{ours:?}");
            assert_eq!(ours.ok(), theirs.ok(), "{doc}");
        }
        for doc in ["{1: \"a\", 2: \"b\"}", "{}"] {
            let ours = from_str::<BTreeMap<u8, String>>(doc);
            let theirs = ron::from_str::<BTreeMap<u8, String>>(doc).map_err(|e| e.to_string());
            assert_eq!(ours.ok(), theirs.ok(), "{doc}");
        }
        let doc = "(1, 'c', \"s\", true, [1.5, 2], ())";
        type Tup = (i64, char, String, bool, Vec<f64>, ());
        let ours = from_str::<Tup>(doc);
        let theirs = ron::from_str::<Tup>(doc).map_err(|e| e.to_string());
        assert!(ours.is_ok());
        assert_eq!(ours.ok(), theirs.ok());
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let text = "(".repeat(10_000);
        let e = one::<Any>(&text);
        assert!(e.message.contains("nested too deeply"));
        // at the limit, deserializing a recursive type still works without overflowing
        let depth = ron_tree::MAX_DEPTH - 1;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(from_str::<Any>(&text).is_ok());
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

    fn check_errors_are_sane(result: Result<Scenario, Vec<DeError>>) {
        if let Err(errors) = result {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.pos.line >= 1 && e.pos.col >= 1, "{e:?}");
                assert!(!e.message.is_empty());
            }
        }
    }

    proptest! {
        #[test]
        fn from_str_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            check_errors_are_sane(from_str::<Scenario>(&text));
            let _ = from_str::<Any>(&text);
        }

        #[test]
        fn from_str_never_panics_on_mutations(
            ops in proptest::collection::vec((0u8..3, any::<usize>(), prop_oneof![
                any::<char>(),
                proptest::sample::select(vec!['(', ')', '[', ']', '{', '}', ',', ':', '"', '1', 'x', ' ', '-', '.']),
            ]), 1..6)
        ) {
            let text = mutate(DOC, &ops);
            check_errors_are_sane(from_str::<Scenario>(&text));
            let _ = from_str::<Any>(&text);
            let _ = from_str::<Misc>(&mutate(MISC, &ops));
        }
    }
}
