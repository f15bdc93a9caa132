//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages ending in NUL, commands on fd 3, replies and
//! events on fd 4). Written here rather than taken from a crate: headless_chrome's build
//! script downloads the protocol definition at build time (fails on an offline CI), and the
//! pipe needs neither a WebSocket client nor a debugging port other processes could reach.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// How long one command or awaited event may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// One headless browser with one page.
pub struct Chromium {
    child: Child,
    commands: File,
    replies: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    /// Every event received, in order.
    pub events: Vec<Value>,
}

/// A pipe's two ends moved to fds 10 and above, closed on exec, so putting them at 3 and 4 in
/// the child cannot overwrite one with the other.
fn high_pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let high = |fd: RawFd| {
        // SAFETY: duplicates an fd we own, then closes the original.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(moved >= 10);
        unsafe { libc::close(fd) };
        moved
    };
    (high(fds[0]), high(fds[1]))
}

impl Chromium {
    /// Starts the browser with its profile and log under `dir`.
    pub fn launch(dir: &Path) -> Chromium {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let (command_read, command_write) = high_pipe();
        let (reply_read, reply_write) = high_pipe();
        let log = File::create(dir.join("chromium.log")).unwrap();
        let mut command = Command::new("/usr/lib/chromium/chromium");
        command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--mute-audio",
                "--font-render-hinting=none",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: only async-signal-safe dup2 calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(command_read, 3) < 0 || libc::dup2(reply_write, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("start chromium (lab/install.sh installs it)");
        // SAFETY: the parent's ends are ours alone; the child's are closed here after fork.
        let (commands, replies_file) = unsafe {
            libc::close(command_read);
            libc::close(reply_write);
            (
                File::from_raw_fd(command_write),
                File::from_raw_fd(reply_read),
            )
        };
        let (sender, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(replies_file);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice(&message) {
                    if sender.send(value).is_err() {
                        break;
                    }
                }
                message.clear();
            }
        });
        Chromium {
            child,
            commands,
            replies,
            next_id: 1,
            session: None,
            events: Vec::new(),
        }
    }

    /// Sends a command (to the page once one is open) and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// [`Chromium::call`], with the protocol's error returned rather than a panic.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let reply = self
                .replies
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no reply to {method} from chromium"));
            if reply["id"] == json!(id) {
                return match reply.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(reply["result"].clone()),
                };
            }
            self.events.push(reply);
        }
    }

    /// Waits for the next event named `method` (events seen meanwhile are kept).
    pub fn wait_for(&mut self, method: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let event = self
                .replies
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("chromium sent no {method}"));
            let found = event["method"] == json!(method);
            self.events.push(event.clone());
            if found {
                return event;
            }
        }
    }

    /// Opens a page at 1100 px wide with console, log and network events on, and loads `url`.
    pub fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        for domain in ["Page", "Runtime", "Log", "Network"] {
            self.call(&format!("{domain}.enable"), json!({}));
        }
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        self.navigate(url);
    }

    /// Loads `url` in the open page and waits for its load event.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("Page.loadEventFired");
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is `true`, for up to 30 s; a page reloading meanwhile is
    /// tolerated.
    pub fn wait_until(&mut self, expression: &str) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            let result = self.try_call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            );
            if result.is_ok_and(|r| r["result"]["value"] == json!(true)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("never true in the page: {expression}");
    }

    /// Errors the page logged: console errors, uncaught exceptions, and the browser's own
    /// log entries at error level (refused loads, CSP violations).
    pub fn console_errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|event| {
                let params = &event["params"];
                match event["method"].as_str()? {
                    "Runtime.consoleAPICalled"
                        if matches!(params["type"].as_str(), Some("error" | "assert")) =>
                    {
                        Some(params["args"].to_string())
                    }
                    "Runtime.exceptionThrown" => Some(params["exceptionDetails"].to_string()),
                    "Log.entryAdded" if params["entry"]["level"] == "error" => {
                        Some(params["entry"].to_string())
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// Every URL the page requested, in order.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(String::from))
            .collect()
    }

    /// A PNG of the whole page.
    pub fn screenshot(&mut self, path: &Path) -> PathBuf {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        self.save(&shot["data"], path)
    }

    /// The page printed to PDF, as its print CSS lays it out.
    pub fn pdf(&mut self, path: &Path) -> PathBuf {
        let pdf = self.call(
            "Page.printToPDF",
            json!({"printBackground": true, "preferCSSPageSize": true}),
        );
        self.save(&pdf["data"], path)
    }

    fn save(&self, data: &Value, path: &Path) -> PathBuf {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64 data"))
            .unwrap();
        std::fs::write(path, bytes).unwrap();
        // Kept beyond the scratch folder when asked, to be looked at.
        if let Some(dir) = std::env::var_os("MAILTLS_KEEP_SCREENSHOTS") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(path, Path::new(&dir).join(path.file_name().unwrap()));
        }
        path.to_path_buf()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
