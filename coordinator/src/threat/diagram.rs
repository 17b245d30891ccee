//! The data-flow diagram: Graphviz DOT text, or SVG laid out here (no Graphviz needed).
//! Boundaries are nested boxes; each holds its elements in rows and its child boundaries side by
//! side below them. Flows are arrows: red when unencrypted, dashed when unauthenticated. With an
//! assessment, each element is coloured by the highest residual severity of its risks.

use std::collections::HashMap;
use std::fmt::Write;

use rampart_proto::v1::Assessment;

use super::assess::severity_of;
use super::model::{ComponentType, Model};
use super::risk::Severity;

/// The highest residual severity per element.
pub fn severities(a: Option<&Assessment>) -> HashMap<String, Severity> {
    let mut out: HashMap<String, Severity> = HashMap::new();
    for r in a.map(|a| a.risks.as_slice()).unwrap_or_default() {
        let s = severity_of(r.residual.as_ref());
        for e in &r.elements {
            let cur = out.entry(e.clone()).or_insert(Severity::Note);
            *cur = (*cur).max(s);
        }
    }
    out
}

fn fill(s: Option<&Severity>) -> &'static str {
    match s {
        Some(Severity::Critical) => "#c0392b",
        Some(Severity::High) => "#e67e22",
        Some(Severity::Medium) => "#f4d03f",
        Some(Severity::Low) => "#abebc6",
        Some(Severity::Note) => "#d5f5e3",
        None => "#ffffff",
    }
}

fn dot_q(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', " ")
    )
}

fn flow_label(protocol: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if protocol.is_empty() => p.to_string(),
        Some(p) => format!("{protocol}:{p}"),
        None => protocol.to_string(),
    }
}

