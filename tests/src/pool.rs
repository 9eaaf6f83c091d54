//! The emulators of this test process, reused from test to test.
//!
//! A fresh `moto_server` costs about 1 s of CPU to start and 3–4 s more on its first EC2 request
//! (moto loads its EC2 data once per process): more than most tests spend on their own work, on
//! a 2-core machine where the tests are CPU-bound. So a test takes an idle emulator, wiped with
//! moto's reset (`/moto-api/reset`: every service's state, in every region), or starts one; when
//! the test ends, the emulator goes back to the pool. No two tests share one at the same time.
//!
//! The emulators are started by one thread that lives as long as the process, with
//! `PR_SET_PDEATHSIG`: when the test process ends — normally, by a panic, or killed — the kernel
//! kills them (statics are never dropped, so nothing else would).

use fabric_local::{Lifetime, TestEmulator};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// Idle emulators, to be reset before their next test.
static IDLE: Mutex<Vec<TestEmulator>> = Mutex::new(Vec::new());

type Reply = mpsc::Sender<Result<TestEmulator, String>>;

/// The thread that starts emulators (their parent-death signal is tied to it).
fn starter(home: PathBuf) -> &'static Mutex<mpsc::Sender<Reply>> {
    static STARTER: OnceLock<Mutex<mpsc::Sender<Reply>>> = OnceLock::new();
    STARTER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Reply>();
        std::thread::Builder::new()
            .name("emulator-starter".into())
            .spawn(move || {
                for reply in rx {
                    let _ = reply.send(TestEmulator::start_with(&home, Lifetime::EndsWithStartingThread));
                }
            })
            .expect("starting the emulator thread");
        Mutex::new(tx)
    })
}

/// An emulator for one test: wiped, and no other test's until it is dropped.
pub struct PooledEmulator {
    emulator: Option<TestEmulator>,
    pub port: u16,
}

impl PooledEmulator {
    /// An idle emulator, reset; or a new one. Blocks (reset or start).
    pub fn take(home: PathBuf) -> Result<Self, String> {
        loop {
            let Some(emulator) = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop() else { break };
            // One that does not answer the reset (it died) is dropped, which kills it.
            if reset(emulator.port).is_ok() {
                return Ok(PooledEmulator { port: emulator.port, emulator: Some(emulator) });
            }
        }
        let (tx, rx) = mpsc::channel();
        starter(home).lock().unwrap_or_else(|e| e.into_inner()).send(tx).map_err(|e| e.to_string())?;
        let emulator = rx.recv().map_err(|e| e.to_string())??;
        Ok(PooledEmulator { port: emulator.port, emulator: Some(emulator) })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PooledEmulator {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(emulator);
        }
    }
}

/// Wipes the emulator on `port`: every service, every region. An error unless it answers 200.
pub fn reset(port: u16) -> Result<(), String> {
    let answer = crate::http_post(port, "/moto-api/reset").map_err(|e| format!("resetting the emulator: {e}"))?;
    if answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("resetting the emulator: {}", String::from_utf8_lossy(&answer[..answer.len().min(80)])))
    }
}
