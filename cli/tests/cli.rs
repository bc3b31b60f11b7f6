//! The `tokencache` command run as a user runs it: on the shared vectors, on broken
//! inputs (bad JSON, foreign formats, a lock left behind, a wrong key, an unreachable
//! Redis), checking output and exit codes. The Redis tests need a server:
//! `TOKENCACHE_REDIS_URL` (`scripts/redis-server.sh run ...` sets it); without it they
//! pass without running, saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NOW: &str = "1700000000";

fn vectors() -> PathBuf {
    if let Ok(p) = std::env::var("TOKENCACHE_VECTORS") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for c in [root.join("../shared/vectors"), root.join("shared/vectors")] {
        if c.is_dir() {
            return c;
        }
    }
    panic!("shared vectors not found; set TOKENCACHE_VECTORS");
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tc-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A private copy of a vector (vectors are world-readable, which doctor reports).
    fn vector(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::copy(vectors().join(name), &p).unwrap();
        set_mode(&p, 0o600);
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(p: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (p, mode);
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokencache")).args(args).env_remove("NO_COLOR").output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// An error is one line on stderr, exit 2, nothing on stdout.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert_eq!(code(o), 2, "{}{}", stdout(o), stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tokencache: error: ") && err.contains(needle), "{err}");
    assert!(o.stdout.is_empty());
}

/// Every `secret` value of a JSON document (the vectors' tokens).
fn secrets_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "secret" && s.len() >= 8 => out.push(s.clone()),
                    _ => secrets_of(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| secrets_of(x, out)),
        _ => {}
    }
}

fn vector_secrets(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(vectors().join(name)).unwrap();
    let text = text.trim_start_matches('\u{feff}').replace(",\n}", "\n}").replace(",\n    }", "\n    }");
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        secrets_of(&v, &mut out);
    }
    out
}

#[test]
fn every_subcommand_has_help() {
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0);
    for sub in ["inspect", "doctor", "purge", "convert", "stats"] {
        assert!(stdout(&o).contains(sub), "{sub} missing from --help");
        let o = run(&[sub, "--help"]);
        assert_eq!(code(&o), 0, "{sub}");
        let text = stdout(&o);
        assert!(text.contains("Usage: tokencache") && text.contains("sqlite:PATH"), "{sub}: {text}");
    }
    // Bad arguments: clap's usage error, exit 2.
    assert_eq!(code(&run(&["purge", "x.json"])), 2, "purge needs --expired");
    assert_eq!(code(&run(&["frobnicate"])), 2);
}

#[test]
fn inspect_every_vector_without_secrets() {
    let mut inspected = 0;
    for entry in std::fs::read_dir(vectors()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !(name.ends_with(".json") || name.ends_with(".bin")) || name.contains(".events.") || name == "manifest.json"
        {
            continue;
        }
        let path = vectors().join(&name);
        let secrets = vector_secrets(&name);
        for args in [vec!["inspect", "--json", "--now", NOW], vec!["inspect", "--now", NOW]] {
            let mut argv: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
            argv.push(path.as_os_str());
            let o = run(&argv);
            let all = format!("{}{}", stdout(&o), stderr(&o));
            for s in &secrets {
                assert!(!all.contains(s.as_str()), "{name}: a secret was printed");
            }
            match name.as_str() {
                "dotnet__cachecompat_dotnet_dictionary.bin" => assert_one_line_error(&o, "MSAL.NET 2.x"),
                "msaljs__cacheStore.json" => assert_one_line_error(&o, "msal-common"),
                _ => {
                    assert_eq!(code(&o), 0, "{name}: {all}");
                    if args.contains(&"--json") {
                        let v = json(&o);
                        assert_eq!(v["source"]["kind"], "file");
                        for e in v["entries"].as_array().unwrap() {
                            assert!(e["secret"].is_null() || e["secret"] == "[redacted]", "{name}: {e}");
                        }
                    } else {
                        assert!(stdout(&o).contains("Secrets are redacted"), "{name}");
                    }
                    inspected += 1;
                }
            }
        }
    }
    assert!(inspected >= 40, "only {inspected} inspections");
}

