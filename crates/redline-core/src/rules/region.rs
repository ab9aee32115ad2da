//! What of a file a review keeps hits in, read from its tree: the top-level statements that
//! touch the changed lines, the kinds of the nodes on them, and the nodes a match reporting
//! there can start at. `select` asks it which of a grammar's patterns a change needs.

use crate::lang::Language;
use std::collections::HashMap;
use tree_sitter::Tree;

/// What of a file a review keeps hits in. A match that reports on one of the added lines starts
/// at a node that overlaps that line (the node holds the reported one), and lies within one of
/// the top-level statements that touch the lines, unless it is the root.
pub(super) struct Region<'s> {
    /// The text of the top-level statements that touch the lines: a match's words are in it.
    pub(super) text: String,
    /// The kinds of the nodes that overlap a line: a match starts at one of them.
    pub(super) kinds: std::collections::HashSet<String>,
    /// For each of those kinds, the text of the outermost nodes of that kind that overlap a
    /// line: a match that starts at such a node lies inside one of them, and so do its words.
    /// (Often much less than `text`: the call around a line rather than the whole function.)
    pub(super) by_kind: HashMap<String, String>,
    /// For a change of a few lines, the nodes a match can start at, by kind: the ancestors (up to
    /// `NEAR_DEPTH` levels) of the nodes a hit can report at, those that overlap a line and start
    /// at most four lines above it (`RuleSet::place` keeps a finding within four lines of its
    /// node's start unless its rule moves it). Each with how many levels it stands above the
    /// nearest such node, and its byte range.
    pub(super) near: Option<HashMap<String, Vec<NearNode>>>,
    /// For each kind of the nodes that overlap a line, the kinds of their children (all such
    /// nodes together).
    children: HashMap<String, std::collections::HashSet<String>>,
    src: &'s str,
}

/// A node a match can start at (see `Region::near`): how many levels it stands above the nearest
/// node that may report, its bytes, and the kinds of its children.
pub(super) type NearNode = (usize, std::ops::Range<usize>, Vec<String>);

/// The kind ids of a node's children.
fn child_ids(n: tree_sitter::Node<'_>) -> Vec<u16> {
    let mut c = n.walk();
    n.children(&mut c).map(|ch| ch.kind_id()).collect()
}

/// How many levels above a reported node `Region::near` looks for a match's start; a deeper
/// pattern falls back on the outermost nodes of its kind.
pub(super) const NEAR_DEPTH: usize = 8;

/// Up to how many changed lines a region keeps `near`: past that, the outermost nodes select
/// nearly the same patterns for less work.
const NEAR_LINES: usize = 64;

impl<'s> Region<'s> {
    /// Whether the lines assign a string literal to a name (a fragment a pattern may be put
    /// together from further down).
    pub(super) fn binds_a_string(&self) -> bool {
        ["assignment", "variable_declarator", "assignment_expression"]
            .iter()
            .any(|k| self.kinds.contains(*k))
            && ["string", "template_string", "concatenated_string"]
                .iter()
                .any(|k| self.kinds.contains(*k))
    }

