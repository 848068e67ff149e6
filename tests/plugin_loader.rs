//! The partitioner plugin loader against every kind of bad file, a good
//! plugin, and a misbehaving one; and the one-line errors `yak-node produce`
//! prints for bad files. No cluster needed: plugins load before connecting.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;
use yak::client::partitioner::{Message, Partitioner};
use yak::client::plugin::{PluginError, PluginPartitioner};
use yak_partitioner_api::ABI_VERSION;
use yak_tests::{plugin_path, run_yak_node};

fn load_err(path: &Path) -> PluginError {
    match PluginPartitioner::load(path, 16_384) {
        Ok(p) => panic!("{} loaded as {p:?}", path.display()),
        Err(e) => e,
    }
}

/// Each bad file, with what its error must say.
fn bad_files(dir: &Path) -> Vec<(&'static str, PathBuf, String)> {
    let text = dir.join("notes.so");
    std::fs::write(&text, "this is a text file, not a plugin\n").unwrap();
    vec![
        (
            "missing file",
            dir.join("does-not-exist.so"),
            "no such file".into(),
        ),
        ("text file", text, "not a loadable shared library".into()),
        (
            "shared library without the symbol",
            plugin_path("fixture-no-symbol"),
            "no symbol `yak_partitioner_table`".into(),
        ),
        (
            "wrong ABI version",
            plugin_path("fixture-wrong-abi"),
            format!("ABI version 999, this yak-node speaks version {ABI_VERSION}"),
        ),
    ]
}

#[test]
fn given_bad_plugin_files_when_loading_should_name_file_and_problem_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (case, path, want) in bad_files(dir.path()) {
        let msg = load_err(&path).to_string();
        assert!(
            msg.contains(&path.display().to_string()),
            "{case}: no path in: {msg}"
        );
        assert!(msg.contains(&want), "{case}: want {want:?} in: {msg}");
        assert!(!msg.contains('\n'), "{case}: more than one line: {msg}");
    }
    assert!(matches!(
        load_err(&plugin_path("fixture-wrong-abi")),
        PluginError::AbiVersion { found: 999, .. }
    ));
}

#[test]
fn given_a_system_library_when_loading_should_report_missing_symbol() {
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.is_file());
    let Some(libm) = libm else {
        eprintln!("no libm.so.6 found; the fixture test covers the same case");
        return;
    };
    assert!(matches!(load_err(libm), PluginError::MissingSymbol { .. }));
}

#[test]
fn given_bad_plugin_files_when_producing_should_exit_1_with_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("no-cluster-here");
    for (case, path, want) in bad_files(dir.path()) {
        let args = [
            "produce",
            "--topic",
            "t",
            "--message",
            "m",
            "--partitioner",
            path.to_str().unwrap(),
            "--cluster",
            cluster.to_str().unwrap(),
        ];
        let out = run_yak_node(&args, None, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{case}: want one line, got: {stderr}");
        assert!(
            lines[0].starts_with("error: partitioner plugin ") && lines[0].contains(&want),
            "{case}: {stderr}"
        );
    }
}

#[test]
fn given_each_strategy_plugin_when_loading_should_report_its_name_and_stay_in_range() {
    for name in [
        "round-robin",
        "key-hash",
        "sticky",
        "random",
        "least-loaded",
    ] {
        let mut p = PluginPartitioner::load(&plugin_path(name), 1024).unwrap();
        assert_eq!(p.name(), name);
        let in_flight = [3u64, 0, 9, 1, 4];
        for i in 0..500 {
            let key = format!("k{i}");
            let msg = Message {
                key: (i % 2 == 0).then_some(key.as_bytes()),
                value_len: 100,
                in_flight: &in_flight,
            };
            let got = p.partition("topic-a", &msg).unwrap();
            assert!(got < 5, "{name} gave {got}");
        }
    }
}

#[test]
fn given_panicking_or_out_of_range_plugin_when_partitioning_should_return_error_or_value_and_survive(
) {
    let mut p = PluginPartitioner::load(&plugin_path("fixture-misbehaving"), 1024).unwrap();
    let in_flight = [0u64; 3];
    let msg = |key: &'static [u8]| Message {
        key: Some(key),
        value_len: 1,
        in_flight: &[0u64; 3],
    };
    let _ = in_flight;
    let err = p.partition("t", &msg(b"panic")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Call { call: "partition", what, .. } if what == "panicked"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("misbehaving") && err.to_string().contains("panicked"),
        "{err}"
    );
    // Out of range is the host's to check (the producer falls back); the loader passes it on.
    assert_eq!(p.partition("t", &msg(b"out-of-range")).unwrap(), 10);
    assert_eq!(
        p.partition("t", &msg(b"fine")).unwrap(),
        0,
        "usable after a caught panic"
    );
}
