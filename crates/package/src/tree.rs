//! The file tree that one archive (or an ordered stack of layer archives) describes, built from
//! the central directories before any data is read: name conflicts are found here, and symbolic
//! links are resolved against it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

use crate::error::{EntryProblem, display_name};
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

/// Paths (components joined by `/`) to nodes; a key sorts before every key beneath it.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: BTreeMap<Vec<u8>, Node>,
    /// Targets of the symbolic links, once their data has been read.
    targets: HashMap<Source, Vec<u8>>,
}

/// Bytes of paths that resolving all the links of one tree may look up: bounds the work a
/// hostile archive (100 000 deep links) can cause; real packages use a tiny fraction.
const RESOLVE_BUDGET: usize = 64 << 20;

/// The proper ancestors of `path`, outermost first.
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(move |(i, _)| &path[..i])
}

fn node_of(kind: Kind, source: Source) -> Node {
    match kind {
        Kind::Dir => Node::Dir { explicit: true },
        Kind::File { exec } => Node::File { source, exec },
        Kind::Symlink => Node::Symlink { source },
    }
}

impl Tree {
    /// Adds an entry of one archive; any clash with an earlier entry is an error.
    pub fn insert(
        &mut self,
        path: Vec<u8>,
        kind: Kind,
        source: Source,
    ) -> Result<(), EntryProblem> {
        for ancestor in ancestors(&path) {
            match self.nodes.get(ancestor) {
                None => {
                    self.nodes
                        .insert(ancestor.to_vec(), Node::Dir { explicit: false });
                }
                Some(Node::Dir { .. }) => {}
                Some(_) => {
                    return Err(EntryProblem::ParentNotDirectory(display_name(ancestor)));
                }
            }
        }
        let node = node_of(kind, source);
        match (self.nodes.get(&path), node) {
            (None, _) => {
                self.nodes.insert(path, node);
                Ok(())
            }
            (Some(Node::Dir { explicit: false }), Node::Dir { .. }) => {
                self.nodes.insert(path, node);
                Ok(())
            }
            (Some(Node::Dir { explicit: true }), Node::Dir { .. }) => Err(EntryProblem::Duplicate),
            (Some(Node::Dir { .. }), _) | (Some(_), Node::Dir { .. }) => {
                Err(EntryProblem::FileDirectoryConflict)
            }
            (Some(_), _) => Err(EntryProblem::Duplicate),
        }
    }

    /// Lays `upper` (a later layer) over this tree, as Lambda extracts layers in order into
    /// one directory: a later file or link replaces whatever had its name (a directory with
    /// everything beneath it), and a later entry beneath an earlier file or link replaces that
    /// file or link with a directory. Nothing is ever written through a link.
    pub fn overlay(&mut self, upper: Tree) {
        self.targets.extend(upper.targets);
        for (path, node) in upper.nodes {
            for ancestor in ancestors(&path) {
                if !matches!(self.nodes.get(ancestor), Some(Node::Dir { .. })) {
                    self.nodes
                        .insert(ancestor.to_vec(), Node::Dir { explicit: false });
                }
            }
            let replaces_dir = matches!(self.nodes.get(&path), Some(Node::Dir { .. }));
            match node {
                Node::Dir { .. } if replaces_dir => {}
                _ => {
                    if replaces_dir {
                        self.remove_beneath(&path);
                    }
                    self.nodes.insert(path, node);
                }
            }
        }
    }

    fn remove_beneath(&mut self, path: &[u8]) {
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        let doomed: Vec<Vec<u8>> = self
            .nodes
            .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.nodes.remove(&key);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// Where each entry of `archive` lands, if it survived (later layers may replace it).
    pub fn placed(&self, archive: usize) -> BTreeMap<usize, (&[u8], Node)> {
        self.nodes
            .iter()
            .filter_map(|(path, node)| match node {
                Node::File { source, .. } | Node::Symlink { source }
                    if source.archive == archive =>
                {
                    Some((source.entry, (path.as_slice(), *node)))
                }
                _ => None,
            })
            .collect()
    }

    /// Records the target of a link (read from the entry's data).
    pub fn set_target(&mut self, source: Source, target: Vec<u8>) {
        self.targets.insert(source, target);
    }

    /// Checks every link: resolved in this tree as the kernel would (following the links found
    /// in the tree, at most 40 in a row), none may leave the root. Returns the first bad link.
    pub fn check_symlinks(&self) -> Result<(), (Source, EntryProblem)> {
        let mut budget = RESOLVE_BUDGET;
        for (path, node) in &self.nodes {
            if let Node::Symlink { source } = node {
                self.check_symlink(path, *source, &mut budget)
                    .map_err(|problem| (*source, problem))?;
            }
        }
        Ok(())
    }

    fn check_symlink(
        &self,
        link: &[u8],
        source: Source,
        budget: &mut usize,
    ) -> Result<(), EntryProblem> {
        let target = self.target(source).ok_or(EntryProblem::BadSymlinkTarget)?;
        check_target(target)?;
        // The link's own directory: real directories (nothing is ever placed under a link).
        let mut stack: Vec<&[u8]> = match link.iter().rposition(|b| *b == b'/') {
            Some(i) => link[..i].split(|b| *b == b'/').collect(),
            None => Vec::new(),
        };
        let mut pending: VecDeque<&[u8]> = target.split(|b| *b == b'/').collect();
        let mut hops = 0u32;
        while let Some(component) = pending.pop_front() {
            match component {
                b"" | b"." => {}
                b".." => {
                    if stack.pop().is_none() {
                        return Err(EntryProblem::SymlinkEscapes);
                    }
                }
                name => {
                    stack.push(name);
                    let here = stack.join(&b'/');
                    *budget = budget
                        .checked_sub(here.len() + 1)
                        .ok_or(EntryProblem::SymlinkLoop)?;
                    match self.nodes.get(&here) {
                        Some(Node::Symlink { source }) => {
                            hops += 1;
                            if hops > 40 {
                                return Err(EntryProblem::SymlinkLoop);
                            }
                            stack.pop();
                            let next =
                                self.target(*source).ok_or(EntryProblem::BadSymlinkTarget)?;
                            check_target(next)?;
                            for c in next.split(|b| *b == b'/').rev() {
                                pending.push_front(c);
                            }
                        }
                        // Beyond a file the kernel says ENOTDIR: nothing is reached.
                        Some(Node::File { .. }) => return Ok(()),
                        Some(Node::Dir { .. }) | None => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// The target of a link, once recorded.
    pub fn target(&self, source: Source) -> Option<&[u8]> {
        self.targets.get(&source).map(Vec::as_slice)
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