    pub(super) fn of(
        lang: Language,
        src: &'s str,
        tree: &Tree,
        lines: &std::collections::BTreeSet<u32>,
    ) -> Region<'s> {
        let root = tree.root_node();
        let mut cursor = root.walk();
        let grammar = lang.grammar();
        // Kind ids index plain vectors: a review of new files visits every node of them.
        let kinds_count = grammar.node_kind_count();
        // The last slot holds every id past the grammar's own kinds (ERROR is u16::MAX).
        let slot = |id: u16| (id as usize).min(kinds_count);
        let id_of = |i: usize| if i < kinds_count { i as u16 } else { u16::MAX };
        let slots = kinds_count + 1;
        let mut ids = vec![false; slots];
        let mut region = Region {
            text: String::new(),
            kinds: std::collections::HashSet::new(),
            by_kind: HashMap::new(),
            near: None,
            children: HashMap::new(),
            src,
        };
        // How many of the lines are at or before each row (1-based): a node overlaps a line when
        // the count grows between its first and last rows.
        let rows = src.lines().count() + 2;
        let mut upto = vec![0u32; rows + 1];
        for &l in lines {
            if let Some(c) = upto.get_mut(l as usize) {
                *c += 1;
            }
        }
        for i in 1..upto.len() {
            upto[i] += upto[i - 1];
        }
        let overlaps = |start: u32, end: u32| {
            let at = |r: u32| upto[(r as usize).min(upto.len() - 1)];
            at(end) > at(start - 1)
        };
        // Per kind, the byte ranges of the outermost nodes of that kind (a parent is always seen
        // before its children).
        let mut outermost: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new(); slots];
        let keep_near = lines.len() <= NEAR_LINES;
        // Per node that may start a match (kind, byte range): its fewest levels above a node
        // that may report.
        let mut near: HashMap<(u16, usize, usize), (usize, Vec<u16>)> = HashMap::new();
        // For each kind of the nodes that overlap a line, the kinds of their children.
        let mut children: Vec<Vec<bool>> = vec![Vec::new(); slots];
        let mut walker = root.walk();
        for child in root.children(&mut cursor) {
            let (start, end) = (
                child.start_position().row as u32 + 1,
                child.end_position().row as u32 + 1,
            );
            if !overlaps(start, end) {
                continue;
            }
            region.text.push_str(&src[child.byte_range()]);
            region.text.push('\n');
            // The nodes of the statement that overlap a line (a node ending at the start of the
            // next line counts too: more kinds only select more patterns), depth first with
            // the path from the statement down to the node.
            let mut path: Vec<tree_sitter::Node<'_>> = Vec::new();
            let mut stack = vec![(child, 0)];
            while let Some((node, level)) = stack.pop() {
                let (start, end) = (
                    node.start_position().row as u32 + 1,
                    node.end_position().row as u32 + 1,
                );
                if !overlaps(start, end) {
                    continue;
                }
                let id = slot(node.kind_id());
                path.truncate(level);
                // Depth first, a node lies inside an earlier node of its kind only when that
                // node is one of its ancestors (the path above it): no need to compare ranges.
                if !path.iter().any(|a| a.kind_id() == node.kind_id()) {
                    outermost[id].push(node.byte_range());
                }
                path.push(node);
                ids[id] = true;
                if keep_near && overlaps(start, end.min(start + 4)) {
                    for (up, n) in path.iter().rev().take(NEAR_DEPTH + 1).enumerate() {
                        let key = (n.kind_id(), n.start_byte(), n.end_byte());
                        let (levels, _) = near.entry(key).or_insert_with(|| (up, child_ids(*n)));
                        *levels = (*levels).min(up);
                    }
                }
                // One walk of the children, with one cursor for the whole file.
                let kids = &mut children[id];
                if kids.is_empty() {
                    kids.resize(slots, false);
                }
                walker.reset(node);
                if walker.goto_first_child() {
                    loop {
                        let n = walker.node();
                        kids[slot(n.kind_id())] = true;
                        stack.push((n, level + 1));
                        if !walker.goto_next_sibling() {
                            break;
                        }
                    }
                }
            }
        }
        let name = |id: u16| grammar.node_kind_for_id(id).unwrap_or_default().to_string();
        let set = |flags: &[bool]| -> Vec<u16> {
            (0..flags.len()).filter(|&i| flags[i]).map(id_of).collect()
        };
        region.children = children
            .iter()
            .enumerate()
            .filter(|(_, kids)| !kids.is_empty())
            .map(|(i, kids)| (name(id_of(i)), set(kids).into_iter().map(name).collect()))
            .collect();
        region.kinds = set(&ids)
            .into_iter()
            .filter_map(|id| grammar.node_kind_for_id(id).map(str::to_string))
            .collect();
        for (i, ranges) in outermost.into_iter().enumerate() {
            if ranges.is_empty() {
                continue;
            }
            let Some(kind) = grammar.node_kind_for_id(id_of(i)) else {
                continue;
            };
            let text = region.by_kind.entry(kind.to_string()).or_default();
            for r in ranges {
                text.push_str(&src[r]);
                text.push('\n');
            }
        }
        if keep_near {
            let mut by_kind: HashMap<String, Vec<NearNode>> = HashMap::new();
            for ((id, start, end), (levels, kids)) in near {
                let children = kids.into_iter().map(name).collect();
                if let Some(kind) = grammar.node_kind_for_id(id) {
                    by_kind.entry(kind.to_string()).or_default().push((
                        levels,
                        start..end,
                        children,
                    ));
                }
            }
            region.near = Some(by_kind);
        }
        region
    }

    /// Whether a node of `kind` that stands at most `depth` levels above a node that may report
    /// has children of every kind in `needed`.
    pub(super) fn near_has_children(&self, kind: &str, depth: usize, needed: &[String]) -> bool {
        needed.is_empty()
            || self
                .near
                .as_ref()
                .and_then(|n| n.get(kind))
                .is_some_and(|nodes| {
                    nodes.iter().any(|(levels, _, children)| {
                        *levels <= depth && needed.iter().all(|k| children.contains(k))
                    })
                })
    }

    /// Whether the nodes of `kind` that overlap a line have, among them, children of every kind
    /// in `needed`.
    pub(super) fn has_children(&self, kind: &str, needed: &[String]) -> bool {
        needed.is_empty()
            || self
                .children
                .get(kind)
                .is_some_and(|c| needed.iter().all(|k| c.contains(k.as_str())))
    }

    /// The text of the nodes of `kind` that stand at most `depth` levels above a node that may
    /// report (see `near`), the outermost of them only; None when there is no such node.
    pub(super) fn near_text(&self, kind: &str, depth: usize) -> Option<String> {
        let mut ranges: Vec<&std::ops::Range<usize>> = self
            .near
            .as_ref()
            .and_then(|n| n.get(kind))
            .into_iter()
            .flatten()
            .filter(|(levels, _, _)| *levels <= depth)
            .map(|(_, r, _)| r)
            .collect();
        // Outermost first; a range inside the last one kept adds no word.
        ranges.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut text = String::new();
        let mut kept_end = 0;
        for r in ranges {
            if r.end <= kept_end && !text.is_empty() {
                continue;
            }
            text.push_str(&self.src[r.clone()]);
            text.push('\n');
            kept_end = kept_end.max(r.end);
        }
        (!text.is_empty()).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_a_syntax_error_has_an_error_region() {
        // ERROR's kind id (u16::MAX) lies past the grammar's own kinds.
        let src = "def f(x):\n    return open(x\n\nclass (:\n    pass\n";
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&Language::Python.grammar()).unwrap();
        let tree = parser.parse(src, None).unwrap();
        assert!(tree.root_node().has_error());
        let every_line = (1..=5).collect();
        let region = Region::of(Language::Python, src, &tree, &every_line);
        assert!(region.kinds.contains("ERROR"), "{:?}", region.kinds);
        assert!(region.kinds.contains("identifier"));
        assert!(region.by_kind["ERROR"].contains("class"));
        let one_line = [2].into_iter().collect();
        let near = Region::of(Language::Python, src, &tree, &one_line);
        assert!(near.near.is_some());
        assert!(near.kinds.contains("identifier"));
    }
}
