//! `aftershock graph`: the dependency graph as Graphviz DOT.
//!
//! Hard dependencies are solid, soft ones dashed; services sharing a first zone are drawn in
//! one cluster, so shared infrastructure is visible.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::{DepKind, Scenario};

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Renders the DOT text.
pub fn dot(s: &Scenario) -> String {
    let t = &s.topology;
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&s.name));
    let _ = writeln!(
        out,
        "  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans-serif\"];"
    );
    let failed = s.failure_targets();
    let mut zones: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut loose = Vec::new();
    for (i, svc) in t.services.iter().enumerate() {
        match svc.zones.first() {
            Some(z) => zones.entry(z).or_default().push(i),
            None => loose.push(i),
        }
    }
    let node = |out: &mut String, i: usize, indent: &str| {
        let svc = &t.services[i];
        let roles: Vec<&str> = svc.roles.iter().map(|r| r.kind_name()).collect();
        let mut label = format!("{}\\n{} rps", svc.name, svc.capacity);
        if !roles.is_empty() {
            label.push_str(&format!("\\n[{}]", roles.join(", ")));
        }
        let colour = if failed[i] {
            ", color=red, penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{indent}{} [label={}{colour}];",
            quote(&svc.name),
            quote(&label).replace("\\\\n", "\\n")
        );
    };
    for (k, (zone, members)) in zones.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{k} {{\n    label={};\n    style=dashed;",
            quote(zone)
        );
        for &i in members {
            node(&mut out, i, "    ");
        }
        let _ = writeln!(out, "  }}");
    }
    for i in loose {
        node(&mut out, i, "  ");
    }
    for d in &t.deps {
        let mut attrs = Vec::new();
        if d.kind == DepKind::Soft {
            attrs.push("style=dashed".to_string());
        }
        if d.calls != 1.0 {
            attrs.push(format!("label=\"x{}\"", d.calls));
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(
            out,
            "  {} -> {}{attrs};",
            quote(&t.services[d.from].name),
            quote(&t.services[d.to].name)
        );
    }
    out.push_str("}\n");
    out
}
