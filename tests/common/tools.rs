//! Locating the external tools the end-to-end tests drive. A missing tool is a test
//! failure that names the install step, never a silent pass.

use std::path::PathBuf;
use std::process::Command;

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// ffmpeg 9 from the PyPI package imageio-ffmpeg (Enhanced RTMP capable).
pub fn ffmpeg() -> PathBuf {
    if let Some(p) = from_env("PACKGATE_FFMPEG") {
        return p;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!("ffmpeg not found: run `python3 -m pip install imageio-ffmpeg` (bash tests/run.sh does it)"),
    }
}

/// ffprobe from Debian's ffmpeg package.
pub fn ffprobe() -> PathBuf {
    from_env("PACKGATE_FFPROBE")
        .or_else(|| Some(PathBuf::from("/usr/bin/ffprobe")).filter(|p| p.exists()))
        .unwrap_or_else(|| {
            panic!("ffprobe not found: run `apt-get install ffmpeg` (bash tests/run.sh does it)")
        })
}

/// gst-launch-1.0 with rtmp2sink, x264enc and voaacenc, from Debian's GStreamer packages.
pub fn gst_launch() -> PathBuf {
    let ok = |el: &str| {
        Command::new("gst-inspect-1.0")
            .arg(el)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        ok("rtmp2sink") && ok("x264enc") && ok("voaacenc"),
        "GStreamer missing: run `apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly` (bash tests/run.sh does it)"
    );
    PathBuf::from("gst-launch-1.0")
}

/// node, for the browser test.
pub fn node() -> PathBuf {
    from_env("PACKGATE_NODE")
        .or_else(|| Some(PathBuf::from("/usr/bin/node")).filter(|p| p.exists()))
        .unwrap_or_else(|| panic!("node not found: install Node.js (apt-get install nodejs)"))
}

/// The folder holding play.mjs and its node_modules.
pub fn browser_dir() -> PathBuf {
    let dir = from_env("PACKGATE_BROWSER_DIR")
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser"));
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core missing: run `(cd tests/browser && npm ci)` (bash tests/run.sh does it)"
    );
    assert!(
        PathBuf::from("/usr/bin/chromium").exists(),
        "Chromium missing: run `apt-get install chromium` (bash tests/run.sh does it)"
    );
    dir
}

/// redis-server from Debian's redis-server package (the cluster registry test).
pub fn redis_server() -> PathBuf {
    from_env("PACKGATE_REDIS_SERVER")
        .or_else(|| Some(PathBuf::from("/usr/bin/redis-server")).filter(|p| p.exists()))
        .unwrap_or_else(|| {
            panic!("redis-server not found: run `apt-get install redis-server` (bash tests/run.sh does it)")
        })
}

/// moto_server from the PyPI package moto[server]: an S3-protocol server on loopback for
/// the object-store test.
pub fn moto_server() -> PathBuf {
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join("moto_server"))
            .find(|p| p.exists())
    };
    from_env("PACKGATE_MOTO").or_else(on_path).unwrap_or_else(|| {
        panic!("moto_server not found: run `python3 -m pip install 'moto[server]'` (bash tests/run.sh does it)")
    })
}

/// nginx from Debian's package (the CDN test's cache in front of packgate).
pub fn nginx() -> PathBuf {
    from_env("PACKGATE_NGINX")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
        .unwrap_or_else(|| {
            panic!("nginx not found: run `apt-get install nginx` (bash tests/run.sh does it)")
        })
}

/// curl with HTTP/2 (nghttp2), from Debian's curl package.
pub fn curl() -> PathBuf {
    let ok = Command::new("curl")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("HTTP2"));
    assert!(
        ok,
        "curl with HTTP/2 missing: run `apt-get install curl` (bash tests/run.sh does it)"
    );
    PathBuf::from("curl")
}
