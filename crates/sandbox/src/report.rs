//! The fixed-size records the supervisor writes to Kindling over the report pipe.
//!
//! Each record is 16 bytes (a tag and three 32-bit words, native endian), written with one
//! `write(2)`: far below `PIPE_BUF`, so records never interleave or split. Encoding allocates
//! nothing, so the supervisor can use it between `clone` and `exec`.

/// Length in bytes of one encoded record.
pub(crate) const RECORD_LEN: usize = 16;

/// Where in the supervisor or the program's pre-exec path something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Stage {
    Stdio = 1,
    Subreaper = 2,
    /// A step of the filesystem plan; the record's `step` says which.
    Filesystem = 3,
    Hostname = 4,
    Loopback = 5,
    Signalfd = 6,
    ExecPipe = 7,
    Fork = 8,
    CgroupJoin = 9,
    Limits = 10,
    Credentials = 11,
    Chdir = 12,
    Exec = 13,
    /// Joining the environment's prepared network namespace.
    Network = 14,
    /// Placing the spec's `pass_fds` at 3, 4, ...
    PassFds = 15,
    /// Installing the system call filter.
    SyscallFilter = 16,
    /// Setting the scheduling policy to SCHED_BATCH (Kindling may run under a real-time one).
    Scheduling = 17,
    /// `exec_later`: receiving what to execute (the message was too large or malformed, or
    /// the program died while it waited for it).
    LateExec = 18,
    /// Executing `kindling-init`, the supervisor's own program once its setup is done.
    Supervisor = 19,
}

impl Stage {
    fn from_u32(value: u32) -> Option<Stage> {
        use Stage::*;
        [
            Stdio,
            Subreaper,
            Filesystem,
            Hostname,
            Loopback,
            Signalfd,
            ExecPipe,
            Fork,
            CgroupJoin,
            Limits,
            Credentials,
            Chdir,
            Exec,
            Network,
            PassFds,
            SyscallFilter,
            Scheduling,
            LateExec,
            Supervisor,
        ]
        .into_iter()
        .find(|stage| *stage as u32 == value)
    }

    /// What was being done, for error messages ("... failed while <this>").
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Stage::Stdio => "redirecting standard input and output",
            Stage::Subreaper => "becoming a child subreaper",
            Stage::Filesystem => "building the root filesystem",
            Stage::Hostname => "setting the hostname",
            Stage::Loopback => "bringing up the loopback interface",
            Stage::Signalfd => "creating the supervisor's signalfd",
            Stage::ExecPipe => "creating the exec status pipe",
            Stage::Fork => "forking the program",
            Stage::CgroupJoin => "joining the environment's cgroups",
            Stage::Limits => "setting resource limits",
            Stage::Credentials => "dropping privileges",
            Stage::Chdir => "changing to the working directory",
            Stage::Exec => "executing the program",
            Stage::Network => "joining the environment's network namespace",
            Stage::PassFds => "passing descriptors to the program",
            Stage::SyscallFilter => "installing the system call filter",
            Stage::Scheduling => "resetting the scheduling policy",
            Stage::LateExec => "receiving the command to execute",
            Stage::Supervisor => "starting the supervisor's program (kindling-init)",
        }
    }
}

/// One message from the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// The program is executing; `pid` as the supervisor sees it (inside its PID namespace).
    Started { pid: i32 },
    /// Setup failed; nothing is running any more.
    Failed { stage: Stage, step: u32, errno: i32 },
    /// The program ended with the raw wait status `status`; every other process of the tree
    /// has been killed. `max_rss_kib` is the largest resident set of any reaped process.
    Exited { status: i32, max_rss_kib: u32 },
    /// The tree was torn down on request (or because Kindling went away) before the program
    /// ended.
    Killed,
    /// The program has ended; the supervisor now tears the rest of the tree down and sends
    /// [`Record::Exited`]. Sent first so that Kindling stops handing work to the program at
    /// once, not only when the whole tree is gone. `at` is `CLOCK_MONOTONIC` read right after
    /// the supervisor reaped the program (an upper bound of the end; the clock is the host's:
    /// environments get no time namespace).
    Ending { at: MonotonicStamp },
}

/// A `CLOCK_MONOTONIC` reading (seconds and nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MonotonicStamp {
    pub secs: u32,
    pub nanos: u32,
}

impl MonotonicStamp {
    /// `CLOCK_MONOTONIC` now. Allocation-free and async-signal-safe (the supervisor calls it).
    pub(crate) fn now() -> Self {
        let (secs, nanos) = crate::sys::monotonic_now();
        Self { secs, nanos }
    }

    /// How long ago this reading was taken (zero if it lies in the future).
    pub(crate) fn elapsed(self) -> std::time::Duration {
        let now = Self::now();
        let at = |s: Self| std::time::Duration::new(u64::from(s.secs), s.nanos);
        at(now).saturating_sub(at(self))
    }
}

const TAG_STARTED: u32 = 1;
const TAG_FAILED: u32 = 2;
const TAG_EXITED: u32 = 3;
const TAG_KILLED: u32 = 4;
const TAG_ENDING: u32 = 5;

