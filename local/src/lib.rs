//! The local AWS emulator: moto in server mode, installed into `.fabric/venv`, started on a free
//! loopback port, and reused by every command until `local down`.
//!
//! The emulator keeps its account in memory, so local-mode state lives and dies with it: starting
//! a fresh emulator wipes `.fabric/local/state/`, and local state is never mixed with real-AWS
//! state (which lives in `.fabric/<stack>/`).
//!
//! This crate is std-only (plus serde) so that `xtask` can use it without building the AWS SDK.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned emulator.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";
/// The pinned offline validator of Kubernetes manifests (schemas of Kubernetes 1.25–1.37 inside).
pub const KUBERNETES_VALIDATE_REQUIREMENT: &str = "kubernetes-validate==1.37.0";

/// What `ensure_installed` puts into the venv.
const REQUIREMENTS: [&str; 2] = [MOTO_REQUIREMENT, KUBERNETES_VALIDATE_REQUIREMENT];

/// `FABRIC_HOME`, or `.fabric` in the current directory.
pub fn fabric_home() -> PathBuf {
    std::env::var_os("FABRIC_HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".fabric"))
}

/// A running emulator, as recorded in `.fabric/local/emulator.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Emulator {
    pub pid: u32,
    pub port: u16,
    pub started_at_unix: u64,
}

impl Emulator {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// The `moto_server` executable of the venv under `home`.
pub fn moto_server(home: &Path) -> PathBuf {
    home.join("venv").join("bin").join("moto_server")
}

/// The `kubernetes-validate` executable of the venv under `home`.
pub fn kubernetes_validate(home: &Path) -> PathBuf {
    home.join("venv").join("bin").join("kubernetes-validate")
}

/// How the emulator is started: moto's server with a fix for speed (`emulator.py`, beside this
/// file), run by the venv's Python.
const LAUNCHER: &str = include_str!("emulator.py");

/// The emulator's launcher in the venv under `home`.
fn launcher(home: &Path) -> PathBuf {
    home.join("venv").join("fabric-emulator.py")
}

/// Writes the launcher into the venv unless it is there as this build wants it (written aside and
/// renamed into place: concurrent tests read it while another writes).
fn write_launcher(home: &Path) -> Result<PathBuf, String> {
    let path = launcher(home);
    if std::fs::read_to_string(&path).is_ok_and(|s| s == LAUNCHER) {
        return Ok(path);
    }
    let aside = path.with_extension(format!("py.{}", std::process::id()));
    std::fs::write(&aside, LAUNCHER).map_err(|e| err("writing the emulator launcher", e))?;
    std::fs::rename(&aside, &path).map_err(|e| err("writing the emulator launcher", e))?;
    Ok(path)
}

/// Installs the pinned moto and kubernetes-validate into `home/venv` unless they are there.
/// Prints what it does to stderr. Returns the emulator's launcher (what [`spawn`] runs).
pub fn ensure_installed(home: &Path) -> Result<PathBuf, String> {
    let server = moto_server(home);
    let marker = home.join("venv").join(".fabric-moto");
    let wanted = REQUIREMENTS.join(" ");
    if server.exists() && std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == wanted) {
        return write_launcher(home);
    }
    std::fs::create_dir_all(home).map_err(|e| err("creating .fabric", e))?;
    // The venv's scripts record its absolute path: build it where `home` really is (CI links
    // `.fabric` to a cache that outlives the clone).
    let home = home.canonicalize().map_err(|e| err("resolving .fabric", e))?;
    let marker = home.join("venv").join(".fabric-moto");
    let venv = home.join("venv");
    eprintln!("fabric: installing the local AWS emulator and manifest validator ({wanted}) into {} …", venv.display());
    let python = std::env::var("FABRIC_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| err(&format!("running `{python} -m venv` (is Python 3 installed?)"), e))?;
    if !status.success() {
        return Err(format!("`{python} -m venv {}` failed ({status}); on Debian install python3-venv", venv.display()));
    }
    let status = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(REQUIREMENTS)
        .status()
        .map_err(|e| err("running pip", e))?;
    if !status.success() {
        return Err(format!("`pip install {wanted}` failed ({status})"));
    }
    std::fs::write(&marker, &wanted).map_err(|e| err("writing the install marker", e))?;
    write_launcher(&home)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| err("finding a free port", e))?;
    l.local_addr().map(|a| a.port()).map_err(|e| err("finding a free port", e))
}

