//! Schema introspection: every field of the scenario file, enumerated from the serde derive of
//! [`RawScenario`] itself, so that a field added to [`super::raw`] appears here without any list
//! to update.
//!
//! How: a recording [`serde::Deserializer`] ([`Schema::of`]) is handed to the type's derived
//! `Deserialize`. Each `deserialize_struct(name, fields, ..)` and `deserialize_enum(name,
//! variants, ..)` call records the static field and variant names, then feeds the visitor a value
//! for every field (one element for a list, `Some` for an option, zero for a number) so that it
//! descends into every nested type. A visitor can take one variant per call, so the whole type
//! is deserialized again until every variant of every enum, at every place it occurs, has been
//! entered (an enum nested in a variant is explored under each variant that holds it).
//!
//! Strings are told apart by their type: [`RawDuration`] is a duration, [`RawText`] free text,
//! [`RawDist`] a duration distribution; a plain `String` is a name or a reference to one.
//!
//! Paths are patterns: fields joined with `.`, list elements as `[]`, an enum variant's content
//! under the variant's name, a tuple or newtype variant's values as `.0`, `.1`
//! (`dependencies[].retry.jitter`, `plans[].strategy.Staged.stages[].duration`,
//! `dependencies[].breaker.release.Rate.0`). [`Schema::pattern_of`] maps a path into a file (as
//! `aftershock sweep --set` takes it, `dependencies[3].retry.jitter`) to its pattern.
//!
//! Invariants: entries come in declaration order (fields in file order, variants in declaration
//! order, depth first); every variant of every enum is present with its form; the walk never
//! panics and fails with the path where a type cannot be enumerated (a self-describing type).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

use super::raw::{RawDist, RawDuration, RawScenario, RawText};
use super::ron_tree::{Node, NodeKind};
use crate::sweep::{self, Step};

/// Most times the type is walked before giving up (each walk enters at least one new variant).
const MAX_PASSES: usize = 10_000;
/// Deepest nesting of types (a recursive type would otherwise never end).
const MAX_DEPTH: usize = 64;

/// What a setting holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A number; the Rust type (`f64`, `u32`, `u64`, ...).
    Number(&'static str),
    /// `true` or `false`.
    Bool,
    /// A duration written as a string, such as `"30s"`.
    Duration,
    /// A duration distribution: `Fixed`, `Uniform`, `Exponential` or `LogNormal`.
    DurationDist,
    /// One of a fixed set of variants.
    Enum {
        /// The Rust type.
        name: &'static str,
        /// Its variants, in declaration order.
        variants: Vec<Variant>,
    },
    /// The name of something, or a reference to one by name (a service, a zone, a failure).
    Name,
    /// Free text, or an expression with its own parser (an expectation).
    Text,
    /// A list; its elements are the entry at `path[]`.
    List,
    /// A struct; its fields are the entries at `path.field`.
    Struct {
        /// The Rust type.
        name: &'static str,
        /// Its fields, in declaration order.
        fields: Vec<&'static str>,
    },
    /// A tuple; its values are the entries at `path.0`, `path.1`, ...
    Tuple(usize),
    /// A map; its keys are the entry at `path{key}`, its values the entry at `path{}`.
    Map,
    /// Anything else serde can name (a char, bytes, a unit).
    Other(&'static str),
}

/// One variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Its name, as written in files.
    pub name: &'static str,
    /// What follows the name.
    pub form: Form,
}

/// What follows a variant's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// Nothing: `Full`.
    Unit,
    /// One value: `Rate(500.0)`, at `path.Variant.0`.
    Newtype,
    /// Several values: `Pair(1, 2)`, at `path.Variant.0`, `path.Variant.1`, ...
    Tuple(usize),
    /// Named fields: `Crash(target: "db")`, at `path.Variant.field`.
    Struct(Vec<&'static str>),
}

impl Kind {
    /// Whether the kind is a value a user tunes (number, bool, duration, duration distribution,
    /// enum), as opposed to a name, text or a container.
    pub fn is_value(&self) -> bool {
        matches!(
            self,
            Kind::Number(_) | Kind::Bool | Kind::Duration | Kind::DurationDist | Kind::Enum { .. }
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Number(t) => write!(f, "number ({t})"),
            Kind::Bool => f.write_str("bool"),
            Kind::Duration => f.write_str("duration"),
            Kind::DurationDist => f.write_str("duration distribution"),
            Kind::Enum { name, variants } => {
                let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
                write!(f, "enum {name}: {}", names.join(" | "))
            }
            Kind::Name => f.write_str("name"),
            Kind::Text => f.write_str("text"),
            Kind::List => f.write_str("list"),
            Kind::Struct { name, .. } => write!(f, "struct {name}"),
            Kind::Tuple(n) => write!(f, "tuple of {n}"),
            Kind::Map => f.write_str("map"),
            Kind::Other(what) => f.write_str(what),
        }
    }
}

