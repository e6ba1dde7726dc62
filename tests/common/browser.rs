//! Runs tests/browser/play.mjs (hls.js or dash.js in headless Chromium) and returns its
//! JSON report.

use std::process::Command;

use super::tools;

/// Plays `url` for `seconds` with `player` ("hls" or "dash"); panics with the script's
/// output if it could not run.
pub fn play(url: &str, player: &str, seconds: u32, extra: &[&str]) -> serde_json::Value {
    let dir = tools::browser_dir();
    let out = Command::new(tools::node())
        .arg(dir.join("play.mjs"))
        .args([
            "--url",
            url,
            "--seconds",
            &seconds.to_string(),
            "--player",
            player,
        ])
        .args(extra)
        .output()
        .expect("run node play.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "play.mjs failed:\n{stderr}\n{stdout}");
    let line = stdout.lines().last().unwrap_or_default();
    let r: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}\n{stderr}"));
    eprintln!("{player} result for {url}: {r}");
    r
}

/// The assertions every playback test makes: no fatal error, ≥ 80 % of wall time
/// advanced, the expected picture size, audio decoded.
pub fn assert_played(r: &serde_json::Value, width: u64, height: u64) {
    assert_eq!(
        r["fatal"].as_array().map(Vec::len),
        Some(0),
        "fatal player errors: {r}"
    );
    let window = r["window"].as_f64().unwrap_or(10.0);
    assert!(
        r["advanced"].as_f64().unwrap_or(0.0) >= window * 0.8,
        "currentTime advanced too little: {r}"
    );
    assert_eq!(r["videoWidth"], width, "{r}");
    assert_eq!(r["videoHeight"], height, "{r}");
    assert!(
        r["audioDecodedBytes"].as_f64().unwrap_or(0.0) > 0.0,
        "no audio decoded: {r}"
    );
}
