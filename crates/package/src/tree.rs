//! The file tree that one archive (or an ordered stack of layer archives) describes, built from
//! the central directories before any data is read: name conflicts are found here, and symbolic
//! links are resolved against it.
//!
//! A trie of components in an arena: memory grows with the bytes of the names, not with their
//! depth (a path of 2 000 components does not store 2 000 prefixes), and the number of nodes
//! (entries plus the directories their paths imply) is capped.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::error::EntryProblem;
use crate::path::Kind;

/// Which archive and entry a node comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Source {
    pub archive: usize,
    pub entry: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    /// `explicit` when the archive has an entry for it (not only entries beneath it).
    Dir {
        explicit: bool,
    },
    File {
        source: Source,
        exec: bool,
    },
    Symlink {
        source: Source,
    },
}

/// Why an entry could not be added.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InsertError {
    Entry(EntryProblem),
    TooManyPaths,
}

impl From<EntryProblem> for InsertError {
    fn from(p: EntryProblem) -> Self {
        Self::Entry(p)
    }
}

#[derive(Debug)]
struct Slot {
    parent: u32,
    name: Box<[u8]>,
    node: Node,
    kids: Vec<u32>,
    live: bool,
}

const ROOT: u32 = 0;

#[derive(Debug)]
pub(crate) struct Tree {
    slots: Vec<Slot>,
    children: HashMap<(u32, Box<[u8]>), u32>,
    /// Targets of the symbolic links, once their data has been read.
    targets: HashMap<Source, Vec<u8>>,
    max_nodes: usize,
}

/// Path components that resolving all the links of one tree may visit: bounds the work a
/// hostile archive (100 000 long chains of links) can cause; real packages use a tiny fraction.
const RESOLVE_BUDGET: usize = 4 << 20;

fn node_of(kind: Kind, source: Source) -> Node {
    match kind {
        Kind::Dir => Node::Dir { explicit: true },
        Kind::File { exec } => Node::File { source, exec },
        Kind::Symlink => Node::Symlink { source },
    }
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty())
}

impl Tree {
    /// An empty tree (the root directory) that holds at most `max_nodes` other nodes.
    pub fn new(max_nodes: usize) -> Self {
        Self {
            slots: vec![Slot {
                parent: ROOT,
                name: Box::default(),
                node: Node::Dir { explicit: true },
                kids: Vec::new(),
                live: true,
            }],
            children: HashMap::new(),
            targets: HashMap::new(),
            max_nodes,
        }
    }

    fn child(&self, parent: u32, name: &[u8]) -> Option<u32> {
        self.children.get(&(parent, Box::from(name))).copied()
    }

    fn node(&self, id: u32) -> Node {
        self.slots[id as usize].node
    }

    fn add(&mut self, parent: u32, name: &[u8], node: Node) -> Result<u32, InsertError> {
        if self.slots.len() > self.max_nodes {
            return Err(InsertError::TooManyPaths);
        }
        let id = u32::try_from(self.slots.len()).map_err(|_| InsertError::TooManyPaths)?;
        self.slots.push(Slot {
            parent,
            name: Box::from(name),
            node,
            kids: Vec::new(),
            live: true,
        });
        self.slots[parent as usize].kids.push(id);
        self.children.insert((parent, Box::from(name)), id);
        Ok(id)
    }

    /// Adds an entry of one archive; any clash with an earlier entry is an error.
    pub fn insert(&mut self, path: &[u8], kind: Kind, source: Source) -> Result<(), InsertError> {
        let mut parts: Vec<&[u8]> = components(path).collect();
        let Some(last) = parts.pop() else {
            return Ok(());
        };
        let mut at = ROOT;
        for part in parts {
            at = match self.child(at, part) {
                None => self.add(at, part, Node::Dir { explicit: false })?,
                Some(id) => match self.node(id) {
                    Node::Dir { .. } => id,
                    _ => {
                        let prefix = self.path_of(id);
                        return Err(EntryProblem::ParentNotDirectory(crate::error::display_name(
                            &prefix,
                        ))
                        .into());
                    }
                },
            };
        }
        let node = node_of(kind, source);
        match self.child(at, last) {
            None => {
                self.add(at, last, node)?;
                Ok(())
            }
            Some(id) => match (self.node(id), node) {
                (Node::Dir { explicit: false }, Node::Dir { .. }) => {
                    self.slots[id as usize].node = node;
                    Ok(())
                }
                (Node::Dir { explicit: true }, Node::Dir { .. }) => {
                    Err(EntryProblem::Duplicate.into())
                }
                (Node::Dir { .. }, _) | (_, Node::Dir { .. }) => {
                    Err(EntryProblem::FileDirectoryConflict.into())
                }
                _ => Err(EntryProblem::Duplicate.into()),
            },
        }
    }