/// One field (or list element, or variant content) of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path pattern, e.g. `dependencies[].retry.jitter`.
    pub path: String,
    /// What it holds.
    pub kind: Kind,
    /// Written as an `Option` (it may be left out, or written `None`).
    pub optional: bool,
}

/// Why a type could not be enumerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Where in the type (a path pattern; empty at the root).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at `{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SchemaError {}

impl de::Error for SchemaError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SchemaError {
            path: String::new(),
            message: msg.to_string(),
        }
    }
}

/// Every field of a type, as [`Entry`]s in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The root type (a struct or an enum); not an entry itself.
    root: Kind,
    entries: Vec<Entry>,
}

impl Schema {
    /// The schema of scenario files.
    pub fn scenario() -> Schema {
        match Schema::of::<RawScenario>() {
            Ok(s) => s,
            // The scenario types are plain derives; a unit test walks them.
            Err(e) => panic!("the scenario schema cannot be enumerated: {e}"),
        }
    }

    /// The schema of any type whose `Deserialize` is not self-describing (no `untagged` enums,
    /// no `deserialize_any`).
    pub fn of<T: DeserializeOwned>() -> Result<Schema, SchemaError> {
        let walk = Walk::default();
        for _ in 0..MAX_PASSES {
            T::deserialize(Rec {
                walk: &walk,
                path: String::new(),
                quiet: false,
                depth: 0,
            })
            .map(drop)?;
            if walk.complete() {
                return walk.build();
            }
        }
        Err(SchemaError {
            path: String::new(),
            message: format!("the variants could not all be entered in {MAX_PASSES} walks"),
        })
    }

    /// Every entry, depth first in declaration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at a path pattern.
    pub fn get(&self, pattern: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == pattern)
    }

    /// The entries a user tunes ([`Kind::is_value`]).
    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind.is_value())
    }

    /// The variants of an enum entry that are a value choice: those whose content holds no
    /// value of its own (unit variants, and variants holding only names, such as
    /// `Crash(target)`). The other variants act through their values, which are entries
    /// themselves. Empty for any other kind.
    pub fn value_choices(&self, entry: &Entry) -> Vec<&'static str> {
        let Kind::Enum { variants, .. } = &entry.kind else {
            return Vec::new();
        };
        variants
            .iter()
            .filter(|v| {
                let inside = format!("{}.", join(&entry.path, v.name));
                !self
                    .values()
                    .any(|e| e.path.starts_with(&inside) && e.path.len() > inside.len())
            })
            .map(|v| v.name)
            .collect()
    }

    /// The pattern of a path into a file, e.g. `dependencies[3].retry.jitter` (as
    /// `aftershock sweep --set` takes it) in `root` (the file's tree) gives
    /// `dependencies[].retry.jitter`; `plans[2].strategy.steps[0]` gives
    /// `plans[].strategy.Custom.steps[]` when plan 2 is a `Custom` one. The variants are read
    /// from the file; a newtype variant's value can be addressed with `.0` or looked through.
    pub fn pattern_of(&self, root: &Node, steps: &[Step]) -> Result<String, String> {
        let mut pattern = String::new();
        let mut i = 0;
        // Newtype variants looked through without a `.0` step since the last step.
        let mut through = 0;
        loop {
            let kind = if pattern.is_empty() {
                &self.root
            } else {
                match self.get(&pattern) {
                    Some(e) => &e.kind,
                    None => return Err(format!("the schema has no `{pattern}`")),
                }
            };
            if i == steps.len() {
                return Ok(pattern);
            }
            let here = || sweep::fmt_path(&steps[..i]);
            if let Kind::Enum { variants, .. } = kind {
                let mut node = sweep::resolve(root, &steps[..i]).map_err(|e| e.message)?;
                for _ in 0..through {
                    node = single_item(node).unwrap_or(node);
                }
                let written = variant_name(node)
                    .ok_or_else(|| format!("`{}` is not a variant in the file", here()))?;
                let Some(v) = variants.iter().find(|v| v.name == written) else {
                    return Err(format!(
                        "`{}`: no variant `{written}` in the schema",
                        here()
                    ));
                };
                pattern = join(&pattern, v.name);
                match &v.form {
                    Form::Unit => {
                        return Err(format!("`{}` is `{written}`, which holds nothing", here()));
                    }
                    Form::Newtype => {
                        pattern = join(&pattern, "0");
                        if steps[i] == Step::Field("0".into()) {
                            i += 1;
                            through = 0;
                        } else {
                            through += 1;
                        }
                        continue;
                    }
                    Form::Tuple(_) | Form::Struct(_) => {}
                }
            } else {
                match (kind, &steps[i]) {
                    (Kind::List, Step::Index(_) | Step::Name(_)) => {
                        pattern.push_str("[]");
                        i += 1;
                        through = 0;
                        continue;
                    }
                    (Kind::Struct { .. } | Kind::Tuple(_), Step::Field(_)) => {}
                    _ => {
                        return Err(format!(
                            "`{}` ({kind}) has no `{}`",
                            here(),
                            sweep::fmt_path(std::slice::from_ref(&steps[i]))
                        ));
                    }
                }
            }
            let Step::Field(f) = &steps[i] else {
                return Err(format!("`{}` is not a list", here()));
            };
            pattern = join(&pattern, f);
            if self.get(&pattern).is_none() {
                return Err(format!("`{}` has no field `{f}`", here()));
            }
            i += 1;
            through = 0;
        }
    }
}

