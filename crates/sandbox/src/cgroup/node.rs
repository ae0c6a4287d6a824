//! Node-wide caps: the node's cgroup level (`<cgroup_parent>`, e.g. `kindling/<node-id>`) holds
//! every environment of the node, so `pids.max` and the memory limit set there bound all of
//! them together, whatever each environment's own limits. Without them 32 environments of
//! 1,024 processes each fill a host's default `kernel.pid_max` (32,768: Kindling, sshd and
//! everything else then fail to fork), and environments' memory adds up without bound.
//!
//! Kept apart from the per-level CPU weights of [`CgroupRoots::prepare`] on purpose.

use std::fs;

use super::{CgroupRoots, write, write_if_present};
use crate::SandboxError;

/// What the node's level allows all its environments together; `None`: no cap of Kindling's
/// (`max`), which also lifts a cap a previous run left on a reused node directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NodeCaps {
    pub max_processes: Option<u64>,
    pub max_memory_bytes: Option<u64>,
}

impl CgroupRoots {
    /// Sets the node's caps on its level of the pids and memory hierarchies (after
    /// [`prepare`](Self::prepare) made it; before any environment exists). On cgroup v1 the
    /// memory cap covers the environments only with hierarchical accounting
    /// (`memory.use_hierarchy`, always on since Linux 5.11): it is asked for on each level,
    /// and refused when it cannot be had.
    pub(crate) fn set_node_caps(&self, caps: &NodeCaps) -> Result<(), SandboxError> {
        let pids_dir = self.pids.mount.join(&self.parent);
        let pids = caps
            .max_processes
            .map_or_else(|| "max".to_string(), |n| n.max(1).to_string());
        write(&pids_dir.join("pids.max"), &pids)?;

        let memory_dir = self.memory.mount.join(&self.parent);
        if self.memory.v2 {
            let max = caps
                .max_memory_bytes
                .map_or_else(|| "max".to_string(), |n| n.to_string());
            write(&memory_dir.join("memory.max"), &max)?;
            return Ok(());
        }
        let mut dir = self.memory.mount.clone();
        for part in self.parent.components() {
            dir.push(part);
            let file = dir.join("memory.use_hierarchy");
            // Accepted only while the level has no children; already 1 on recent kernels.
            let _ = write_if_present(&file, "1");
            if let Ok(text) = fs::read_to_string(&file)
                && text.trim() != "1"
            {
                return Err(SandboxError::cgroup(
                    &file,
                    std::io::Error::other(
                        "hierarchical memory accounting is off: a node memory cap would not \
                         cover the environments",
                    ),
                ));
            }
        }
        // v1 "-1" is unlimited. memory+swap (present with swap accounting) may not be below
        // the memory limit: writing it on both sides works whichever way the limit moves.
        let limit = caps
            .max_memory_bytes
            .map_or_else(|| "-1".to_string(), |n| n.to_string());
        let memsw = memory_dir.join("memory.memsw.limit_in_bytes");
        let _ = write_if_present(&memsw, &limit);
        write(&memory_dir.join("memory.limit_in_bytes"), &limit)?;
        write_if_present(&memsw, &limit)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::cgroup::Limits;

    /// On the host's real hierarchies: the caps land on the node's level, a second call lifts
    /// them, and an environment below the capped level cannot fork past the node's cap.
    #[test]
    fn node_caps_land_on_the_nodes_level_and_bind_its_environments() {
        if !nix::unistd::geteuid().is_root() {
            kindling_test_support::cannot_run("needs root");
        }
        let nodes = format!("kindling-test-caps-{}", std::process::id());
        let parent = PathBuf::from(&nodes).join("node");
        let roots = CgroupRoots::detect(&parent).unwrap();
        roots.prepare().unwrap();
        let cleanup = Cleanup {
            mounts: roots.mounts().into_iter().map(Path::to_path_buf).collect(),
            nodes: nodes.clone(),
        };
        roots
            .set_node_caps(&NodeCaps {
                max_processes: Some(5),
                max_memory_bytes: Some(64 << 20),
            })
            .unwrap();
        let read = |mount: &Path, file: &str| {
            fs::read_to_string(mount.join(&parent).join(file))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read(&roots.pids.mount, "pids.max"), "5");
        let memory_file = if roots.memory.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        assert_eq!(
            read(&roots.memory.mount, memory_file),
            (64u64 << 20).to_string()
        );

        // An environment allowed 100 processes gets no more than the node's 5.
        let cgroup = roots
            .create(
                "env",
                &Limits {
                    memory_bytes: 128 << 20,
                    pids_max: 100,
                    memory_mb: 128,
                },
            )
            .unwrap();
        // The shell joins the environment's cgroups itself (a builtin `echo`, no fork).
        let join: String = cgroup
            .procs_files()
            .iter()
            .map(|file| format!("echo 0 > {}; ", file.display()))
            .collect();
        let script =
            format!("{join}for i in 1 2 3 4 5 6 7 8; do sleep 30 & done 2>/dev/null; wait");
        let mut shell = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        let in_env = cgroup.pids().len();
        let node_current: u64 = read(&roots.pids.mount, "pids.current").parse().unwrap();
        cgroup.kill_all();
        let _ = shell.kill();
        let _ = shell.wait();
        assert!(
            (2..=5).contains(&in_env) && node_current <= 5,
            "{in_env} processes in the environment, {node_current} in the node, under a node cap of 5"
        );
        kindling_test_support::eventually(
            std::time::Duration::from_secs(5),
            "the environment to empty",
            || cgroup.pids().is_empty().then_some(()),
        );
        drop(cgroup);

        roots.set_node_caps(&NodeCaps::default()).unwrap();
        assert_eq!(read(&roots.pids.mount, "pids.max"), "max");
        let unlimited = read(&roots.memory.mount, memory_file);
        assert!(
            unlimited == "max" || unlimited.parse::<u64>().unwrap() > 1 << 50,
            "{unlimited}"
        );
        drop(cleanup);
    }

    struct Cleanup {
        mounts: Vec<PathBuf>,
        nodes: String,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for mount in &self.mounts {
                let _ = fs::remove_dir(mount.join(&self.nodes).join("node/env"));
                let _ = fs::remove_dir(mount.join(&self.nodes).join("node"));
                let _ = fs::remove_dir(mount.join(&self.nodes));
            }
        }
    }
}