    fn path_of(&self, mut id: u32) -> Vec<u8> {
        let mut parts = Vec::new();
        while id != ROOT {
            let slot = &self.slots[id as usize];
            parts.push(&*slot.name);
            id = slot.parent;
        }
        parts.reverse();
        parts.join(&b'/')
    }

    fn remove(&mut self, id: u32) {
        let mut doomed = vec![id];
        while let Some(d) = doomed.pop() {
            let slot = &mut self.slots[d as usize];
            slot.live = false;
            doomed.append(&mut slot.kids);
            let key = (slot.parent, slot.name.clone());
            self.children.remove(&key);
        }
        let parent = self.slots[id as usize].parent;
        self.slots[parent as usize].kids.retain(|k| *k != id);
    }

    /// Lays `upper` (a later layer) over this tree, as Lambda extracts layers in order into
    /// one directory: a later file or link replaces whatever had its name (a directory with
    /// everything beneath it), and a later entry beneath an earlier file or link replaces that
    /// file or link with a directory. Nothing is ever written through a link.
    pub fn overlay(&mut self, upper: Tree) -> Result<(), InsertError> {
        self.targets.extend(upper.targets);
        self.max_nodes = self.max_nodes.saturating_add(upper.max_nodes);
        // Upper ids map to ids here; parents come before their children in the arena.
        let mut map = vec![ROOT; upper.slots.len()];
        for (up_id, slot) in upper.slots.iter().enumerate().skip(1) {
            if !slot.live {
                continue;
            }
            let parent = map[slot.parent as usize];
            let id = match (self.child(parent, &slot.name), slot.node) {
                (None, node) => self.add(parent, &slot.name, node)?,
                (Some(id), Node::Dir { .. }) => {
                    if !matches!(self.node(id), Node::Dir { .. }) {
                        self.slots[id as usize].node = Node::Dir { explicit: false };
                    }
                    id
                }
                (Some(id), node) => {
                    self.remove(id);
                    self.add(parent, &slot.name, node)?
                }
            };
            map[up_id] = id;
        }
        Ok(())
    }

    /// Calls `f` with the path and node of every node, a directory before what it holds.
    pub fn walk<E>(&self, mut f: impl FnMut(&[u8], Node) -> Result<(), E>) -> Result<(), E> {
        let mut path: Vec<u8> = Vec::new();
        // (node, length of `path` before this node's name was appended)
        let mut stack: Vec<(u32, usize)> = self.slots[ROOT as usize]
            .kids
            .iter()
            .rev()
            .map(|k| (*k, 0))
            .collect();
        while let Some((id, len)) = stack.pop() {
            let slot = &self.slots[id as usize];
            path.truncate(len);
            if len > 0 {
                path.push(b'/');
            }
            path.extend_from_slice(&slot.name);
            f(&path, slot.node)?;
            let here = path.len();
            stack.extend(slot.kids.iter().rev().map(|k| (*k, here)));
        }
        Ok(())
    }

    /// The live files and links that came from `archive`, by entry index.
    pub fn placed(&self, archive: usize) -> BTreeMap<usize, Node> {
        self.slots
            .iter()
            .filter(|s| s.live)
            .filter_map(|s| match s.node {
                Node::File { source, .. } | Node::Symlink { source }
                    if source.archive == archive =>
                {
                    Some((source.entry, s.node))
                }
                _ => None,
            })
            .collect()
    }

    /// The sources of the live links.
    pub fn links(&self) -> Vec<Source> {
        self.slots
            .iter()
            .filter(|s| s.live)
            .filter_map(|s| match s.node {
                Node::Symlink { source } => Some(source),
                _ => None,
            })
            .collect()
    }

    /// Records the target of a link (read from the entry's data).
    pub fn set_target(&mut self, source: Source, target: Vec<u8>) {
        self.targets.insert(source, target);
    }

    /// The target of a link, once recorded.
    pub fn target(&self, source: Source) -> Option<&[u8]> {
        self.targets.get(&source).map(Vec::as_slice)
    }

    /// Checks every link: resolved in this tree as the kernel would (following the links found
    /// in the tree, at most 40 in a row), none may leave the root. Returns the first bad link.
    pub fn check_symlinks(&self) -> Result<(), (Source, EntryProblem)> {
        let mut budget = RESOLVE_BUDGET;
        for (id, slot) in self.slots.iter().enumerate() {
            if let (true, Node::Symlink { source }) = (slot.live, slot.node) {
                self.check_symlink(id as u32, source, &mut budget)
                    .map_err(|problem| (source, problem))?;
            }
        }
        Ok(())
    }