/// Whether an HTTP server answers on `127.0.0.1:port`.
pub fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf.starts_with(b"HTTP/1."))
}

pub use fabric_core::state::store::process_alive;

/// How an emulator process relates to the process that starts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// A child like any other (killed by its owner).
    Child,
    /// In its own process group, so that it outlives the command (Ctrl-C of a deploy does not stop
    /// it).
    Detached,
    /// Killed by the kernel when the thread that started it ends (Linux `PR_SET_PDEATHSIG`): for
    /// emulators kept by a long-lived thread of a test process, which may exit without dropping
    /// them.
    EndsWithStartingThread,
}

/// Starts the emulator (`launcher`, from [`ensure_installed`]) on a free loopback port.
pub fn spawn(launcher: &Path, log: &Path, lifetime: Lifetime) -> Result<(std::process::Child, u16), String> {
    let port = free_port()?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err("creating the log directory", e))?;
    }
    let log_file = std::fs::File::create(log).map_err(|e| err("creating the emulator log", e))?;
    // The launcher lies in the venv, whose Python has moto.
    let venv = launcher.parent().ok_or("the emulator's launcher is not in a venv")?;
    let mut cmd = Command::new(venv.join("bin").join("python"));
    cmd.arg(launcher)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        // The emulator issues every DNS-validated certificate after this many seconds, whether or
        // not the validation records exist (real ACM checks them); the default is 60.
        .env("MOTO_ACM_VALIDATION_WAIT", "3")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| err("emulator log", e))?)
        .stderr(log_file);
    match lifetime {
        Lifetime::Child => {}
        Lifetime::Detached => {
            cmd.process_group(0);
        }
        Lifetime::EndsWithStartingThread => {
            // SAFETY: between fork and exec the child calls only prctl, which is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }
    let child = cmd.spawn().map_err(|e| err(&format!("starting {}", launcher.display()), e))?;
    Ok((child, port))
}

/// Waits until the emulator on `port` answers, or `timeout` passes.
pub fn wait_ready(port: u16, timeout: Duration) -> Result<(), String> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if answers(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("the local AWS emulator did not answer on 127.0.0.1:{port} within {timeout:?}"))
}

fn record_path(home: &Path) -> PathBuf {
    home.join("local").join("emulator.json")
}

/// Local-mode state of `stack`: it shares the emulator's life.
pub fn local_state_dir(home: &Path, stack: &str) -> PathBuf {
    home.join("local").join("state").join(stack)
}

/// The recorded emulator, if it is still running and answering.
pub fn running(home: &Path) -> Option<Emulator> {
    let rec: Emulator = serde_json::from_slice(&std::fs::read(record_path(home)).ok()?).ok()?;
    (process_alive(rec.pid) && answers(rec.port)).then_some(rec)
}

/// Serializes emulator start-up between concurrent commands.
struct StartLock {
    _file: std::fs::File,
}

impl StartLock {
    fn take(home: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(home.join("local")).map_err(|e| err("creating .fabric/local", e))?;
        let f = std::fs::File::create(home.join("local").join(".start.lock")).map_err(|e| err("start lock", e))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; released when the file is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err("cannot lock .fabric/local/.start.lock".into());
        }
        Ok(StartLock { _file: f })
    }
}

