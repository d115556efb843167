//! `report.html` and `report.md`: self-contained, every chart inline, and rendered by a real
//! headless Chromium without errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Runs the default scenario into `dir` with a few trials.
fn run_default(dir: &Path) {
    Command::cargo_bin("aftershock")
        .unwrap()
        .args(["run", "--trials", "30", "--quiet", "--out"])
        .arg(dir)
        .assert()
        .success();
}

const CHARTS: [&str; 4] = ["availability", "load", "mttr", "comparison"];

#[test]
fn the_html_report_is_self_contained_and_embeds_every_chart() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_default(&out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for name in CHARTS {
        assert!(
            html.contains(&format!("<figure class=\"chart\" id=\"{name}\">")),
            "no {name} chart"
        );
        // The same chart is also written as files next to the report.
        assert!(out.join(format!("{name}.svg")).exists());
        assert!(out.join(format!("{name}.png")).exists());
    }
    // Nothing to fetch: no external scripts, styles or images.
    for needle in ["<link", "<img", "src=\"http", "href=\"http", "@import"] {
        assert!(!html.contains(needle), "report.html refers to {needle}");
    }
    for section in [
        "id=\"story\"",
        "id=\"graph\"",
        "id=\"ranking\"",
        "id=\"planes\"",
        "id=\"expectations\"",
        "id=\"metrics\"",
        "id=\"comparisons\"",
    ] {
        assert!(html.contains(section), "no {section} section");
    }
    // Every plan appears in the planes table and the metrics.
    for plan in ["all-at-once", "staged", "runbook"] {
        assert!(html.contains(&format!("<h3>{plan}")), "{plan}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.starts_with("# aftershock: db-cluster-outage"));
    assert!(md.contains("| traffic | `storm_peak_ratio` |"), "{md}");
    assert!(md.contains("![Availability"), "{md}");
    // Deterministic: the same run gives the same bytes.
    let again = tmp.path().join("again");
    run_default(&again);
    for f in [
        "report.html",
        "report.md",
        "availability.svg",
        "availability.png",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f} differs between two runs"
        );
    }
}

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| Path::new("/usr/bin").join(name))
        .find(|p| p.exists())
}

fn headless(browser: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .args(args)
        .output()
        .unwrap()
}

/// Opens report.html in headless Chromium: the page's own check script records, on `<body>`,
/// how many charts were laid out with a visible size and how many script errors happened.
/// Keeps a screenshot under `output/` as a test artefact. `.ci/run` installs Chromium and sets
/// `AFTERSHOCK_REQUIRE_CHROMIUM=1`, so in CI a missing browser is a failure, not a skip.
#[test]
fn the_html_report_renders_in_headless_chromium_with_every_chart_visible() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("AFTERSHOCK_REQUIRE_CHROMIUM").is_err(),
            "Chromium is required (AFTERSHOCK_REQUIRE_CHROMIUM is set) but not installed"
        );
        eprintln!("skipped: no Chromium (install Debian's `chromium` package to run this test)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_default(&out);
    let url = format!("file://{}", out.join("report.html").display());
    let dom = headless(&browser, &["--dump-dom", &url]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let body = &dom_text[dom_text.find("<body").expect("a body element")..];
    let body = &body[..body.find('>').unwrap()];
    assert!(
        body.contains("data-checked=\"yes\""),
        "the check script did not run: {body}"
    );
    assert!(body.contains("data-errors=\"0\""), "script errors: {body}");
    let total = format!("data-charts-total=\"{}\"", CHARTS.len());
    let visible = format!("data-charts-visible=\"{}\"", CHARTS.len());
    assert!(body.contains(&total), "{body}");
    assert!(
        body.contains(&visible),
        "not every chart is visible: {body}"
    );
    // The screenshot, kept as an artefact.
    let shot_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("output");
    let shot = shot_dir.join("report-screenshot.png");
    let tmp_shot = tmp.path().join("shot.png");
    let s = headless(
        &browser,
        &[
            &format!("--screenshot={}", tmp_shot.display()),
            "--window-size=1280,2400",
            &url,
        ],
    );
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let png = std::fs::read(&tmp_shot).unwrap();
    assert!(png.starts_with(&[0x89, b'P', b'N', b'G']));
    assert!(png.len() > 50_000, "a blank page? {} bytes", png.len());
    std::fs::create_dir_all(&shot_dir).unwrap();
    std::fs::write(&shot, png).unwrap();
}
