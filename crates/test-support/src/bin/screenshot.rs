//! `screenshot FILE.html[#fragment] OUT.png [WIDTHxHEIGHT]`: a PNG of a page (report.html, a
//! skeleton viewer) in headless Chromium, through the DevTools driver the tests use; what
//! `scripts/screenshot.sh` runs. A fragment is kept: `viewer.html#q=bullfrog` shows the viewer
//! searched for bullfrog, scrolled to the first match.

use std::path::PathBuf;
use std::process::ExitCode;

use test_support::chromium::{chromium_path, Browser};

const USAGE: &str =
    "usage: screenshot FILE.html[#fragment] OUT.png [WIDTHxHEIGHT] (default 1280x1600)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("screenshot: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let (page, out, size) = match args.as_slice() {
        [page, out] => (page, out, "1280x1600"),
        [page, out, size] => (page, out, size.as_str()),
        _ => return Err(USAGE.into()),
    };
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|&(w, h)| w > 0 && h > 0)
        .ok_or_else(|| format!("size {size:?} is not WIDTHxHEIGHT, e.g. 1280x1600"))?;
    let (file, fragment) = match page.split_once('#') {
        Some((f, frag)) => (PathBuf::from(f), format!("#{frag}")),
        None => (PathBuf::from(page), String::new()),
    };
    if !file.is_file() {
        return Err(format!("no such file: {}", file.display()));
    }
    if chromium_path().is_none() {
        return Err("Chromium is not installed: run scripts/setup.sh chromium".into());
    }
    let mut browser = Browser::launch();
    browser.set_viewport(width, height);
    browser.open(&file, &fragment);
    // Let the page's own script (a search from the fragment) settle before the capture.
    std::thread::sleep(std::time::Duration::from_millis(400));
    let png = browser.screenshot();
    std::fs::write(out, png).map_err(|e| format!("{out}: {e}"))?;
    println!("wrote {out} ({width}x{height})");
    Ok(())
}
