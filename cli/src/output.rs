//! How things are shown: tables, colours (only on a terminal, never with NO_COLOR),
//! times, sizes, progress bars (only on a terminal), the one-line error.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressStyle};

pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const RED: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red))).bold();
pub const YELLOW: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow))).bold();
pub const GREEN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
pub const BLUE: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
pub const PLAIN: Style = Style::new();

/// `text` in `style` (the escape codes are dropped by the stream when not on a terminal).
pub fn paint(style: Style, text: &str) -> String {
    if style == PLAIN {
        return text.to_owned();
    }
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// Standard output, colour codes stripped unless it is a terminal that wants them.
pub fn stdout() -> anstream::AutoStream<std::io::StdoutLock<'static>> {
    anstream::AutoStream::auto(std::io::stdout().lock())
}

/// Prints the one-line error to standard error.
pub fn error_line(message: &str) -> std::io::Result<()> {
    let mut err = anstream::AutoStream::auto(std::io::stderr().lock());
    writeln!(err, "{} {message}", paint(RED, "tokencache: error:"))
}

/// Prints `value` as pretty JSON on standard output.
pub fn json(value: &serde_json::Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// One cell: text and style.
pub struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Self {
        Cell { text: text.into(), style: PLAIN }
    }

    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Cell { text: text.into(), style }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::new(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::new(s)
    }
}

/// Rows under a header, columns aligned; numbers right-aligned.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table; a header starting with `>` is a right-aligned column.
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.text.chars().count());
            }
        }
        let line = |cells: Vec<(String, Style)>, out: &mut dyn Write| -> std::io::Result<()> {
            let mut s = String::from("  ");
            for (i, (text, style)) in cells.into_iter().enumerate() {
                let pad = widths[i].saturating_sub(text.chars().count());
                let last = i + 1 == n;
                if self.right[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(&paint(style, &text));
                } else {
                    s.push_str(&paint(style, &text));
                    if !last {
                        s.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    s.push_str("  ");
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
        line(self.headers.iter().map(|h| (h.to_string(), BOLD)).collect(), out)?;
        for r in &self.rows {
            line(r.iter().map(|c| (c.text.clone(), c.style)).collect(), out)?;
        }
        Ok(())
    }
}

/// A section title.
pub fn title(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    writeln!(out, "\n{}", paint(BOLD, text))
}

/// `bytes` for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn size(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A Unix time as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub fn utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A duration in seconds as `45s`, `12m`, `5h`, `3d`.
pub fn span(secs: i64) -> String {
    let s = secs.abs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// An expiry relative to `now`: `2023-11-14 22:13:20Z (in 59m)` or `(expired 3d ago)`.
pub fn expiry(t: i64, now: i64) -> String {
    if t < now {
        format!("{} (expired {} ago)", utc(t), span(now - t))
    } else {
        format!("{} (in {})", utc(t), span(t - now))
    }
}

/// A progress bar on standard error, drawn only on a terminal; sized on first use.
pub struct Progress {
    label: &'static str,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        Progress { label, bar: None }
    }

    /// Records that `done` of `total` items are done.
    pub fn update(&mut self, done: u64, total: u64) {
        let label = self.label;
        let bar = self.bar.get_or_insert_with(|| {
            if !std::io::stderr().is_terminal() {
                return ProgressBar::hidden();
            }
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(label);
            bar
        });
        bar.set_length(total);
        bar.set_position(done);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(expiry(1_700_003_600, 1_700_000_000), "2023-11-14 23:13:20Z (in 1h)");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(10), "10 B");
    }
}
