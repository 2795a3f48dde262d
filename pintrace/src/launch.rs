//! `pintrace top|record -- CMD`: start a command held just before its
//! `execve`, so that tracing is attached before its first instruction.
//!
//! std's `Command::spawn` returns only once the child has exec'd, so the
//! child is forked here by hand: it blocks reading a pipe until `release`,
//! then (with `--user`) takes the user's groups and IDs, and execs. An exec
//! failure comes back through a second, close-on-exec pipe.
use std::{
    ffi::{CString, OsString},
    fs::File,
    io::{Read as _, Write as _},
    os::{
        fd::{FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
};

use anyhow::{bail, Context as _, Result};

/// Whom to run the command as (`--user`), resolved before the fork.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

impl RunAs {
    /// Looks a user up by name, or by numeric ID as a name is: its own
    /// group and its supplementary groups, from the password and group
    /// databases. A UID that has no entry is refused: there is no group to
    /// give it that would not be a guess (`sudo -u '#UID'` needs an entry too).
    pub fn lookup(user: &str) -> Result<RunAs> {
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let name = CString::new(user).context("a user name cannot contain NUL")?;
        // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pw`'s strings.
        let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc != 0 || found.is_null() {
            let Ok(uid) = user.parse::<libc::uid_t>() else { bail!("no such user: {user}") };
            // (uid_t)-1 means "no change" to setuid and friends: never a user.
            if uid == libc::uid_t::MAX {
                bail!("--user {user}: not a user ID (the largest is {})", libc::uid_t::MAX - 1);
            }
            // SAFETY: as above.
            let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
            if rc != 0 || found.is_null() {
                bail!("no user with ID {uid} (not in the password database): give a user that exists, by name or ID");
            }
        }
        let mut groups = vec![0 as libc::gid_t; 256];
        let mut n = groups.len() as libc::c_int;
        // SAFETY: `pw.pw_name` is a valid C string while `buf` lives; `groups` has room for `n`.
        let rc = unsafe { libc::getgrouplist(pw.pw_name, pw.pw_gid, groups.as_mut_ptr(), &mut n) };
        if rc < 0 {
            // More than 256 groups: ask again with room for all of them (bounded by NGROUPS_MAX).
            groups.resize(usize::try_from(n).unwrap_or(0).clamp(1, 65536), 0);
            n = groups.len() as libc::c_int;
            // SAFETY: as above, with the larger buffer.
            let rc = unsafe { libc::getgrouplist(pw.pw_name, pw.pw_gid, groups.as_mut_ptr(), &mut n) };
            if rc < 0 {
                bail!("reading the groups of user {user}");
            }
        }
        groups.truncate(n.max(0) as usize);
        Ok(RunAs { uid: pw.pw_uid, gid: pw.pw_gid, groups })
    }
}

/// A forked child waiting to exec the command.
pub struct Launched {
    pub pid: u32,
    pub argv: Vec<String>,
    go: Option<File>,
    errors: Option<File>,
    reaped: bool,
}

fn pipe(flags: libc::c_int) -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
        return Err(std::io::Error::last_os_error()).context("creating a pipe");
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks a child that will run `argv` once released. With `quiet`, its
/// standard input, output and error are /dev/null (the screen is pintrace's).
pub fn launch(argv: &[OsString], run_as: Option<&RunAs>, quiet: bool) -> Result<Launched> {
    use std::os::fd::AsRawFd as _;
    if argv.is_empty() {
        bail!("no command given after --");
    }
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).context("an argument of the command contains a NUL byte"))
        .collect::<Result<_>>()?;
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let devnull = CString::new("/dev/null").context("path")?;
    let (go_r, go_w) = pipe(libc::O_CLOEXEC)?;
    let (err_r, err_w) = pipe(libc::O_CLOEXEC)?;
    let (go_r_fd, err_w_fd) = (go_r.as_raw_fd(), err_w.as_raw_fd());
    let (go_w_fd, err_r_fd) = (go_w.as_raw_fd(), err_r.as_raw_fd());
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };

    // SAFETY: pintrace is single-threaded here (before its event loop
    // starts), and the child calls only async-signal-safe functions on
    // memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        // SAFETY: the child, as above: raw syscalls on prepared data, then exec or _exit.
        unsafe {
            // pintrace's ends of the pipes: held open here, the read below
            // would never see pintrace give up (it closes its end).
            libc::close(go_w_fd);
            libc::close(err_r_fd);
            let mut b = 0u8;
            // Wait until tracing is attached (or pintrace is gone: then do not run at all).
            if libc::read(go_r_fd, (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(127);
            }
            let fail = |what: u8| child_fail(err_w_fd, what);
            if quiet {
                let fd = libc::open(devnull.as_ptr(), libc::O_RDWR);
                if fd >= 0 {
                    libc::dup2(fd, 0);
                    libc::dup2(fd, 1);
                    libc::dup2(fd, 2);
                }
            }
            if let Some(r) = run_as {
                if libc::setgroups(r.groups.len(), r.groups.as_ptr()) != 0 {
                    fail(b'g');
                }
                if libc::setgid(r.gid) != 0 {
                    fail(b'g');
                }
                if libc::setuid(r.uid) != 0 {
                    fail(b'u');
                }
            }
            // The command does not outlive pintrace, however pintrace ends
            // (SIGKILL, a crash): the kernel ends it with its parent. Set
            // after the change of user, which clears it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                fail(b'p');
            }
            if libc::getppid() != parent {
                libc::_exit(127); // pintrace died before the prctl
            }
            libc::execvp(ptrs[0], ptrs.as_ptr());
            fail(b'e')
        }
    }
    drop(go_r);
    drop(err_w);
    Ok(Launched {
        pid: pid as u32,
        argv: argv.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
        go: Some(File::from(go_w)),
        errors: Some(File::from(err_r)),
        reaped: false,
    })
}