#[test]
fn inspect_lists_accounts_tokens_scopes_expiries() {
    let v =
        json(&run(&["inspect", "--json", "--now", NOW, vectors().join("msal_python_combined.json").to_str().unwrap()]));
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 13);
    let ats: Vec<&Value> = entries.iter().filter(|e| e["credential_type"] == "AccessToken").collect();
    assert_eq!(ats.len(), 4);
    assert!(ats.iter().all(|e| e["expires_on"].as_i64().unwrap() > 1_700_000_000 && e["expired"] == false));
    assert!(ats.iter().any(|e| e["scopes"].as_array().unwrap().iter().any(|s| s == "User.Read")));
    assert!(entries.iter().any(|e| e["username"] == "ada@contoso.example"));
    assert_eq!(v["partitions"].as_array().unwrap().len(), 3);
    // A day later, the access tokens have expired.
    let later = json(&run(&[
        "inspect",
        "--json",
        "--now",
        "1700086400",
        vectors().join("msal_python_combined.json").to_str().unwrap(),
    ]));
    assert_eq!(later["entries"].as_array().unwrap().iter().filter(|e| e["expired"] == true).count(), 4);
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let file = vectors().join("msal_python_user_signin.json");
    let plain = run(&[std::ffi::OsStr::new("doctor"), file.as_os_str()]);
    assert!(!stdout(&plain).contains('\u{1b}'), "no colour into a pipe");
    let forced = run(&[std::ffi::OsStr::new("--color=always"), std::ffi::OsStr::new("doctor"), file.as_os_str()]);
    assert!(stdout(&forced).contains('\u{1b}'), "--color always colours");
    let o = Command::new(env!("CARGO_BIN_EXE_tokencache"))
        .args([std::ffi::OsStr::new("--color=auto"), std::ffi::OsStr::new("inspect"), file.as_os_str()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!stdout(&o).contains('\u{1b}'));
}

