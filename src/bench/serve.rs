//! A reference kept alive for the whole benchmark: a script started with `--serve` reads one
//! JSON request per line on stdin and answers one JSON line on stdout, so torch or SciPy is
//! imported, and the model, data and worker pool are built, once; every timed repeat is then
//! one request. An answer `{"error": …}` is the script's refusal of a request; the end of
//! its output is its failure (the last line of its stderr says why).
use crate::bench::train::ReferenceError;
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a closed server may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(30);

/// A running `--serve` reference; dropping it closes its stdin and reaps it.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `python script args… --serve`.
    pub fn start(python: &Path, script: &Path, args: &[String]) -> Result<Server, ReferenceError> {
        Server::start_with_env(python, script, args, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(python: &Path, script: &Path, args: &[String], env: &[(&str, String)]) -> Result<Server, ReferenceError> {
        let mut child = Command::new(python)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg(script)
            .args(args)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ReferenceError::CannotRun { python: python.to_path_buf(), error: e.to_string() })?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take().map(BufReader::new));
        let stderr = Arc::new(Mutex::new(String::new()));
        // Drained on a thread so a chatty script never blocks on a full stderr pipe.
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    sink.lock().map(|mut s| s.push_str(&String::from_utf8_lossy(&buf[..n]))).ok();
                }
            });
        }
        let stdout = stdout.ok_or_else(|| ReferenceError::Failed("no stdout pipe".into()))?;
        Ok(Server { child, stdin, stdout, stderr })
    }

    /// Sends one request and parses its answer as `T`.
    pub fn request<T: DeserializeOwned>(&mut self, request: &serde_json::Value) -> Result<T, ReferenceError> {
        let line = self.request_raw(&request.to_string())?;
        let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| ReferenceError::BadOutput(format!("{e}: {}", line.trim())))?;
        if let Some(e) = value.get("error") {
            return Err(ReferenceError::Failed(e.as_str().map_or_else(|| e.to_string(), str::to_string)));
        }
        serde_json::from_value(value).map_err(|e| ReferenceError::BadOutput(format!("{e}: {}", line.trim())))
    }

    /// Sends one line (a newline is added) and returns the answer line.
    pub fn request_raw(&mut self, line: &str) -> Result<String, ReferenceError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| ReferenceError::Failed("the reference was closed".into()))?;
        let sent = writeln!(stdin, "{line}").and_then(|_| stdin.flush());
        let mut answer = String::new();
        match sent.and_then(|_| self.stdout.read_line(&mut answer)) {
            Ok(n) if n > 0 => Ok(answer),
            _ => Err(ReferenceError::Failed(self.died())),
        }
    }

    /// Why the child stopped answering: its last line of stderr once it has exited.
    fn died(&mut self) -> String {
        self.stdin = None;
        let status = self.reap();
        // The stderr thread may still be copying the last bytes.
        std::thread::sleep(Duration::from_millis(50));
        let text = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        format!("the reference stopped answering ({}): {last}", status.map_or("still running, killed".to_string(), |s| s.to_string()))
    }

    /// Waits for the child to exit (killing it after [`EXIT_GRACE`]); its status when it
    /// exited by itself.
    fn reap(&mut self) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        while t.elapsed() < EXIT_GRACE {
            match self.child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        self.child.kill().ok();
        self.child.wait().ok();
        None
    }

    /// Closes the child's stdin (its signal to exit) and reaps it; its exit status.
    pub fn close(mut self) -> Option<std::process::ExitStatus> {
        self.stdin = None;
        self.reap()
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stdin.take().is_some() {
            self.reap();
        }
    }
}