/// Graphviz DOT text.
pub fn dot(m: &Model, a: Option<&Assessment>) -> String {
    let sev = severities(a);
    let mut s = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        dot_q(&m.name)
    );
    fn boundary(
        s: &mut String,
        m: &Model,
        id: Option<&str>,
        depth: usize,
        sev: &HashMap<String, Severity>,
    ) {
        let pad = "  ".repeat(depth + 1);
        for c in m.components.iter().filter(|c| c.boundary.as_deref() == id) {
            let shape = match c.kind {
                ComponentType::Process => "box, style=\"rounded,filled\"",
                ComponentType::Datastore => "cylinder, style=filled",
                ComponentType::Queue => "box3d, style=filled",
                ComponentType::External => "box, style=\"filled,bold\"",
            };
            let _ = writeln!(
                s,
                "{pad}{} [label={}, shape={shape}, fillcolor=\"{}\"];",
                dot_q(&c.id),
                dot_q(&c.name),
                fill(sev.get(&c.id))
            );
        }
        for ac in m.actors.iter().filter(|x| x.boundary.as_deref() == id) {
            let _ = writeln!(
                s,
                "{pad}{} [label={}, shape=box, style=filled, fillcolor=\"{}\"];",
                dot_q(&ac.id),
                dot_q(&ac.name),
                fill(sev.get(&ac.id))
            );
        }
        for b in m.boundaries.iter().filter(|b| b.parent.as_deref() == id) {
            let _ = writeln!(
                s,
                "{pad}subgraph {} {{\n{pad}  label={};\n{pad}  style=dashed;",
                dot_q(&format!("cluster_{}", b.id)),
                dot_q(&format!("{} ({})", b.name, b.kind))
            );
            boundary(s, m, Some(&b.id), depth + 1, sev);
            let _ = writeln!(s, "{pad}}}");
        }
    }
    boundary(&mut s, m, None, 0, &sev);
    for f in &m.flows {
        let mut attrs = vec![format!("label={}", dot_q(&flow_label(&f.protocol, f.port)))];
        if !f.encrypted {
            attrs.push("color=\"#c0392b\"".into());
        }
        if !f.authenticated {
            attrs.push("style=dashed".into());
        }
        let _ = writeln!(
            s,
            "  {} -> {} [{}];",
            dot_q(&f.from),
            dot_q(&f.to),
            attrs.join(", ")
        );
    }
    s.push_str("}\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const NODE_W: f64 = 150.0;
const NODE_H: f64 = 46.0;
const GAP: f64 = 24.0;
const PAD: f64 = 16.0;
const TITLE: f64 = 22.0;
const PER_ROW: usize = 4;

/// A laid-out box: a boundary (or the whole diagram) with its nodes and child boxes.
struct Layout {
    id: Option<String>,
    w: f64,
    h: f64,
    nodes: Vec<String>,
    children: Vec<Layout>,
}

fn layout(m: &Model, id: Option<&str>, depth: usize) -> Layout {
    let mut nodes: Vec<String> = m
        .components
        .iter()
        .filter(|c| c.boundary.as_deref() == id)
        .map(|c| c.id.clone())
        .collect();
    nodes.extend(
        m.actors
            .iter()
            .filter(|a| a.boundary.as_deref() == id)
            .map(|a| a.id.clone()),
    );
    let children: Vec<Layout> = if depth > m.boundaries.len() {
        Vec::new() // a cycle: validation refuses it; never recurse forever
    } else {
        m.boundaries
            .iter()
            .filter(|b| b.parent.as_deref() == id)
            .map(|b| layout(m, Some(&b.id), depth + 1))
            .collect()
    };
    let cols = nodes.len().min(PER_ROW);
    let rows = nodes.len().div_ceil(PER_ROW);
    let nodes_w = cols as f64 * (NODE_W + GAP);
    let nodes_h = rows as f64 * (NODE_H + GAP);
    let kids_w: f64 = children.iter().map(|c| c.w + GAP).sum();
    let kids_h = children.iter().map(|c| c.h).fold(0.0, f64::max);
    Layout {
        id: id.map(str::to_string),
        w: nodes_w.max(kids_w).max(NODE_W) + 2.0 * PAD,
        h: TITLE + nodes_h + kids_h + 2.0 * PAD,
        nodes,
        children,
    }
}

/// Places every node (its top-left corner) and every boundary box.
fn place(
    l: &Layout,
    x: f64,
    y: f64,
    nodes: &mut HashMap<String, (f64, f64)>,
    boxes: &mut Vec<(String, f64, f64, f64, f64)>,
) {
    if let Some(id) = &l.id {
        boxes.push((id.clone(), x, y, l.w, l.h));
    }
    let top = y + PAD + TITLE;
    for (i, n) in l.nodes.iter().enumerate() {
        let col = (i % PER_ROW) as f64;
        let row = (i / PER_ROW) as f64;
        nodes.insert(
            n.clone(),
            (x + PAD + col * (NODE_W + GAP), top + row * (NODE_H + GAP)),
        );
    }
    let mut cx = x + PAD;
    let cy = top + l.nodes.len().div_ceil(PER_ROW) as f64 * (NODE_H + GAP);
    for c in &l.children {
        place(c, cx, cy, nodes, boxes);
        cx += c.w + GAP;
    }
}

/// Where the line from a box's centre towards `(tx, ty)` leaves the box.
fn edge(x: f64, y: f64, tx: f64, ty: f64) -> (f64, f64) {
    let (dx, dy) = (tx - x, ty - y);
    let sx = if dx != 0.0 {
        (NODE_W / 2.0) / dx.abs()
    } else {
        f64::INFINITY
    };
    let sy = if dy != 0.0 {
        (NODE_H / 2.0) / dy.abs()
    } else {
        f64::INFINITY
    };
    let s = sx.min(sy).min(1.0);
    (x + dx * s, y + dy * s)
}

/// A name cut to `max` characters (with an ellipsis), to fit its box; the full name is the
/// element's tooltip.
fn fit(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        format!("{}…", name.chars().take(max - 1).collect::<String>())
    }
}

