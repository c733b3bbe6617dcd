//! A real headless Chromium driven over the Chrome DevTools protocol (a WebSocket of JSON
//! commands): open a page, run JavaScript in it, type and press keys as a user does, take
//! screenshots.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Chromium's path: `EDDY_CHROMIUM`, else Debian's package.
fn chromium() -> PathBuf {
    let path = std::env::var_os("EDDY_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is not installed: the console's end-to-end tests drive a real headless Chromium. Install Debian's chromium package \
         (scripts/ensure-test-tools.sh, run by `make test`, does) or point EDDY_CHROMIUM at one",
        path.display()
    );
    path
}

/// Connects to the WebSocket endpoint a browser prints on stderr (`ws://...`, with `path`
/// appended), waiting up to a minute; stderr keeps being drained after.
pub fn connect_from_stderr(child: &mut Child, path: &str, what: &str) -> WebSocket<MaybeTlsStream<TcpStream>> {
    let stderr = child.stderr.take().expect("the browser's stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("ws://") {
                let _ = tx.send(line[i..].split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let endpoint = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no {what} within 60 s"));
    let (mut ws, _) = tungstenite::connect(format!("{endpoint}{path}")).unwrap_or_else(|e| panic!("cannot connect to {what}: {e}"));
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
    }
    ws
}

pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with an empty profile and attaches to its page.
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1400,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let ws = connect_from_stderr(&mut child, "", "chromium's DevTools endpoint");
        let mut browser = Browser { child, ws, session: String::new(), next_id: 0, _profile: profile };
        let targets = browser.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .expect("chromium has a page")
            .to_string();
        let attached = browser.call("Target.attachToTarget", json!({"targetId": page, "flatten": true}));
        browser.session = attached["sessionId"].as_str().expect("session id").to_string();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// Sends a command (to the page once attached) and waits for its answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(message.to_string())).expect("send to chromium");
        loop {
            let Message::Text(text) = self.ws.read().expect("read from chromium") else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("chromium sends JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method} failed: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// Evaluates JavaScript in the page (promises awaited); its value, or a panic with the
    /// page's exception.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": js, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "the page threw on `{js}`: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Waits until `js` is true in the page; panics naming `what` and the page's text.
    pub fn wait_until(&mut self, what: &str, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.call("Runtime.evaluate", json!({"expression": js, "returnByValue": true}));
            if r["result"]["value"] == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText.slice(0, 3000) : ''");
                panic!("timed out waiting for {what} (`{js}`); the page shows:\n{}", text.as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types text where the focus is, as a keyboard's input would.
    pub fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Presses a key (`"Enter"`, `"a"`) with Ctrl held when `ctrl`.
    pub fn press(&mut self, key: &str, code: &str, key_code: u32, ctrl: bool) {
        let modifiers = if ctrl { 2 } else { 0 };
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code, "nativeVirtualKeyCode": key_code, "modifiers": modifiers}),
            );
        }
    }

    /// Presses Enter as a key that types (a focused button or link activates).
    pub fn press_enter(&mut self) {
        self.call("Input.dispatchKeyEvent", json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}));
        self.call("Input.dispatchKeyEvent", json!({"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}));
    }

    /// Clicks the middle of the first element `selector` matches, with the mouse.
    pub fn click(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        );
        let at = self.eval(&js);
        let (x, y) = (at[0].as_f64().unwrap_or_else(|| panic!("nothing matches {selector}")), at[1].as_f64().unwrap_or(0.0));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call("Input.dispatchMouseEvent", json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}));
        }
    }

    /// Writes a PNG of the page into `dir`/`name` when `dir` is given (the README's
    /// screenshots: `EDDY_CONSOLE_SCREENSHOTS=docs/screenshots`).
    pub fn screenshot(&mut self, dir: Option<&Path>, name: &str) {
        let Some(dir) = dir else { return };
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("screenshot data")).expect("screenshot base64");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(name), png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
