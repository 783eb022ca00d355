//! What a worker does to itself once its library is loaded, so the plugin
//! in it can reach nothing but its own memory and the socket to the server.
//!
//! On Linux, in this order (privileges can be dropped for every thread only
//! while the worker has one thread, and the threads that run calls must
//! exist before the filter forbids new ones):
//!
//! 1. [`drop_privileges`]: when the server runs as root, the worker becomes
//!    `nobody` (uid and gid 65534, no supplementary groups).
//! 2. [`stay_with_parent`]: no new privileges ever (`PR_SET_NO_NEW_PRIVS`),
//!    and killed when the server ends (`PR_SET_PDEATHSIG`), checked against
//!    the server's process id so a server that ended first is noticed.
//! 3. The worker starts its call threads.
//! 4. [`limit_memory`]: `RLIMIT_AS` is set to the worker's size now plus the
//!    plugin's allowance; an allocation past it fails, and Rust's runtime
//!    aborts the worker.
//! 5. [`forbid_system_calls`]: a seccomp-bpf filter on every thread allows
//!    only what a loaded plugin computing answers needs (memory, time,
//!    futexes, signals for its own process, reading and writing descriptors
//!    it already has) and makes every other system call fail with `EPERM`:
//!    opening files, creating sockets, `execve`, `fork` and `clone` (new
//!    processes and new threads alike), `ptrace`, mapping memory executable,
//!    changing its own limits. Nothing is filtered by path, so it needs no
//!    Landlock.
//!
//! On other systems (macOS) the worker is a plain separate process: a crash
//! in it costs one call, but it can do what the server's user can.

/// The user and group a worker started by this server runs as: `nobody`
/// when the server runs as root, else the server's own (nothing to drop).
pub(super) fn unprivileged_user() -> Option<(u32, u32)> {
    #[cfg(target_os = "linux")]
    if rustix::process::geteuid().is_root() {
        return Some((NOBODY, NOBODY));
    }
    None
}

/// `nobody`'s uid and `nogroup`'s gid on Linux.
#[cfg(target_os = "linux")]
const NOBODY: u32 = 65534;

#[cfg(target_os = "linux")]
pub(super) use linux::*;

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::io;

    use rustix::process::{getppid, Resource, Rlimit, Signal};
    use rustix::process::{Gid, Uid};
    use rustix::thread::{set_thread_gid, set_thread_groups, set_thread_uid};
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };

    /// Becomes `run_as` (uid, gid) with no supplementary groups. Call it
    /// while the process has one thread: the calls change the calling
    /// thread's credentials only.
    pub(in super::super) fn drop_privileges(run_as: Option<(u32, u32)>) -> io::Result<String> {
        let Some((uid, gid)) = run_as else {
            return Ok(format!(
                "runs as uid {}",
                rustix::process::getuid().as_raw()
            ));
        };
        set_thread_groups(&[])?;
        set_thread_gid(Gid::from_raw(gid))?;
        set_thread_uid(Uid::from_raw(uid))?;
        if rustix::process::geteuid().is_root() {
            return Err(io::Error::other("still root after dropping privileges"));
        }
        Ok(format!("runs as uid {uid} gid {gid}"))
    }

    /// No new privileges; killed when the server (`server_pid`) ends.
    pub(in super::super) fn stay_with_parent(server_pid: u32) -> io::Result<()> {
        rustix::thread::set_no_new_privs(true)?;
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
        // The server may have ended before the signal was asked for.
        let parent = getppid().map(|p| p.as_raw_nonzero().get() as u32);
        if parent != Some(server_pid) {
            return Err(io::Error::other(
                "the server that started this worker is gone",
            ));
        }
        Ok(())
    }

    /// Caps the address space at its size now plus `extra` bytes; returns
    /// the cap.
    pub(in super::super) fn limit_memory(extra: u64) -> io::Result<u64> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let now_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| io::Error::other("cannot read the worker's size"))?;
        let cap = (now_kb * 1024).saturating_add(extra);
        rustix::process::setrlimit(
            Resource::As,
            Rlimit {
                current: Some(cap),
                maximum: Some(cap),
            },
        )?;
        Ok(cap)
    }

    /// Installs the filter on every thread of the process; what it does,
    /// in words.
    pub(in super::super) fn forbid_system_calls() -> Result<&'static str, String> {
        let program: seccompiler::BpfProgram = filter()?
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())?;
        Ok("seccomp: no files, sockets, programs, processes, threads or tracing")
    }

    fn arch() -> Result<TargetArch, String> {
        std::env::consts::ARCH
            .try_into()
            .map_err(|_| format!("no seccomp filter for {}", std::env::consts::ARCH))
    }

    /// The allowed system calls; everything else fails with `EPERM`.
    fn filter() -> Result<SeccompFilter, String> {
        let err = |e: seccompiler::BackendError| e.to_string();
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for call in ALLOWED {
            rules.insert(*call, Vec::new());
        }
        // Memory, but never executable: no new code after the library.
        let not_exec = || {
            SeccompCondition::new(
                2,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
                0,
            )
            .and_then(|c| SeccompRule::new(vec![c]))
        };
        for call in [libc::SYS_mmap, libc::SYS_mprotect] {
            rules.insert(call, vec![not_exec().map_err(err)?]);
        }
        // Signals only to itself (abort() raises SIGABRT this way).
        let own = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            std::process::id() as u64,
        )
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(err)?;
        rules.insert(libc::SYS_tgkill, vec![own]);
        SeccompFilter::new(
            rules,
            SeccompAction::Errno(libc::EPERM as u32),
            SeccompAction::Allow,
            arch()?,
        )
        .map_err(err)
    }

    /// System calls a loaded plugin may make as it is: reading and writing
    /// the descriptors it has, memory, time, futexes and its own signals.
    const ALLOWED: &[i64] = &[
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_recvfrom,
        libc::SYS_sendto,
        libc::SYS_recvmsg,
        libc::SYS_sendmsg,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_lseek,
        libc::SYS_fcntl,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_gettimeofday,
        libc::SYS_getrandom,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_restart_syscall,
        libc::SYS_rseq,
        libc::SYS_exit,
        libc::SYS_exit_group,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_poll,
        libc::SYS_ppoll,
    ];
}

/// Outside Linux nothing is dropped or filtered: the worker is a separate
/// process and no more.
#[cfg(not(target_os = "linux"))]
mod other {
    use std::io;

    pub(in super::super) fn drop_privileges(_run_as: Option<(u32, u32)>) -> io::Result<String> {
        Ok("runs as the server's user".into())
    }

    pub(in super::super) fn stay_with_parent(_server_pid: u32) -> io::Result<()> {
        Ok(())
    }

    pub(in super::super) fn limit_memory(_extra: u64) -> io::Result<u64> {
        Ok(0)
    }

    pub(in super::super) fn forbid_system_calls() -> Result<&'static str, String> {
        Ok("no system call filter (Linux only)")
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) use other::*;
