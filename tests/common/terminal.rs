//! A program run in a pseudo-terminal, as a user's terminal runs it: its standard streams
//! are the terminal's slave side, it leads its own session with the terminal as its
//! controlling terminal (so Ctrl-C typed there is SIGINT to it), and the test types into
//! the master side and reads what the program draws.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct Terminal {
    master: File,
    child: Child,
    /// Everything the program wrote, as raw bytes (escape sequences included).
    drawn: Arc<Mutex<Vec<u8>>>,
    /// How much of the plain text `wait_for` has already matched past.
    seen: usize,
}

fn check(ret: libc::c_int, what: &str) {
    assert!(ret >= 0, "{what}: {}", std::io::Error::last_os_error());
}

impl Terminal {
    /// Starts `cmd` in a new pseudo-terminal of `columns` × `rows`.
    pub fn spawn(mut cmd: Command, columns: u16, rows: u16) -> Terminal {
        // SAFETY: plain libc calls on a descriptor this function owns; every result is checked.
        let master = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            check(fd, "posix_openpt");
            check(libc::grantpt(fd), "grantpt");
            check(libc::unlockpt(fd), "unlockpt");
            let size = libc::winsize { ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
            check(libc::ioctl(fd, libc::TIOCSWINSZ, &size), "TIOCSWINSZ");
            File::from_raw_fd(fd)
        };
        let mut name = [0 as libc::c_char; 256];
        // SAFETY: the buffer outlives the call and its length is passed.
        check(unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) }, "ptsname_r");
        // SAFETY: ptsname_r wrote a NUL-terminated name into `name`.
        let slave_path = unsafe { CStr::from_ptr(name.as_ptr()) }.to_str().expect("a UTF-8 terminal name").to_string();
        let slave = std::fs::OpenOptions::new().read(true).write(true).open(&slave_path).expect("open the terminal's slave side");
        cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start the program in the terminal");
        // The parent's copies of the slave side go with `cmd`, so the master reads EIO
        // once the program exits.
        drop(cmd);
        let drawn = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = drawn.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().extend_from_slice(&buf[..n]);
            }
        });
        Terminal { master, child, drawn, seen: 0 }
    }

    /// Types `keys` in one write, as a paste or a fast typist delivers them (`\r` is Enter,
    /// `\t` Tab, `\x03` Ctrl-C).
    pub fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// What the program wrote, escape sequences included.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.drawn.lock()).into_owned()
    }

    /// What the program drew, as text: escape sequences and carriage returns removed.
    pub fn text(&self) -> String {
        plain_text(&self.raw())
    }

    /// Waits until `needle` is drawn after what earlier waits matched; returns the text
    /// drawn from there up to and including it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            let from = self.seen.min(text.len());
            if let Some(at) = text[from..].find(needle) {
                let end = from + at + needle.len();
                self.seen = end;
                return text[from..end].to_string();
            }
            assert!(Instant::now() < deadline, "'{needle}' was not drawn; the terminal shows:\n{}", &text[from..]);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the program to exit.
    pub fn wait(mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the program did not exit; the terminal shows:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `raw` without ANSI escape sequences (CSI `ESC [ ... final`, and two-byte `ESC x`) and
/// without carriage returns.
pub fn plain_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next_if_eq(&'[').is_some() {
                    // Parameters and intermediates, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}
