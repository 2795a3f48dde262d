//! Where a recording goes: standard output and pipes, FIFOs and devices,
//! private files, earlier files kept, symlinks not followed, full disks.
use std::{
    fs,
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::Path,
    process::{Command, Stdio},
};

use pintrace_tests::{pintrace_bin, report_json, scratch, u64_of, workload, Recording, Workload};

/// A workload that switches a few thousand times a second until it is dropped.
fn busy() -> Workload {
    let mut w = workload!("paced", "10", "100");
    w.send("go");
    w
}

/// Asserts that `path` reads back as a whole recording of `pid` with events.
fn assert_whole(path: &Path, pid: u32) {
    let (code, json, stderr) = report_json(path);
    assert_eq!(code, Some(0), "{}: {stderr}", path.display());
    assert_eq!(json["complete"], true);
    assert_eq!(json["target"]["pid"], pid);
    assert!(u64_of(&json["events"]) > 0, "{json}");
}

fn record_args(pid: u32, output: &str) -> Vec<String> {
    ["record", "--pid", &pid.to_string(), "-d", "700ms", "-o", output].map(str::to_string).to_vec()
}

#[test]
fn a_recording_streams_to_standard_output() {
    let w = busy();
    for spec in ["-", "/dev/stdout", "/dev/fd/1"] {
        // Into a pipe (what `| ssh host 'cat > x.ptr'` gives).
        let out = Command::new(pintrace_bin()).args(record_args(w.pid, spec)).output().expect("pintrace");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "-o {spec}: {err}");
        assert!(err.contains(" events (0 lost) in ") && err.contains(" to standard output: "), "-o {spec}: {err}");
        let copy = scratch("piped.ptr");
        fs::write(&copy, &out.stdout).expect("copy");
        assert_whole(&copy, w.pid);

        // Into a file the shell opened (`-o /dev/stdout > x.ptr`).
        let file = scratch("redirected.ptr");
        let status = Command::new(pintrace_bin())
            .args(record_args(w.pid, spec))
            .stdout(Stdio::from(fs::File::create(&file).expect("create")))
            .stderr(Stdio::null())
            .status()
            .expect("pintrace");
        assert!(status.success(), "-o {spec} > file: {status}");
        assert_whole(&file, w.pid);
    }
}

#[test]
fn fifos_and_devices_are_written_as_streams() {
    let w = busy();
    let fifo = scratch("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let path = fifo.clone();
    let reader = std::thread::spawn(move || fs::read(path).expect("reading the FIFO"));
    let out = Command::new(pintrace_bin())
        .args(record_args(w.pid, fifo.to_str().expect("utf-8")))
        .output()
        .expect("pintrace");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let copy = scratch("from-fifo.ptr");
    fs::write(&copy, reader.join().expect("reader")).expect("copy");
    assert_whole(&copy, w.pid);
    assert!(fs::symlink_metadata(&fifo).expect("fifo").file_type().is_fifo(), "the FIFO is still a FIFO");

    let out = Command::new(pintrace_bin()).args(record_args(w.pid, "/dev/null")).output().expect("pintrace");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn record_files_are_private_old_ones_are_kept_and_symlinks_are_not_followed() {
    let w = busy();
    let path = scratch("private.ptr");
    let old = scratch("private.ptr.old");
    let run = |path: &Path, sudo: bool| {
        let mut cmd = Command::new(pintrace_bin());
        cmd.args(record_args(w.pid, path.to_str().expect("utf-8")));
        if sudo {
            cmd.env("SUDO_UID", "65534").env("SUDO_GID", "65534");
        } else {
            cmd.env_remove("SUDO_UID").env_remove("SUDO_GID");
        }
        let out = cmd.output().expect("pintrace");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{err}");
        err
    };

    let err = run(&path, false);
    assert!(!err.contains(".old"), "nothing to keep the first time: {err}");
    let meta = fs::metadata(&path).expect("recorded");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "the file holds the target's command line");
    let first = fs::read(&path).expect("first");

    // Again, as sudo would run it: the earlier file is kept, the new one is the user's.
    let err = run(&path, true);
    assert!(err.contains(&format!("the previous {} is kept as {}", path.display(), old.display())), "{err}");
    assert_eq!(fs::read(&old).expect("old"), first, "the earlier recording is kept whole");
    let meta = fs::metadata(&path).expect("recorded");
    assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o777), (65534, 65534, 0o600));
    assert_whole(&path, w.pid);
    assert_whole(&old, w.pid);

    // A symlink at the output path (to a file the recording must not touch).
    let victim = scratch("victim");
    fs::write(&victim, b"not yours").expect("victim");
    let link = scratch("link.ptr");
    let _ = fs::remove_file(scratch("link.ptr.old"));
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    run(&link, false);
    assert_eq!(fs::read(&victim).expect("victim"), b"not yours");
    assert!(fs::symlink_metadata(&link).expect("link.ptr").is_file());
    assert_whole(&link, w.pid);
}

/// Runs `script` as root in a private mount namespace (so its tmpfs mounts
/// vanish with it), with `$PINTRACE` set; returns (exit code, stdout, stderr).
fn in_mount_namespace(script: &str) -> (Option<i32>, String, String) {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("PINTRACE", pintrace_bin())
        .output()
        .expect("unshare (util-linux)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_disk_already_full_leaves_no_file_and_says_so_before_tracing() {
    let w = busy();
    let dir = scratch("full-disk");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let script = format!(
        "mount -t tmpfs -o size=64k none {d} && (dd if=/dev/zero of={d}/fill bs=4k 2>/dev/null; true) && \
         \"$PINTRACE\" record --pid {pid} -d 1s -o {d}/x.ptr; echo \"exit $?\"; ls -A {d}",
        d = dir.display(),
        pid = w.pid
    );
    let (code, out, err) = in_mount_namespace(&script);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "exit 1\nfill\n", "no file is left behind: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("pintrace: writing ") && err.contains("No space left on device"), "{err}");
    assert!(!err.contains("recording process"), "not announced: {err}");

    // A device that is always full: the same, before tracing starts.
    let out = Command::new(pintrace_bin()).args(record_args(w.pid, "/dev/full")).output().expect("pintrace");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err, "pintrace: writing /dev/full: No space left on device (os error 28)\n");
}

#[test]
fn a_disk_that_fills_during_a_recording_keeps_every_whole_chunk() {
    let mut w = workload!("pingpong", "300000");
    let dir = scratch("filling-disk");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let copy = scratch("filled.ptr");
    let script = format!(
        "mount -t tmpfs -o size=1m none {d} && \"$PINTRACE\" record --pid {pid} -o {d}/x.ptr; rc=$?; \
         cp {d}/x.ptr {copy}; exit $rc",
        d = dir.display(),
        pid = w.pid,
        copy = copy.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]).env("PINTRACE", pintrace_bin());
    let rec = Recording::start_cmd(cmd, &copy);
    w.send("go");
    let done = rec.finish();
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("pintrace: writing ") && last.contains("No space left on device"), "{}", done.stderr);
    let (code, json, stderr) = report_json(&copy);
    assert_eq!(code, Some(3), "cut short: {stderr}");
    assert_eq!(json["complete"], false);
    assert!(u64_of(&json["events"]) > 10_000, "the whole chunks before the full disk read back: {json}");
}