    fn check_symlink(
        &self,
        link: u32,
        source: Source,
        budget: &mut usize,
    ) -> Result<(), EntryProblem> {
        let target = self.target(source).ok_or(EntryProblem::BadSymlinkTarget)?;
        check_target(target)?;
        // Where resolution stands: the directories from the root down (`None` once below
        // a name that does not exist). It starts in the link's own directory.
        let mut stack: Vec<Option<u32>> = Vec::new();
        let mut up = self.slots[link as usize].parent;
        while up != ROOT {
            *budget = budget.checked_sub(1).ok_or(EntryProblem::SymlinkLoop)?;
            stack.push(Some(up));
            up = self.slots[up as usize].parent;
        }
        stack.reverse();
        let mut pending: VecDeque<&[u8]> = target.split(|b| *b == b'/').collect();
        let mut hops = 0u32;
        while let Some(component) = pending.pop_front() {
            *budget = budget.checked_sub(1).ok_or(EntryProblem::SymlinkLoop)?;
            match component {
                b"" | b"." => {}
                b".." => {
                    if stack.pop().is_none() {
                        return Err(EntryProblem::SymlinkEscapes);
                    }
                }
                name => {
                    let here = match stack.last() {
                        None => Some(ROOT),
                        Some(at) => *at,
                    };
                    let found = here.and_then(|h| self.child(h, name));
                    match found.map(|id| (id, self.node(id))) {
                        Some((_, Node::Symlink { source })) => {
                            hops += 1;
                            if hops > 40 {
                                return Err(EntryProblem::SymlinkLoop);
                            }
                            let next = self.target(source).ok_or(EntryProblem::BadSymlinkTarget)?;
                            check_target(next)?;
                            for c in next.split(|b| *b == b'/').rev() {
                                pending.push_front(c);
                            }
                        }
                        // Beyond a file the kernel says ENOTDIR: nothing is reached.
                        Some((_, Node::File { .. })) => return Ok(()),
                        Some((id, Node::Dir { .. })) => stack.push(Some(id)),
                        None => stack.push(None),
                    }
                }
            }
        }
        Ok(())
    }
}

/// A link target must be a short relative path without NUL bytes.
pub(crate) fn check_target(target: &[u8]) -> Result<(), EntryProblem> {
    if target.is_empty() || target.len() > MAX_TARGET || target.contains(&0) {
        return Err(EntryProblem::BadSymlinkTarget);
    }
    if target[0] == b'/' {
        return Err(EntryProblem::AbsoluteSymlink);
    }
    Ok(())
}

/// Longest link target (Linux's `PATH_MAX` less the NUL).
pub(crate) const MAX_TARGET: usize = 4095;

#[cfg(test)]
mod tests {
    use super::*;

    fn src(entry: usize) -> Source {
        Source { archive: 0, entry }
    }

    fn paths(t: &Tree) -> Vec<String> {
        let mut out = Vec::new();
        t.walk::<()>(|p, _| {
            out.push(String::from_utf8_lossy(p).into_owned());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn deep_paths_cost_one_node_per_component_and_are_capped() {
        let deep: Vec<u8> = ["a"; 1000].join("/").into_bytes();
        let mut t = Tree::new(10_000);
        t.insert(&deep, Kind::File { exec: false }, src(0)).unwrap();
        assert_eq!(t.slots.len(), 1001);
        let mut small = Tree::new(5);
        assert_eq!(
            small.insert(&deep, Kind::File { exec: false }, src(0)),
            Err(InsertError::TooManyPaths)
        );
    }

    #[test]
    fn walk_lists_directories_before_their_contents() {
        let mut t = Tree::new(100);
        t.insert(b"b/x", Kind::File { exec: false }, src(0))
            .unwrap();
        t.insert(b"a", Kind::File { exec: false }, src(1)).unwrap();
        t.insert(b"b/c/d", Kind::Symlink, src(2)).unwrap();
        assert_eq!(paths(&t), ["b", "b/x", "b/c", "b/c/d", "a"]);
    }

    #[test]
    fn overlay_replaces_files_links_and_directories() {
        let mut lower = Tree::new(100);
        lower
            .insert(b"d/f", Kind::File { exec: false }, src(0))
            .unwrap();
        lower.insert(b"l", Kind::Symlink, src(1)).unwrap();
        lower
            .insert(b"f", Kind::File { exec: false }, src(2))
            .unwrap();
        let mut upper = Tree::new(100);
        let up = |entry| Source { archive: 1, entry };
        upper
            .insert(b"d", Kind::File { exec: true }, up(0))
            .unwrap();
        upper
            .insert(b"l/inside", Kind::File { exec: false }, up(1))
            .unwrap();
        upper
            .insert(b"f", Kind::File { exec: false }, up(2))
            .unwrap();
        lower.overlay(upper).unwrap();
        let mut all = paths(&lower);
        all.sort();
        assert_eq!(all, ["d", "f", "l", "l/inside"]);
        assert!(lower.placed(0).is_empty());
        assert_eq!(lower.placed(1).len(), 3);
        assert!(lower.links().is_empty());
    }
}