#[test]
fn doctor_passes_a_healthy_cache() {
    let dir = TempDir::new("healthy");
    let file = dir.vector("msal_python_combined.json");
    let o = run(&[
        std::ffi::OsStr::new("doctor"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
        file.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("No problem found"), "{}", stdout(&o));
    let v = json(&run(&[
        std::ffi::OsStr::new("doctor"),
        std::ffi::OsStr::new("--json"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
        file.as_os_str(),
    ]));
    assert_eq!(v["healthy"], true);
    assert!(v["checks"].as_array().unwrap().len() >= 10);
}

#[test]
fn doctor_finds_an_item_filed_twice() {
    // MSAL Go's migration test file holds its v1.0 (capitalised) and v1.1 keys of the
    // same tokens: what a file looks like after two SDKs each filed a renewal their way.
    let dir = TempDir::new("twice");
    let file = dir.vector("msalgo__v1.0_v1.1_cache.json");
    let v = json(&run(&[
        std::ffi::OsStr::new("doctor"),
        std::ffi::OsStr::new("--json"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
        file.as_os_str(),
    ]));
    let found = v["findings"].as_array().unwrap().iter().find(|f| f["check"] == "duplicates").cloned();
    let found = found.unwrap_or_else(|| panic!("no duplicates finding: {v}"));
    assert_eq!(found["severity"], "warning");
    let subjects = found["subjects"].as_array().unwrap();
    assert!(subjects.iter().any(|s| s.as_str().unwrap().starts_with("RefreshToken: ")), "{found}");
    // A file msal Python wrote alone has none.
    let healthy = dir.vector("msal_python_combined.json");
    let v = json(&run(&[
        std::ffi::OsStr::new("doctor"),
        std::ffi::OsStr::new("--json"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
        healthy.as_os_str(),
    ]));
    assert!(v["findings"].as_array().unwrap().iter().all(|f| f["check"] != "duplicates"), "{v}");
}

#[test]
fn doctor_says_when_another_sdk_writes_the_file() {
    let dir = TempDir::new("othersdk");
    let doctor = |file: &std::path::Path| {
        json(&run(&[
            std::ffi::OsStr::new("doctor"),
            std::ffi::OsStr::new("--json"),
            std::ffi::OsStr::new("--now"),
            std::ffi::OsStr::new(NOW),
            file.as_os_str(),
        ]))
    };
    let v = doctor(&dir.vector("msaljs__cache.json"));
    let found = v["findings"].as_array().unwrap().iter().find(|f| f["check"] == "other_sdks").cloned();
    let found = found.unwrap_or_else(|| panic!("no other_sdks finding: {v}"));
    assert_eq!(found["severity"], "info");
    assert!(found["fix"].as_str().unwrap().contains("cache.sharing"), "{found}");
    assert!(!found["subjects"].as_array().unwrap().is_empty());
    // msal Python's own file: nothing to say.
    let v = doctor(&dir.vector("msal_python_combined.json"));
    assert!(v["findings"].as_array().unwrap().iter().all(|f| f["check"] != "other_sdks"), "{v}");
    assert!(v["checks"].as_array().unwrap().iter().any(|c| c["check"] == "other_sdks" || c == "other_sdks"), "{v}");
}

#[test]
fn doctor_on_bad_json_names_line_and_column() {
    let dir = TempDir::new("badjson");
    let file = dir.path("msal_token_cache.json");
    std::fs::write(&file, "{\n    \"AccessToken\": {\n        \"k\": {\"secret\": \"x\"}\n        \"oops\"\n    }\n}")
        .unwrap();
    set_mode(&file, 0o600);
    let o = run(&[std::ffi::OsStr::new("doctor"), file.as_os_str()]);
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(out.contains("ERROR") && out.contains("not valid JSON at line 4, column 9"), "{out}");
    assert!(out.contains("fix:") && out.contains("lock"), "{out}");
    // inspect refuses it in one line.
    assert_one_line_error(&run(&[std::ffi::OsStr::new("inspect"), file.as_os_str()]), "line 4, column 9");
    // purge leaves it alone.
    let o = run(&[std::ffi::OsStr::new("purge"), std::ffi::OsStr::new("--expired"), file.as_os_str()]);
    assert_one_line_error(&o, "line 4, column 9");
    assert!(std::fs::read_to_string(&file).unwrap().contains("oops"));
}

#[test]
fn doctor_names_foreign_formats() {
    for (name, needle, fix) in [
        ("dotnet__cachecompat_dotnet_dictionary.bin", "MSAL.NET 2.x", "SerializeMsalV3"),
        ("msaljs__cacheStore.json", "msal-common", "msal-node"),
    ] {
        let dir = TempDir::new("foreign");
        let file = dir.vector(name);
        let o = run(&[std::ffi::OsStr::new("doctor"), file.as_os_str()]);
        assert_eq!(code(&o), 1, "{name}");
        let out = stdout(&o);
        assert!(out.contains(needle) && out.contains(fix), "{name}: {out}");
    }
}

#[test]
fn doctor_finds_a_lock_left_behind() {
    let dir = TempDir::new("lock");
    let file = dir.vector("msal_python_user_signin.json");
    let lock = dir.path("msal_python_user_signin.json.lockfile");
    // A pid above Linux's maximum: no such process.
    std::fs::write(&lock, "4194999 /usr/bin/az").unwrap();
    let o = run(&[
        std::ffi::OsStr::new("doctor"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
        file.as_os_str(),
    ]);
    let out = stdout(&o);
    if cfg!(target_os = "linux") {
        assert_eq!(code(&o), 1, "{out}");
        assert!(out.contains("pid 4194999 (/usr/bin/az), which is no longer running"), "{out}");
        assert!(out.contains(&format!("fix: delete {}", lock.display())), "{out}");
    }
    // Held by a live process (this test): worth a note, not a problem.
    std::fs::write(&lock, format!("{} cargo-test", std::process::id())).unwrap();
    let o = run(&[
        std::ffi::OsStr::new("doctor"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
        file.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("holds the lock right now"));
}

#[test]
fn doctor_reports_missing_file_and_loose_permissions() {
    let dir = TempDir::new("missing");
    let o = run(&[std::ffi::OsStr::new("doctor"), dir.path("nope.json").as_os_str()]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("there is no cache file"), "{}", stdout(&o));
    let file = dir.vector("msal_python_user_signin.json");
    set_mode(&file, 0o644);
    let o = run(&[
        std::ffi::OsStr::new("doctor"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
        file.as_os_str(),
    ]);
    if cfg!(unix) {
        assert_eq!(code(&o), 1);
        assert!(stdout(&o).contains("chmod 600"), "{}", stdout(&o));
    }
}

fn write_key(dir: &TempDir, name: &str, byte: u8) -> PathBuf {
    let p = dir.path(name);
    std::fs::write(&p, format!("{:02x}", byte).repeat(32)).unwrap();
    p
}

#[test]
fn convert_encrypts_and_doctor_finds_a_wrong_key() {
    let dir = TempDir::new("keys");
    let file = dir.vector("msal_python_combined.json");
    let good = write_key(&dir, "good.key", 0x11);
    let wrong = write_key(&dir, "wrong.key", 0x22);
    let db = dir.path("tokens.db");
    let o = run(&[
        std::ffi::OsStr::new("convert"),
        file.as_os_str(),
        db.as_os_str(),
        std::ffi::OsStr::new("--encrypt-key-file"),
        good.as_os_str(),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("encrypted with key"), "{}", stdout(&o));
    // The database holds no token in clear.
    let raw = std::fs::read(&db).unwrap();
    for s in vector_secrets("msal_python_combined.json") {
        assert!(!raw.windows(s.len()).any(|w| w == s.as_bytes()));
    }
    let doctor = |key: Option<&Path>| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["doctor".as_ref(), db.as_os_str(), "--now".as_ref(), NOW.as_ref()];
        if let Some(k) = key {
            args.extend(["--key-file".as_ref(), k.as_os_str()]);
        }
        run(&args)
    };
    let o = doctor(Some(&wrong));
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("not in the given key ring"), "{}", stdout(&o));
    let o = doctor(Some(&good));
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = doctor(None);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("no key was given"));
    // Later, the app's partition has expired and is still in the table.
    let o = run(&[
        std::ffi::OsStr::new("doctor"),
        db.as_os_str(),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new("1700086400"),
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("1 of 3 rows have expired"), "{}", stdout(&o));

    // Back to a file, decrypted: the same entries.
    let back = dir.path("back.json");
    let o = run(&[
        std::ffi::OsStr::new("convert"),
        db.as_os_str(),
        back.as_os_str(),
        std::ffi::OsStr::new("--key-file"),
        good.as_os_str(),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(NOW),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let count = |p: &Path| {
        json(&run(&[std::ffi::OsStr::new("inspect"), std::ffi::OsStr::new("--json"), p.as_os_str()]))["entries"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&back), count(&file));
    // Not over a cache without --force; never encrypted into a file.
    let o = run(&[std::ffi::OsStr::new("convert"), file.as_os_str(), back.as_os_str()]);
    assert_one_line_error(&o, "--force");
    let o = run(&[
        std::ffi::OsStr::new("convert"),
        db.as_os_str(),
        dir.path("x.json").as_os_str(),
        std::ffi::OsStr::new("--encrypt-key-file"),
        good.as_os_str(),
    ]);
    assert_one_line_error(&o, "always written in clear");
}

#[test]
fn purge_removes_expired_tokens_only() {
    let dir = TempDir::new("purge");
    let file = dir.vector("msal_python_combined.json");
    let day_later = "1700086400";
    let o = run(&[
        std::ffi::OsStr::new("purge"),
        std::ffi::OsStr::new("--expired"),
        std::ffi::OsStr::new("--dry-run"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(day_later),
        file.as_os_str(),
    ]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("Would remove 4 expired access tokens"), "{}", stdout(&o));
    let o = run(&[
        std::ffi::OsStr::new("purge"),
        std::ffi::OsStr::new("--expired"),
        std::ffi::OsStr::new("--now"),
        std::ffi::OsStr::new(day_later),
        file.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Removed 4 expired access tokens"), "{}", stdout(&o));
    let v = json(&run(&[std::ffi::OsStr::new("stats"), std::ffi::OsStr::new("--json"), file.as_os_str()]));
    assert_eq!(v["by_type"]["AccessToken"]["entries"], 0);
    assert_eq!(v["by_type"]["RefreshToken"]["entries"], 2);
    assert_eq!(v["entries"], 9);
}

#[test]
fn errors_are_one_clear_line() {
    let dir = TempDir::new("errors");
    assert_one_line_error(&run(&[std::ffi::OsStr::new("inspect"), dir.path("none.json").as_os_str()]), "cannot read");
    assert_one_line_error(&run(&[std::ffi::OsStr::new("stats"), dir.path("none.db").as_os_str()]), "no database");
    let key = write_key(&dir, "k", 1);
    let file = dir.vector("msal_python_user_signin.json");
    assert_one_line_error(
        &run(&[std::ffi::OsStr::new("inspect"), file.as_os_str(), std::ffi::OsStr::new("--key-file"), key.as_os_str()]),
        "never encrypted",
    );
    assert_one_line_error(
        &run(&[
            std::ffi::OsStr::new("doctor"),
            std::ffi::OsStr::new("sqlite:x.db"),
            std::ffi::OsStr::new("--key-file"),
            dir.path("no-such.key").as_os_str(),
        ]),
        "no-such.key",
    );
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_redis() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let o = run(&["doctor", &url, "--timeout-ms", "300"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("ERROR") && out.contains("Redis does not answer") && out.contains("fix:"), "{out}");
    assert_one_line_error(&run(&["inspect", &url, "--timeout-ms", "300"]), "redis");
    // A password in the URL is never printed.
    let o = run(&["doctor", &format!("redis://:hunter2secret@127.0.0.1:{}", closed_port()), "--timeout-ms", "300"]);
    assert!(!stdout(&o).contains("hunter2secret") && !stderr(&o).contains("hunter2secret"));
}

// ---- against a real redis-server ----

fn redis_url() -> Option<String> {
    let url = std::env::var("TOKENCACHE_REDIS_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("TOKENCACHE_REDIS_URL is not set: the real-Redis test did not run");
    }
    url
}

/// Sends one command to Redis (RESP over TCP) and returns the raw reply.
fn redis_command(url: &str, args: &[&str]) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("redis://").split('/').next().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_real_redis() {
    let Some(url) = redis_url() else { return };
    let dir = TempDir::new("redis");
    let file = dir.vector("msal_python_combined.json");
    let prefix = format!("cli-test-{}:", std::process::id());
    let key = write_key(&dir, "k", 0x33);
    let wrong = write_key(&dir, "w", 0x44);
    // Stored with the vector's time as "now", so its tokens are fresh to the store too.
    let o = run(&[
        "convert",
        file.to_str().unwrap(),
        &url,
        "--prefix",
        &prefix,
        "--encrypt-key-file",
        key.to_str().unwrap(),
        "--now",
        NOW,
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Copied 3 partitions"), "{}", stdout(&o));

    let v = json(&run(&[
        "inspect",
        &url,
        "--prefix",
        &prefix,
        "--json",
        "--key-file",
        key.to_str().unwrap(),
        "--now",
        NOW,
    ]));
    assert_eq!(v["blobs"].as_array().unwrap().len(), 3);
    assert_eq!(v["entries"].as_array().unwrap().len(), 13);

    let o = run(&["doctor", &url, "--prefix", &prefix, "--key-file", key.to_str().unwrap(), "--now", NOW]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = run(&["doctor", &url, "--prefix", &prefix, "--key-file", wrong.to_str().unwrap(), "--now", NOW]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("not in the given key ring"));

    // An empty prefix: nothing there.
    let o = run(&["doctor", &url, "--prefix", "nothing-here:", "--now", NOW]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("holds no partition"), "{}", stdout(&o));

    // A day later the access tokens have expired: purge rewrites the blobs.
    let o = run(&[
        "purge",
        "--expired",
        &url,
        "--prefix",
        &prefix,
        "--key-file",
        key.to_str().unwrap(),
        "--now",
        "1700086400",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Removed 4 expired access tokens"), "{}", stdout(&o));
    let v = json(&run(&["stats", &url, "--prefix", &prefix, "--json", "--key-file", key.to_str().unwrap()]));
    assert_eq!(v["by_type"]["AccessToken"]["entries"], 0);
    assert_eq!(v["by_type"]["RefreshToken"]["entries"], 2);

    // Redis allowed to evict any key: a warning.
    assert!(redis_command(&url, &["CONFIG", "SET", "maxmemory", "1gb"]).starts_with("+OK"));
    assert!(redis_command(&url, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).starts_with("+OK"));
    let o = run(&["doctor", &url, "--prefix", &prefix, "--key-file", key.to_str().unwrap(), "--now", "1700086400"]);
    redis_command(&url, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    redis_command(&url, &["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("allkeys-lru") && stdout(&o).contains("volatile-lru"), "{}", stdout(&o));
    for k in [
        "00000000-0000-0000-66f3-3332eca7ea81.72f988bf-0000-4000-8000-00000000cafe",
        "9f4880d8-1111-4c2d-9a3e-123456789abc.72f988bf-0000-4000-8000-00000000cafe",
        "a1b2c3d4-1111-4222-8333-444455556666_72f988bf-0000-4000-8000-00000000cafe_AppTokenCache",
    ] {
        redis_command(&url, &["DEL", &format!("{prefix}{{{k}}}")]);
    }
}