/// A standalone SVG document.
pub fn svg(m: &Model, a: Option<&Assessment>) -> String {
    let sev = severities(a);
    let root = layout(m, None, 0);
    let mut nodes = HashMap::new();
    let mut boxes = Vec::new();
    place(&root, 0.0, 24.0, &mut nodes, &mut boxes);
    let (w, h) = (root.w, root.h + 24.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n\
         <title>{}</title>\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker></defs>\n\
         <rect x=\"0\" y=\"0\" width=\"{w:.0}\" height=\"{h:.0}\" fill=\"#ffffff\"/>\n\
         <text x=\"8\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        xml(&m.name),
        xml(&m.name)
    );
    let names: HashMap<&str, (&str, &str)> = m
        .boundaries
        .iter()
        .map(|b| (b.id.as_str(), (b.name.as_str(), b.kind.as_str())))
        .collect();
    for (id, x, y, bw, bh) in &boxes {
        let (name, kind) = names.get(id.as_str()).copied().unwrap_or_default();
        let stroke = if kind == "internet" {
            "#c0392b"
        } else {
            "#566573"
        };
        let _ = writeln!(
            s,
            "<g class=\"boundary\" data-id=\"{}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"none\" stroke=\"{stroke}\" stroke-dasharray=\"6 4\" rx=\"6\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{stroke}\">{} ({})</text></g>",
            xml(id),
            x + 8.0,
            y + 16.0,
            xml(name),
            xml(kind)
        );
    }
    let center = |id: &str| {
        nodes
            .get(id)
            .map(|(x, y)| (x + NODE_W / 2.0, y + NODE_H / 2.0))
    };
    for f in &m.flows {
        let (Some((x1, y1)), Some((x2, y2))) = (center(&f.from), center(&f.to)) else {
            continue;
        };
        // An arc, bowed to the left of its direction (so a flow and its reply do not overlap
        // and a flow along a row passes above the boxes between), from box edge to box edge.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let bow = (len * 0.3).min(90.0);
        let (cx, cy) = (
            (x1 + x2) / 2.0 + dy / len * bow,
            (y1 + y2) / 2.0 - dx / len * bow,
        );
        let (sx, sy) = edge(x1, y1, cx, cy);
        let (ex, ey) = edge(x2, y2, cx, cy);
        // The label at the curve's middle.
        let (lx, ly) = (
            0.25 * x1 + 0.5 * cx + 0.25 * x2,
            0.25 * y1 + 0.5 * cy + 0.25 * y2,
        );
        let color = if f.encrypted { "#555555" } else { "#c0392b" };
        let dash = if f.authenticated {
            ""
        } else {
            " stroke-dasharray=\"5 3\""
        };
        let _ = writeln!(
            s,
            "<g class=\"flow\" data-id=\"{}\"><title>{}</title><path d=\"M {sx:.1} {sy:.1} Q {cx:.1} {cy:.1} {ex:.1} {ey:.1}\" stroke=\"{color}\" fill=\"none\" marker-end=\"url(#arrow)\"{dash}/><text x=\"{lx:.1}\" y=\"{:.1}\" fill=\"{color}\" font-size=\"9\" text-anchor=\"middle\">{}</text></g>",
            xml(&f.id),
            xml(&format!(
                "{}: {} → {}",
                if f.name.is_empty() { &f.id } else { &f.name },
                f.from,
                f.to
            )),
            ly - 3.0,
            xml(&flow_label(&f.protocol, f.port))
        );
    }
    let kinds: HashMap<&str, Option<ComponentType>> = m
        .components
        .iter()
        .map(|c| (c.id.as_str(), Some(c.kind)))
        .chain(m.actors.iter().map(|a| (a.id.as_str(), None)))
        .collect();
    let labels: HashMap<&str, &str> = m
        .components
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .chain(m.actors.iter().map(|a| (a.id.as_str(), a.name.as_str())))
        .collect();
    let mut ordered: Vec<(&String, &(f64, f64))> = nodes.iter().collect();
    ordered.sort_by(|a, b| a.0.cmp(b.0));
    for (id, (x, y)) in ordered {
        let kind = kinds.get(id.as_str()).copied().flatten();
        let fillc = fill(sev.get(id.as_str()));
        let (rx, stroke_w, extra) = match kind {
            Some(ComponentType::Process) => (22.0, 1.0, String::new()),
            Some(ComponentType::Datastore) => (
                0.0,
                1.0,
                format!(
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
                    y + 6.0,
                    x + NODE_W,
                    y + 6.0
                ),
            ),
            Some(ComponentType::Queue) => (
                4.0,
                1.0,
                format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#333\" rx=\"3\"/>",
                    x + 3.0,
                    y + 3.0,
                    NODE_W - 6.0,
                    NODE_H - 6.0
                ),
            ),
            Some(ComponentType::External) => (0.0, 3.0, String::new()),
            None => (0.0, 1.0, String::new()),
        };
        let kind_name = kind.map(ComponentType::as_str).unwrap_or("actor");
        let _ = writeln!(
            s,
            "<g class=\"node {kind_name}\" data-id=\"{}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"{rx}\" fill=\"{fillc}\" stroke=\"#333\" stroke-width=\"{stroke_w}\"/>{extra}<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" fill=\"#555\">{} · {}</text></g>",
            xml(id),
            xml(labels.get(id.as_str()).copied().unwrap_or_default()),
            x + NODE_W / 2.0,
            y + 20.0,
            xml(&fit(
                labels.get(id.as_str()).copied().unwrap_or_default(),
                24
            )),
            x + NODE_W / 2.0,
            y + 35.0,
            xml(id),
            kind_name
        );
    }
    s.push_str("</svg>\n");
    s
}
