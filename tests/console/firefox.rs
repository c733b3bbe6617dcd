//! A real headless Firefox driven over WebDriver BiDi (a WebSocket of JSON commands, which
//! Firefox serves on `--remote-debugging-port`): open a page, run JavaScript in it, press
//! keys as a user does.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Firefox's path: `EDDY_FIREFOX`, else Debian's firefox-esr.
fn firefox() -> PathBuf {
    let path = std::env::var_os("EDDY_FIREFOX").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/firefox-esr"));
    assert!(
        path.exists(),
        "{} is not installed: the console's Firefox test drives a real headless Firefox. Install Debian's firefox-esr package \
         (scripts/ensure-test-tools.sh, run by `make test`, does) or point EDDY_FIREFOX at one",
        path.display()
    );
    path
}

/// WebDriver's key for Control.
pub const CONTROL: &str = "\u{E009}";
/// WebDriver's key for Enter.
pub const ENTER: &str = "\u{E007}";

pub struct Firefox {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    context: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Firefox {
    pub fn launch() -> Firefox {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(firefox())
            .args(["--headless", "--no-remote", "--remote-debugging-port=0", "--width=1400", "--height=900", "--profile"])
            .arg(profile.path())
            .env("HOME", profile.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start firefox");
        // Firefox refuses handshakes that carry an Origin; tungstenite sends none.
        let ws = crate::browser::connect_from_stderr(&mut child, "/session", "firefox's WebDriver BiDi endpoint");
        let mut ff = Firefox { child, ws, context: String::new(), next_id: 0, _profile: profile };
        ff.call("session.new", json!({"capabilities": {}}));
        let tree = ff.call("browsingContext.getTree", json!({}));
        ff.context = tree["contexts"][0]["context"].as_str().expect("a browsing context").to_string();
        ff
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.ws.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string())).expect("send to firefox");
        loop {
            let Message::Text(text) = self.ws.read().expect("read from firefox") else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("firefox sends JSON");
            if v["id"] == id {
                assert!(v["type"] != "error", "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    pub fn goto(&mut self, url: &str) {
        let context = self.context.clone();
        self.call("browsingContext.navigate", json!({"context": context, "url": url, "wait": "complete"}));
    }

    /// Evaluates JavaScript in the page (promises awaited); its value as JSON.
    pub fn eval(&mut self, js: &str) -> Value {
        let context = self.context.clone();
        let r = self.call("script.evaluate", json!({"expression": js, "target": {"context": context}, "awaitPromise": true, "resultOwnership": "none"}));
        assert!(r["type"] != "exception", "the page threw on `{js}`: {}", r["exceptionDetails"]);
        // BiDi's values are typed: {type: "string", value: ...}; JSON.stringify in the page keeps it simple.
        r["result"]["value"].clone()
    }

    pub fn wait_until(&mut self, what: &str, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.eval(&format!("!!({js})")) == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText.slice(0, 3000) : ''");
                panic!("timed out waiting for {what} in Firefox (`{js}`); the page shows:\n{}", text.as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses keys in order, holding the ones in `held` (e.g. [CONTROL]) down throughout.
    pub fn keys(&mut self, held: &[&str], keys: &str) {
        let mut actions = Vec::new();
        for k in held {
            actions.push(json!({"type": "keyDown", "value": k}));
        }
        for c in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        for k in held.iter().rev() {
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        let context = self.context.clone();
        self.call("input.performActions", json!({"context": context, "actions": [{"type": "key", "id": "keyboard", "actions": actions}]}));
    }

    /// Focuses the first element `selector` matches.
    pub fn focus(&mut self, selector: &str) {
        self.eval(&format!("document.querySelector({selector:?}).focus()"));
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