/// The variant name a node is written with: `Full`, `Rate(...)`, `Crash(...)`.
fn variant_name(n: &Node) -> Option<&str> {
    match &n.kind {
        NodeKind::Ident(s) | NodeKind::Str(s) => Some(s),
        NodeKind::Tuple { name: Some(s), .. } | NodeKind::Struct { name: Some(s), .. } => Some(s),
        // A unit variant named `None` (`jitter: None`) parses as an empty option.
        NodeKind::Option(None) => Some("None"),
        NodeKind::Option(Some(inner)) => variant_name(inner),
        _ => None,
    }
}

/// The content of a one-value tuple (a newtype variant's value).
fn single_item(n: &Node) -> Option<&Node> {
    match &n.kind {
        NodeKind::Tuple { items, .. } if items.len() == 1 => items.first(),
        NodeKind::Option(Some(inner)) => single_item(inner),
        _ => None,
    }
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

// ---------------------------------------------------------------------------------------------
// The recording deserializer
// ---------------------------------------------------------------------------------------------

/// What was recorded at a path.
#[derive(Debug, Clone)]
enum Shape {
    Leaf(Kind),
    Struct(&'static str, &'static [&'static str]),
    Enum(&'static str, &'static [&'static str]),
    Variant(Form),
    List,
    Tuple(usize),
    Map,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    optional: bool,
    shape: Option<Shape>,
}

/// An enum's variants, and the indices of those entered so far.
type Entered = (&'static [&'static str], BTreeSet<usize>);

/// State shared by every walk of the type.
#[derive(Default)]
struct Walk {
    slots: RefCell<BTreeMap<String, Slot>>,
    /// Per enum path: its variants and those entered.
    enums: RefCell<BTreeMap<String, Entered>>,
}

impl Walk {
    fn record(&self, path: &str, shape: Shape) {
        let mut slots = self.slots.borrow_mut();
        let slot = slots.entry(path.to_string()).or_default();
        if slot.shape.is_none() {
            slot.shape = Some(shape);
        }
    }

    fn optional(&self, path: &str) {
        self.slots
            .borrow_mut()
            .entry(path.to_string())
            .or_default()
            .optional = true;
    }

    /// Whether an enum below `prefix` still has a variant never entered.
    fn open_below(&self, prefix: &str) -> bool {
        self.enums
            .borrow()
            .iter()
            .any(|(p, (all, seen))| p.starts_with(prefix) && seen.len() < all.len())
    }

    /// The variant to enter at `path` in this walk: the first never entered, or holding an
    /// enum with a variant never entered; the first when all are done.
    fn choose(&self, path: &str, variants: &'static [&'static str]) -> usize {
        let pick = (0..variants.len())
            .find(|&i| {
                let seen = self
                    .enums
                    .borrow()
                    .get(path)
                    .is_some_and(|(_, s)| s.contains(&i));
                !seen || self.open_below(&format!("{}.", join(path, variants[i])))
            })
            .unwrap_or(0);
        self.enums
            .borrow_mut()
            .entry(path.to_string())
            .or_insert_with(|| (variants, BTreeSet::new()))
            .1
            .insert(pick);
        pick
    }

    fn complete(&self) -> bool {
        self.enums
            .borrow()
            .values()
            .all(|(all, seen)| seen.len() == all.len())
    }

    fn build(&self) -> Result<Schema, SchemaError> {
        let slots = self.slots.borrow();
        let root = match slots.get("").and_then(|s| s.shape.clone()) {
            Some(Shape::Struct(name, fields)) => Kind::Struct {
                name,
                fields: fields.to_vec(),
            },
            Some(Shape::Enum(name, variants)) => Kind::Enum {
                name,
                variants: variants_at(&slots, "", variants)?,
            },
            _ => {
                return Err(SchemaError {
                    path: String::new(),
                    message: "the root type is neither a struct nor an enum".into(),
                });
            }
        };
        let mut entries = Vec::new();
        children(&slots, "", &mut entries)?;
        Ok(Schema { root, entries })
    }
}

/// The variants of the enum at `path` with their recorded forms.
fn variants_at(
    slots: &BTreeMap<String, Slot>,
    path: &str,
    names: &'static [&'static str],
) -> Result<Vec<Variant>, SchemaError> {
    names
        .iter()
        .map(
            |&name| match slots.get(&join(path, name)).and_then(|s| s.shape.clone()) {
                Some(Shape::Variant(form)) => Ok(Variant { name, form }),
                _ => Err(SchemaError {
                    path: join(path, name),
                    message: "this variant was never entered".into(),
                }),
            },
        )
        .collect()
}

/// Appends the entries below `path` (its fields, element, values or variant contents).
fn children(
    slots: &BTreeMap<String, Slot>,
    path: &str,
    out: &mut Vec<Entry>,
) -> Result<(), SchemaError> {
    let shape = slots.get(path).and_then(|s| s.shape.clone());
    match shape {
        Some(Shape::Struct(_, fields)) => {
            for f in fields {
                entry(slots, &join(path, f), out)?;
            }
        }
        Some(Shape::Enum(_, variants)) => {
            for v in variants_at(slots, path, variants)? {
                let at = join(path, v.name);
                match v.form {
                    Form::Unit => {}
                    Form::Newtype => entry(slots, &join(&at, "0"), out)?,
                    Form::Tuple(n) => {
                        for k in 0..n {
                            entry(slots, &join(&at, &k.to_string()), out)?;
                        }
                    }
                    Form::Struct(fields) => {
                        for f in fields {
                            entry(slots, &join(&at, f), out)?;
                        }
                    }
                }
            }
        }
        Some(Shape::List) => entry(slots, &format!("{path}[]"), out)?,
        Some(Shape::Tuple(n)) => {
            for k in 0..n {
                entry(slots, &join(path, &k.to_string()), out)?;
            }
        }
        Some(Shape::Map) => {
            entry(slots, &format!("{path}{{key}}"), out)?;
            entry(slots, &format!("{path}{{}}"), out)?;
        }
        Some(Shape::Leaf(_) | Shape::Variant(_)) | None => {}
    }
    Ok(())
}

/// Appends the entry at `path`, then its children.
fn entry(
    slots: &BTreeMap<String, Slot>,
    path: &str,
    out: &mut Vec<Entry>,
) -> Result<(), SchemaError> {
    let Some(slot) = slots.get(path) else {
        return Err(SchemaError {
            path: path.to_string(),
            message: "nothing was recorded here".into(),
        });
    };
    let kind = match &slot.shape {
        Some(Shape::Leaf(k)) => k.clone(),
        Some(Shape::Struct(name, fields)) => Kind::Struct {
            name,
            fields: fields.to_vec(),
        },
        Some(Shape::Enum(name, variants)) => Kind::Enum {
            name,
            variants: variants_at(slots, path, variants)?,
        },
        Some(Shape::List) => Kind::List,
        Some(Shape::Tuple(n)) => Kind::Tuple(*n),
        Some(Shape::Map) => Kind::Map,
        Some(Shape::Variant(_)) | None => {
            return Err(SchemaError {
                path: path.to_string(),
                message: "no type was recorded here".into(),
            });
        }
    };
    out.push(Entry {
        path: path.to_string(),
        kind,
        optional: slot.optional,
    });
    children(slots, path, out)
}

/// The recording deserializer at one path. `quiet` walks without recording (inside a type
/// that is one leaf of the schema, such as a duration distribution).
struct Rec<'w> {
    walk: &'w Walk,
    path: String,
    quiet: bool,
    depth: usize,
}

impl<'w> Rec<'w> {
    fn at(&self, path: String) -> Rec<'w> {
        Rec {
            walk: self.walk,
            path,
            quiet: self.quiet,
            depth: self.depth + 1,
        }
    }

    fn quiet(self) -> Rec<'w> {
        Rec {
            quiet: true,
            ..self
        }
    }

    fn record(&self, shape: Shape) {
        if !self.quiet {
            self.walk.record(&self.path, shape);
        }
    }

    fn leaf(&self, kind: Kind) {
        self.record(Shape::Leaf(kind));
    }

    fn error(&self, message: impl Into<String>) -> SchemaError {
        SchemaError {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// A sequence access that deserializes the values at `paths`, in order.
    fn items(&self, paths: Vec<String>) -> Items<'w> {
        Items {
            walk: self.walk,
            paths: paths.into_iter(),
            quiet: self.quiet,
            depth: self.depth + 1,
        }
    }

    fn deeper(&self) -> Result<(), SchemaError> {
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "types nest more than {MAX_DEPTH} deep (a recursive type cannot be enumerated)"
            )));
        }
        Ok(())
    }
}