impl Record {
    pub(crate) fn encode(self) -> [u8; RECORD_LEN] {
        let (tag, a, b, c) = match self {
            Record::Started { pid } => (TAG_STARTED, pid as u32, 0, 0),
            Record::Failed { stage, step, errno } => (TAG_FAILED, stage as u32, step, errno as u32),
            Record::Exited {
                status,
                max_rss_kib,
            } => (TAG_EXITED, status as u32, max_rss_kib, 0),
            Record::Killed => (TAG_KILLED, 0, 0, 0),
            Record::Ending { at } => (TAG_ENDING, at.secs, at.nanos, 0),
        };
        let mut out = [0u8; RECORD_LEN];
        let words = [tag, a, b, c];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8; RECORD_LEN]) -> Option<Record> {
        let mut words = [0u32; 4];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let [tag, a, b, c] = words;
        match tag {
            TAG_STARTED => Some(Record::Started { pid: a as i32 }),
            TAG_FAILED => Some(Record::Failed {
                stage: Stage::from_u32(a)?,
                step: b,
                errno: c as i32,
            }),
            TAG_EXITED => Some(Record::Exited {
                status: a as i32,
                max_rss_kib: b,
            }),
            TAG_KILLED => Some(Record::Killed),
            TAG_ENDING => Some(Record::Ending {
                at: MonotonicStamp { secs: a, nanos: b },
            }),
            _ => None,
        }
    }
}

/// The 12-byte message the program's pre-exec path sends the supervisor when it fails.
pub(crate) const EXEC_FAILURE_LEN: usize = 12;

pub(crate) fn encode_exec_failure(stage: Stage, step: u32, errno: i32) -> [u8; EXEC_FAILURE_LEN] {
    let mut out = [0u8; EXEC_FAILURE_LEN];
    for (chunk, word) in out
        .chunks_exact_mut(4)
        .zip([stage as u32, step, errno as u32])
    {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    out
}

/// `exec_later`: what the program sends instead of a failure once it is ready and waits for
/// its command (no stage has this value).
pub(crate) const EXEC_WAITING: [u8; EXEC_FAILURE_LEN] = [0xff; EXEC_FAILURE_LEN];

/// `exec_later`: what the supervisor answers Kindling once the program executed (no stage is
/// 0); otherwise it forwards the program's failure message.
pub(crate) const EXEC_DONE: [u8; EXEC_FAILURE_LEN] = [0; EXEC_FAILURE_LEN];

pub(crate) fn decode_exec_failure(bytes: &[u8; EXEC_FAILURE_LEN]) -> (Option<Stage>, u32, i32) {
    let word = |i: usize| u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (Stage::from_u32(word(0)), word(4), word(8) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            Record::Started { pid: 2 },
            Record::Failed {
                stage: Stage::Filesystem,
                step: 7,
                errno: libc::EPERM,
            },
            Record::Failed {
                stage: Stage::Exec,
                step: 0,
                errno: libc::ENOENT,
            },
            Record::Exited {
                status: 0x0900,
                max_rss_kib: 123_456,
            },
            Record::Exited {
                status: -1,
                max_rss_kib: u32::MAX,
            },
            Record::Killed,
            Record::Ending {
                at: MonotonicStamp {
                    secs: 86_400,
                    nanos: 999_999_999,
                },
            },
        ];
        for record in records {
            assert_eq!(Record::decode(&record.encode()), Some(record));
        }
    }

    #[test]
    fn monotonic_stamps_measure_elapsed_time() {
        let before = MonotonicStamp::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let elapsed = before.elapsed();
        assert!(
            elapsed >= std::time::Duration::from_millis(5),
            "{elapsed:?}"
        );
        let future = MonotonicStamp {
            secs: u32::MAX,
            nanos: 0,
        };
        assert_eq!(future.elapsed(), std::time::Duration::ZERO);
    }

    #[test]
    fn unknown_tags_and_stages_are_rejected() {
        assert_eq!(Record::decode(&[0u8; RECORD_LEN]), None);
        let mut bytes = Record::Failed {
            stage: Stage::Exec,
            step: 0,
            errno: 2,
        }
        .encode();
        bytes[4..8].copy_from_slice(&999u32.to_ne_bytes());
        assert_eq!(Record::decode(&bytes), None);
    }

    #[test]
    fn exec_failures_round_trip() {
        let bytes = encode_exec_failure(Stage::Chdir, 3, libc::EACCES);
        assert_eq!(
            decode_exec_failure(&bytes),
            (Some(Stage::Chdir), 3, libc::EACCES)
        );
    }

    #[test]
    fn the_late_exec_markers_are_no_failure() {
        assert_eq!(decode_exec_failure(&EXEC_WAITING).0, None);
        assert_eq!(decode_exec_failure(&EXEC_DONE).0, None);
        assert_ne!(EXEC_WAITING, EXEC_DONE);
    }

    #[test]
    fn every_stage_decodes_to_itself() {
        for value in 0..20u32 {
            if let Some(stage) = Stage::from_u32(value) {
                assert_eq!(stage as u32, value);
                assert!(!stage.describe().is_empty());
            }
        }
    }
}