/// In the child: reports what failed and errno on the error pipe, and exits.
///
/// # Safety
/// Only in the forked child; `fd` is the error pipe's write end.
unsafe fn child_fail(fd: libc::c_int, what: u8) -> ! {
    // SAFETY: async-signal-safe calls on a local buffer, in the child.
    unsafe {
        let errno = *libc::__errno_location();
        let msg = [what, errno as u8, (errno >> 8) as u8];
        libc::write(fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

impl Launched {
    /// Lets the child exec the command; fails if it could not.
    pub fn release(&mut self) -> Result<()> {
        let Some(mut go) = self.go.take() else { return Ok(()) };
        go.write_all(&[1]).context("starting the command")?;
        drop(go);
        let mut msg = Vec::new();
        if let Some(mut errors) = self.errors.take() {
            // Returns at the exec (the pipe closes) or with the child's report.
            let _ = errors.read_to_end(&mut msg);
        }
        if let [what, lo, hi] = msg[..] {
            let err = std::io::Error::from_raw_os_error(i32::from(lo) | (i32::from(hi) << 8));
            let cmd = self.argv[0].clone();
            self.wait();
            match what {
                b'e' => bail!("cannot run {cmd}: {err}"),
                b'p' => bail!("cannot tie {cmd} to pintrace's life (PR_SET_PDEATHSIG): {err}"),
                _ => bail!("cannot switch to the user for {cmd}: {err}"),
            }
        }
        Ok(())
    }

    /// Reaps the child if it has exited; returns its wait status then.
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.reaped {
            return None;
        }
        let mut status = 0;
        // SAFETY: waits without blocking for our own child.
        let r = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if r == self.pid as libc::pid_t {
            self.reaped = true;
            return Some(status);
        }
        None
    }

    fn wait(&mut self) {
        if !self.reaped {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, 0) };
            self.reaped = true;
        }
    }
}

impl Drop for Launched {
    /// A command pintrace started does not outlive it: it is asked to end
    /// (SIGTERM) and reaped. One never released exits by itself.
    fn drop(&mut self) {
        if self.go.take().is_some() {
            self.wait();
            return;
        }
        if self.try_wait().is_none() && !self.reaped {
            // SAFETY: signals our own child, not yet reaped, so the PID is still ours.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
            for _ in 0..200 {
                if self.try_wait().is_some() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            // SAFETY: as above.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
            self.wait();
        }
    }
}