macro_rules! number {
    ($method:ident, $visit:ident, $ty:ty, $zero:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
            self.leaf(Kind::Number(stringify!($ty)));
            visitor.$visit($zero)
        }
    };
}

impl<'de, 'w> de::Deserializer<'de> for Rec<'w> {
    type Error = SchemaError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, SchemaError> {
        Err(self.error(
            "a self-describing type (untagged enum or `deserialize_any`) cannot be enumerated",
        ))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.leaf(Kind::Bool);
        visitor.visit_bool(false)
    }

    number!(deserialize_i8, visit_i8, i8, 0);
    number!(deserialize_i16, visit_i16, i16, 0);
    number!(deserialize_i32, visit_i32, i32, 0);
    number!(deserialize_i64, visit_i64, i64, 0);
    number!(deserialize_i128, visit_i128, i128, 0);
    number!(deserialize_u8, visit_u8, u8, 0);
    number!(deserialize_u16, visit_u16, u16, 0);
    number!(deserialize_u32, visit_u32, u32, 0);
    number!(deserialize_u64, visit_u64, u64, 0);
    number!(deserialize_u128, visit_u128, u128, 0);
    number!(deserialize_f32, visit_f32, f32, 0.0);
    number!(deserialize_f64, visit_f64, f64, 0.0);

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.leaf(Kind::Other("char"));
        visitor.visit_char(' ')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.leaf(Kind::Name);
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.leaf(Kind::Other("bytes"));
        visitor.visit_bytes(&[])
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        if !self.quiet {
            self.walk.optional(&self.path);
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.leaf(Kind::Other("unit"));
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        let leaf = if name == RawDuration::SERDE_NAME {
            Some(Kind::Duration)
        } else if name == RawText::SERDE_NAME {
            Some(Kind::Text)
        } else {
            None
        };
        match leaf {
            Some(kind) => {
                self.leaf(kind);
                visitor.visit_newtype_struct(self.quiet())
            }
            // Any other newtype is transparent: its content is recorded at its path.
            None => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.deeper()?;
        self.record(Shape::List);
        let items = self.items(vec![format!("{}[]", self.path)]);
        visitor.visit_seq(items)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        self.deeper()?;
        self.record(Shape::Tuple(len));
        let items = self.items((0..len).map(|k| join(&self.path, &k.to_string())).collect());
        visitor.visit_seq(items)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        self.deeper()?;
        self.record(Shape::Map);
        visitor.visit_map(OneEntry {
            key: Some(self.at(format!("{}{{key}}", self.path))),
            value: Some(self.at(format!("{}{{}}", self.path))),
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        self.deeper()?;
        self.record(Shape::Struct(name, fields));
        let items = self.items(fields.iter().map(|f| join(&self.path, f)).collect());
        visitor.visit_seq(items)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        self.deeper()?;
        if variants.is_empty() {
            return Err(self.error(format!("the enum `{name}` has no variant")));
        }
        if name == RawDist::SERDE_NAME && !self.quiet {
            self.leaf(Kind::DurationDist);
            return self.quiet().deserialize_enum(name, variants, visitor);
        }
        let index = if self.quiet {
            0
        } else {
            self.record(Shape::Enum(name, variants));
            self.walk.choose(&self.path, variants)
        };
        visitor.visit_enum(Choice {
            rec: self,
            variant: variants[index],
        })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, SchemaError> {
        Err(self.error("an identifier is not a value"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        visitor.visit_unit()
    }
}

/// The values of a struct, tuple or list, one per path.
struct Items<'w> {
    walk: &'w Walk,
    paths: std::vec::IntoIter<String>,
    quiet: bool,
    depth: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = SchemaError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, SchemaError> {
        match self.paths.next() {
            None => Ok(None),
            Some(path) => seed
                .deserialize(Rec {
                    walk: self.walk,
                    path,
                    quiet: self.quiet,
                    depth: self.depth,
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.paths.len())
    }
}

/// A map with one entry.
struct OneEntry<'w> {
    key: Option<Rec<'w>>,
    value: Option<Rec<'w>>,
}

impl<'de> de::MapAccess<'de> for OneEntry<'_> {
    type Error = SchemaError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SchemaError> {
        self.key.take().map(|k| seed.deserialize(k)).transpose()
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, SchemaError> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::custom("a map value was asked for twice")),
        }
    }
}

/// The variant entered in this walk.
struct Choice<'w> {
    rec: Rec<'w>,
    variant: &'static str,
}

impl<'de, 'w> de::EnumAccess<'de> for Choice<'w> {
    type Error = SchemaError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), SchemaError> {
        let v = seed.deserialize(BorrowedStrDeserializer::<SchemaError>::new(self.variant))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Choice<'_> {
    type Error = SchemaError;

    fn unit_variant(self) -> Result<(), SchemaError> {
        self.form(Form::Unit);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, SchemaError> {
        self.form(Form::Newtype);
        let at = join(&self.inside(), "0");
        seed.deserialize(self.rec.at(at))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        self.form(Form::Tuple(len));
        let inside = self.inside();
        let items = self
            .rec
            .items((0..len).map(|k| join(&inside, &k.to_string())).collect());
        visitor.visit_seq(items)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        self.form(Form::Struct(fields.to_vec()));
        let inside = self.inside();
        let items = self
            .rec
            .items(fields.iter().map(|f| join(&inside, f)).collect());
        visitor.visit_seq(items)
    }
}

impl Choice<'_> {
    /// The path of the variant's content.
    fn inside(&self) -> String {
        join(&self.rec.path, self.variant)
    }

    fn form(&self, form: Form) {
        if !self.rec.quiet {
            self.rec.walk.record(&self.inside(), Shape::Variant(form));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn kind<'a>(s: &'a Schema, path: &str) -> &'a Kind {
        &s.get(path)
            .unwrap_or_else(|| panic!("no entry `{path}`"))
            .kind
    }

    #[test]
    fn finds_the_retry_and_breaker_settings() {
        let s = Schema::scenario();
        assert_eq!(
            kind(&s, "dependencies[].breaker.half_open_probes"),
            &Kind::Number("u32")
        );
        let Kind::Enum { name, variants } = kind(&s, "dependencies[].retry.jitter") else {
            panic!("jitter is not an enum");
        };
        assert_eq!(*name, "RawJitter");
        let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
        assert_eq!(names, ["None", "Full", "Equal", "Decorrelated"]);
        assert!(variants.iter().all(|v| v.form == Form::Unit));
        assert_eq!(
            kind(&s, "dependencies[].retry.backoff_cap"),
            &Kind::Duration
        );
        assert_eq!(kind(&s, "dependencies[].calls"), &Kind::Number("f64"));
        assert!(s.get("dependencies[].calls").is_some_and(|e| e.optional));
        assert!(
            s.get("dependencies[].retry.jitter")
                .is_some_and(|e| !e.optional)
        );
        assert_eq!(
            kind(&s, "dependencies[].breaker.release.Rate.0"),
            &Kind::Number("f64")
        ); // The engine is a top-level choice, optional (flow by default).
        let Kind::Enum { name, variants } = kind(&s, "engine") else {
            panic!("engine is not an enum");
        };
        assert_eq!(*name, "RawEngine");
        let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
        assert_eq!(names, ["Flow", "Requests"]);
        assert!(s.get("engine").is_some_and(|e| e.optional));
    }

    #[test]
    fn strings_are_typed() {
        let s = Schema::scenario();
        for (path, want) in [
            ("horizon", Kind::Duration),
            ("resolution", Kind::Duration),
            ("seed", Kind::Number("u64")),
            ("name", Kind::Name),
            ("description", Kind::Text),
            ("expectations[]", Kind::Text),
            ("services[].zones[]", Kind::Name),
            ("dependencies[].from", Kind::Name),
            ("failures[].kind.Latency.added", Kind::Duration),
            ("failures[].kind.Crash.target", Kind::Name),
            ("failures[].schedule.Once.duration", Kind::DurationDist),
            (
                "plans[].strategy.Custom.steps[].InvalidateCaches.0",
                Kind::Duration,
            ),
            ("plans[].strategy.Custom.steps[].Gate.0", Kind::DurationDist),
            ("plans[].strategy.Custom.steps[].Restore.0[]", Kind::Name),
            (
                "services[].roles[].Discovery.register_time",
                Kind::DurationDist,
            ),
        ] {
            assert_eq!(kind(&s, path), &want, "{path}");
        }
        // A distribution is one leaf: its own durations are not entries.
        assert!(s.entries().iter().all(|e| !e.path.contains(".Fixed")));
    }

    #[test]
    fn every_variant_is_entered_with_its_form() {
        let s = Schema::scenario();
        let steps = s.get("plans[].strategy.Custom.steps[]").unwrap();
        let Kind::Enum { variants, .. } = &steps.kind else {
            panic!("steps are not an enum")
        };
        assert_eq!(variants.len(), 11);
        let form = |n: &str| &variants.iter().find(|v| v.name == n).unwrap().form;
        assert_eq!(form("RestoreAll"), &Form::Unit);
        assert_eq!(form("Restore"), &Form::Newtype);
        assert_eq!(form("Gate"), &Form::Newtype);
        // An enum nested in a variant (the ramp's shape in `RampTraffic`) is entered too.
        assert!(matches!(
            kind(&s, "plans[].strategy.Custom.steps[].RampTraffic.0.shape"),
            Kind::Enum { .. }
        ));
        assert!(matches!(
            kind(&s, "plans[].strategy.Staged.stages[].ramp.shape"),
            Kind::Enum { .. }
        ));
        assert_eq!(
            kind(&s, "failures[].kind.Partial.capacity"),
            &Kind::Number("f64")
        );
        assert_eq!(
            kind(&s, "plans[].strategy.Staged.stages[].duration"),
            &Kind::DurationDist
        );
        // Every enum's variants all have recorded forms, and every path is unique.
        let mut seen = BTreeSet::new();
        for e in s.entries() {
            assert!(seen.insert(e.path.clone()), "{} twice", e.path);
        }
    }

    #[test]
    fn value_choices_are_the_variants_without_values() {
        let s = Schema::scenario();
        let choices = |p: &str| s.value_choices(s.get(p).unwrap());
        assert_eq!(
            choices("dependencies[].retry.jitter"),
            ["None", "Full", "Equal", "Decorrelated"]
        );
        assert_eq!(choices("dependencies[].breaker.release"), ["AllAtOnce"]);
        // `LogNormal` holds a value (`cv`), so it is not a choice of its own.
        assert_eq!(choices("services[].service_time"), ["Exponential", "Fixed"]);
        assert_eq!(
            kind(&s, "services[].service_time.LogNormal.cv"),
            &Kind::Number("f64")
        );
        assert_eq!(kind(&s, "services[].drop_expired"), &Kind::Bool);
        assert_eq!(
            kind(&s, "failures[].kind.ErrorRate.share"),
            &Kind::Number("f64")
        );
        assert_eq!(
            choices("failures[].kind"),
            ["Crash", "Partition", "Zone", "KeyRotation"]
        );
        assert_eq!(
            choices("plans[].strategy.Custom.steps[]"),
            [
                "RestoreAll",
                "Restore",
                "PrewarmIdentity",
                "ReconcileState",
                "Reregister",
                "ReleaseRetries",
                "ScaleUp"
            ]
        );
        assert!(choices("horizon").is_empty());
    }

    #[test]
    fn paths_in_files_map_to_patterns() {
        let s = Schema::scenario();
        let text = crate::scenario::DEFAULT_SCENARIO;
        let root = crate::scenario::ron_tree::parse(text).unwrap();
        let pattern = |p: &str| s.pattern_of(&root, &sweep::parse_path(p).unwrap());
        assert_eq!(pattern("horizon").as_deref(), Ok("horizon"));
        assert_eq!(
            pattern("services[db-cluster].capacity").as_deref(),
            Ok("services[].capacity")
        );
        assert_eq!(
            pattern("failures[0].schedule.duration").as_deref(),
            Ok("failures[].schedule.Once.duration")
        );
        assert_eq!(
            pattern("failures[0].kind.target").as_deref(),
            Ok("failures[].kind.Crash.target")
        );
        assert_eq!(
            pattern("plans[1].strategy.stages[0].duration").as_deref(),
            Ok("plans[].strategy.Staged.stages[].duration")
        );
        assert_eq!(
            pattern("plans[1].strategy").as_deref(),
            Ok("plans[].strategy")
        );
        assert!(pattern("services[0].nope").is_err());
        assert!(pattern("horizon.x").is_err());
        let text = r#"(name: "x", horizon: "1h", services: [], plans: [
            (name: "p", strategy: Custom(steps: [ReleaseRetriesAt(5.0), RampTraffic((duration: "5m"))])),
        ], dependencies: [(from: "a", to: "b", breaker: (failure_threshold: 0.5, window: "1s",
            open_for: "1s", half_open_probes: 1, release: Rate(3.0)))])"#;
        let root = crate::scenario::ron_tree::parse(text).unwrap();
        let pattern = |p: &str| s.pattern_of(&root, &sweep::parse_path(p).unwrap());
        for (path, want) in [
            (
                "plans[0].strategy.steps[0].0",
                "plans[].strategy.Custom.steps[].ReleaseRetriesAt.0",
            ),
            (
                "plans[0].strategy.steps[1].duration",
                "plans[].strategy.Custom.steps[].RampTraffic.0.duration",
            ),
            (
                "plans[0].strategy.steps[1].0.duration",
                "plans[].strategy.Custom.steps[].RampTraffic.0.duration",
            ),
            (
                "plans[0].strategy.steps[0]",
                "plans[].strategy.Custom.steps[]",
            ),
            (
                "dependencies[0].breaker.release.0",
                "dependencies[].breaker.release.Rate.0",
            ),
        ] {
            assert_eq!(pattern(path).as_deref(), Ok(want), "{path}");
        }
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Nested {
        A,
        B(Inner),
        C { x: Inner },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Inner {
        P,
        Q(u8),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Top {
        n: Vec<Nested>,
        t: (bool, Option<String>),
        m: BTreeMap<String, f32>,
    }

    #[test]
    fn nested_enums_are_entered_under_every_variant() {
        let s = Schema::of::<Top>().unwrap();
        let paths: Vec<(&str, String)> = s
            .entries()
            .iter()
            .map(|e| (e.path.as_str(), e.kind.to_string()))
            .collect();
        let want: Vec<(&str, &str)> = vec![
            ("n", "list"),
            ("n[]", "enum Nested: A | B | C"),
            ("n[].B.0", "enum Inner: P | Q"),
            ("n[].B.0.Q.0", "number (u8)"),
            ("n[].C.x", "enum Inner: P | Q"),
            ("n[].C.x.Q.0", "number (u8)"),
            ("t", "tuple of 2"),
            ("t.0", "bool"),
            ("t.1", "name"),
            ("m", "map"),
            ("m{key}", "name"),
            ("m{}", "number (f32)"),
        ];
        let got: Vec<(&str, &str)> = paths.iter().map(|(p, k)| (*p, k.as_str())).collect();
        assert_eq!(got, want);
        assert!(s.get("t.1").unwrap().optional);
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    #[serde(untagged)]
    enum Untagged {
        A(u8),
        B(String),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Rec2 {
        next: Option<Box<Rec2>>,
    }

    #[test]
    fn self_describing_and_recursive_types_are_refused_with_their_path() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Holder {
            u: Vec<Untagged>,
        }
        let e = Schema::of::<Holder>().unwrap_err();
        assert_eq!(e.path, "u[]");
        assert!(e.message.contains("self-describing"), "{e}");
        let e = Schema::of::<Rec2>().unwrap_err();
        assert!(e.message.contains("recursive"), "{e}");
    }

    #[test]
    fn serde_names_match_the_types() {
        let last = |t: &'static str| t.rsplit("::").next().unwrap_or(t);
        assert_eq!(
            RawDuration::SERDE_NAME,
            last(std::any::type_name::<RawDuration>())
        );
        assert_eq!(RawText::SERDE_NAME, last(std::any::type_name::<RawText>()));
        assert_eq!(RawDist::SERDE_NAME, last(std::any::type_name::<RawDist>()));
    }
}
