//! Where the Python and Node workers live and how they are installed: the worker sources
//! are built into the binary, and `aiconfig-harness setup-workers` writes them to a cache
//! directory with their pinned dependencies (a Python venv, `npm ci`), so that a user needs
//! nothing from this repository. The directory is named by a hash of those files, so a
//! harness whose workers or pins changed installs beside an older one instead of using it.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha1::{Digest, Sha1};

use super::process::Launch;
use crate::scenario::SdkKind;

/// Overrides where workers are installed.
pub const DIR_VARIABLE: &str = "AICONFIG_HARNESS_WORKERS";
/// Written last by a successful setup: its absence means "not installed".
const STAMP: &str = ".installed";

type Files = &'static [(&'static str, &'static str)];

const PYTHON: Files = &[
    (
        "aiconfig_worker.py",
        include_str!("../../../workers/python/aiconfig_worker.py"),
    ),
    (
        "requirements.txt",
        include_str!("../../../workers/python/requirements.txt"),
    ),
];

const NODE: Files = &[
    (
        "worker.mjs",
        include_str!("../../../workers/node/worker.mjs"),
    ),
    (
        "lib/app.mjs",
        include_str!("../../../workers/node/lib/app.mjs"),
    ),
    (
        "lib/clock.mjs",
        include_str!("../../../workers/node/lib/clock.mjs"),
    ),
    (
        "lib/histogram.mjs",
        include_str!("../../../workers/node/lib/histogram.mjs"),
    ),
    (
        "lib/lag.mjs",
        include_str!("../../../workers/node/lib/lag.mjs"),
    ),
    (
        "lib/load.mjs",
        include_str!("../../../workers/node/lib/load.mjs"),
    ),
    (
        "lib/metrics.mjs",
        include_str!("../../../workers/node/lib/metrics.mjs"),
    ),
    (
        "lib/output.mjs",
        include_str!("../../../workers/node/lib/output.mjs"),
    ),
    (
        "lib/retry.mjs",
        include_str!("../../../workers/node/lib/retry.mjs"),
    ),
    (
        "package.json",
        include_str!("../../../workers/node/package.json"),
    ),
    (
        "package-lock.json",
        include_str!("../../../workers/node/package-lock.json"),
    ),
];

fn files(sdk: SdkKind) -> Files {
    match sdk {
        SdkKind::Python => PYTHON,
        SdkKind::Node | SdkKind::Rust => NODE,
    }
}

/// The directory all workers are installed under: `$AICONFIG_HARNESS_WORKERS`, else
/// `$XDG_CACHE_HOME/aiconfig-harness/workers`, else `~/.cache/aiconfig-harness/workers`.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os(DIR_VARIABLE).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("aiconfig-harness").join("workers")
}

/// Where the workers of `sdk` are installed: `ROOT/python-<hash>`.
pub fn dir(sdk: SdkKind) -> PathBuf {
    let mut hash = Sha1::new();
    for (name, text) in files(sdk) {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
    }
    let hex: String = hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    root().join(format!("{}-{hex}", sdk.name()))
}

/// How to start a worker of `sdk`, or what is missing, with the command that installs it.
pub fn launch(sdk: SdkKind) -> Result<Launch, String> {
    let dir = dir(sdk);
    if !dir.join(STAMP).is_file() {
        return Err(format!(
            "the {} workers are not installed (looked in {}): run `aiconfig-harness setup-workers --sdk {}` once (it needs {}), or set {DIR_VARIABLE} to where they are",
            sdk.name(),
            dir.display(),
            sdk.name(),
            needs(sdk),
        ));
    }
    Ok(match sdk {
        SdkKind::Python => Launch {
            program: dir.join("venv/bin/python"),
            args: vec![dir.join("aiconfig_worker.py").display().to_string()],
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
        },
        _ => Launch {
            program: PathBuf::from("node"),
            args: vec![dir.join("worker.mjs").display().to_string()],
            env: Vec::new(),
        },
    })
}

fn needs(sdk: SdkKind) -> &'static str {
    match sdk {
        SdkKind::Python => "python3 (3.9 or later) with venv, and access to PyPI",
        _ => "node (20 or later) and npm, and access to the npm registry",
    }
}

/// Installs the workers of `sdk` (a no-op when they already are); says what it does
/// through `say`. Returns the directory.
pub fn setup(sdk: SdkKind, say: &dyn Fn(&str)) -> Result<PathBuf, String> {
    let dir = dir(sdk);
    if dir.join(STAMP).is_file() {
        say(&format!(
            "{} workers: already installed in {}",
            sdk.name(),
            dir.display()
        ));
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (name, text) in files(sdk) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    say(&format!(
        "{} workers: installing into {}",
        sdk.name(),
        dir.display()
    ));
    match sdk {
        SdkKind::Python => {
            let python =
                std::env::var("AICONFIG_HARNESS_PYTHON").unwrap_or_else(|_| "python3".into());
            run(Command::new(&python)
                .args(["-m", "venv", "--clear"])
                .arg(dir.join("venv")))?;
            run(Command::new(dir.join("venv/bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                ])
                .arg(dir.join("requirements.txt")))?;
        }
        _ => {
            run(Command::new("npm")
                .args([
                    "ci",
                    "--omit=dev",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ])
                .current_dir(&dir))?;
        }
    }
    std::fs::write(dir.join(STAMP), "").map_err(|e| format!("writing the stamp: {e}"))?;
    say(&format!("{} workers: ready", sdk.name()));
    remove_older(sdk, &dir, say);
    Ok(dir)
}

/// Removes the installations of `sdk` for other worker sources (an older harness's): each
/// is a venv or node_modules of about 100 MB, and a cache should not grow with every upgrade.
fn remove_older(sdk: SdkKind, current: &Path, say: &dyn Fn(&str)) {
    let prefix = format!("{}-", sdk.name());
    let Ok(entries) = std::fs::read_dir(root()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && path != current && path.join(STAMP).exists() {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => say(&format!(
                    "{} workers: removed the older {}",
                    sdk.name(),
                    path.display()
                )),
                Err(e) => say(&format!(
                    "{} workers: could not remove {}: {e}",
                    sdk.name(),
                    path.display()
                )),
            }
        }
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("{shown} could not be started: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Err(format!("{shown} failed ({}):\n{tail}", output.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sources in `dir` (relative to workers/) ending in `ext`, as the lists name them.
    fn sources(dir: &str, ext: &str) -> Vec<String> {
        let workers = Path::new(env!("CARGO_MANIFEST_DIR")).join("workers");
        let prefix = dir.split_once('/').map_or("", |(_, rest)| rest);
        std::fs::read_dir(workers.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(ext))
            .map(|name| {
                if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                }
            })
            .collect()
    }

    /// A worker source left out of the lists would be missing from every install, and the
    /// worker would fail at its first import.
    #[test]
    fn every_worker_source_is_built_in() {
        let listed = |files: Files, name: &str| files.iter().any(|(n, _)| *n == name);
        let node = [sources("node", ".mjs"), sources("node/lib", ".mjs")].concat();
        assert!(node.contains(&"lib/lag.mjs".to_string()), "{node:?}");
        for name in node {
            assert!(listed(NODE, &name), "workers/node/{name} is not built in");
        }
        for name in sources("python", ".py") {
            assert!(
                listed(PYTHON, &name),
                "workers/python/{name} is not built in"
            );
        }
    }
}
