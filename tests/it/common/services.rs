//! Real services started by the tests that need them: a throwaway PostgreSQL cluster in a temporary
//! folder, and moto's SQS emulator. Nothing is assumed to be running. When a binary is missing the
//! test fails with what to install (`.ci/run` installs both).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port for a throwaway PostgreSQL, below the kernel's ephemeral range (32768 and up): while a
/// test has the server stopped (an outage), nothing else in the tests can be handed its port by
/// a bind to port 0 (`free_port`, the servers under test, outgoing connections), so it starts
/// again on the same port. Spread by process id so that test processes running side by side
/// rarely try the same ports; a port found taken is skipped.
fn pg_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20000 + (std::process::id() % 500) as u16 * 16;
    loop {
        let port = 20000 + (base - 20000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn pg_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PG_BIN") {
        return PathBuf::from(p);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!("PostgreSQL binaries not found under /usr/lib/postgresql (set PG_BIN, or run .ci/run, which installs them)")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as user `postgres` when we are root (postgres refuses root).
fn pg_command(tool: &str) -> Command {
    let bin = pg_bin().join(tool);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

/// A PostgreSQL cluster in a temporary folder, stopped on drop.
pub struct TempPg {
    pub url: String,
    dir: tempfile::TempDir,
    /// `pg_ctl -o` options (the port among them), to start it again the same way.
    opts: String,
}

impl TempPg {
    pub fn start() -> TempPg {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the PostgreSQL folder failed");
        }
        let out = pg_command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = pg_port();
        let opts = format!(
            "-k {} -p {port} -h 127.0.0.1 -F -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir.path().display()
        );
        let pg = TempPg {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            opts,
        };
        pg.start_again();
        pg
    }

    /// Stops the server (its sessions are cut), keeping its data: an outage. A fast shutdown,
    /// not an immediate one: with `synchronous_commit=off` a crash could lose the last commits.
    pub fn stop(&self) {
        let out = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) on its port, and waits until it accepts connections. A start
    /// right after a stop is tried a few times (a loaded machine can be slow to release the old
    /// server's socket and lock files); a failure shows the server's log.
    pub fn start_again(&self) {
        let mut last = None;
        for _ in 0..5 {
            let out = pg_command("pg_ctl")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-o", &self.opts, "-l"])
                .arg(self.dir.path().join("log"))
                .args(["-w", "start"])
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            last = Some(out);
            std::thread::sleep(Duration::from_millis(500));
        }
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!(
            "pg_ctl start failed: {}\nserver log (last lines, newest first):\n{}",
            last.map(|o| String::from_utf8_lossy(&o.stderr).to_string())
                .unwrap_or_default(),
            tail.join("\n")
        );
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// moto's server (an AWS emulator), on a free port, killed on drop.
pub struct Moto {
    pub endpoint: String,
    child: Child,
}

fn moto_binary() -> PathBuf {
    if let Ok(p) = std::env::var("REDLINE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    on_path.unwrap_or_else(|| {
        panic!("moto_server not found: run .ci/run, or `python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]'`")
    })
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { endpoint, child }
    }

    /// Creates a queue (30 s visibility timeout) through the SDK and returns its URL.
    pub async fn create_queue(&self, name: &str) -> String {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&conf);
        sqs.create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("CreateQueue")
            .queue_url()
            .expect("QueueUrl")
            .to_string()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