/// Returns the running emulator, or installs and starts one. A fresh emulator comes with fresh
/// local state: `.fabric/local/state/` is wiped, since the old state describes resources that the
/// old emulator's memory took with it. The second value says whether it was started now.
pub fn ensure_running(home: &Path) -> Result<(Emulator, bool), String> {
    let _lock = StartLock::take(home)?;
    if let Some(e) = running(home) {
        return Ok((e, false));
    }
    let server = ensure_installed(home)?;
    let (child, port) = spawn(&server, &home.join("local").join("emulator.log"), Lifetime::Detached)?;
    let pid = child.id();
    if let Err(e) = wait_ready(port, Duration::from_secs(60)) {
        // SAFETY: the child we just started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        return Err(e);
    }
    let state = home.join("local").join("state");
    if state.exists() {
        std::fs::remove_dir_all(&state).map_err(|e| err("wiping stale local state", e))?;
    }
    let started_at_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let rec = Emulator { pid, port, started_at_unix };
    std::fs::write(record_path(home), serde_json::to_vec_pretty(&rec).expect("serializable"))
        .map_err(|e| err("recording the emulator", e))?;
    eprintln!(
        "fabric: started the local AWS emulator on {} (pid {pid}); `cargo xtask local down` stops it",
        rec.endpoint()
    );
    Ok((rec, true))
}

/// Stops the recorded emulator (and forgets its local state). Returns what it stopped.
pub fn stop(home: &Path) -> Result<Option<Emulator>, String> {
    let _lock = StartLock::take(home)?;
    let path = record_path(home);
    let rec: Option<Emulator> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(r) = &rec
        && process_alive(r.pid)
    {
        // SAFETY: the pid recorded when we started it; it is a moto_server of ours if alive.
        unsafe { libc::kill(r.pid as libc::pid_t, libc::SIGTERM) };
        let t0 = Instant::now();
        while process_alive(r.pid) && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if process_alive(r.pid) {
            // SAFETY: as above.
            unsafe { libc::kill(r.pid as libc::pid_t, libc::SIGKILL) };
        }
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(home.join("local").join("state"));
    Ok(rec)
}

/// An emulator owned by a test: started on a free port, killed when dropped.
pub struct TestEmulator {
    child: std::process::Child,
    pub port: u16,
}

impl TestEmulator {
    /// Starts one (installing moto into `home/venv` if needed).
    pub fn start(home: &Path) -> Result<Self, String> {
        Self::start_with(home, Lifetime::Child)
    }

    /// [`TestEmulator::start`], its process bound as `lifetime` says.
    pub fn start_with(home: &Path, lifetime: Lifetime) -> Result<Self, String> {
        let server = ensure_installed(home)?;
        let log = std::env::temp_dir().join(format!("fabric-test-emulator-{}.log", std::process::id()));
        let (child, port) = spawn(&server, &log, lifetime)?;
        let mut me = TestEmulator { child, port };
        if let Err(e) = wait_ready(port, Duration::from_secs(60)) {
            let _ = me.child.kill();
            return Err(e);
        }
        Ok(me)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_of_another_user_is_alive() {
        // pid 1 belongs to root: to anyone else, kill(1, 0) answers EPERM, which means "it exists".
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(process_alive(1));
        } else {
            // As root, ask from a child that has given up root.
            as_nobody_pid_1_is_alive();
        }
        assert!(!process_alive(u32::MAX >> 2), "no such process");
    }

    fn as_nobody_pid_1_is_alive() {
        // SAFETY: the child calls only async-signal-safe functions (setuid, kill, _exit).
        unsafe {
            let child = libc::fork();
            assert!(child >= 0, "fork failed");
            if child == 0 {
                let code = if libc::setuid(65534) != 0 {
                    2
                } else if process_alive(1) {
                    0
                } else {
                    1
                };
                libc::_exit(code);
            }
            let mut status = 0;
            libc::waitpid(child, &mut status, 0);
            assert!(libc::WIFEXITED(status));
            assert_eq!(libc::WEXITSTATUS(status), 0, "EPERM was taken for a dead process");
        }
    }

    #[test]
    fn nothing_answers_on_a_fresh_free_port() {
        let port = free_port().unwrap();
        assert!(!answers(port));
    }

    #[test]
    fn no_record_means_not_running() {
        let dir = std::env::temp_dir().join(format!("fabric-local-test-{}", std::process::id()));
        assert!(running(&dir).is_none());
        assert_eq!(stop(&dir).unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
