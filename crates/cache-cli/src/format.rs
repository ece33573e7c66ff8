//! Human output: IEC sizes, relative times, aligned tables.

use std::time::Duration;

use modelcache::{ByteSize, Timestamp};

/// `0 B`, `1.5 KiB`, `4 MiB` (IEC units, one decimal, rounded down).
pub(crate) fn size(bytes: u64) -> String {
    ByteSize::new(bytes).to_string()
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `12 days ago`, or `-` when unknown.
pub(crate) fn ago(t: Option<Timestamp>, now: Timestamp) -> String {
    let Some(t) = t else { return "-".to_owned() };
    let secs = t.elapsed_until(now).as_secs();
    match secs {
        0..5 => "just now".to_owned(),
        5..120 => format!("{secs} s ago"),
        120..7200 => format!("{} min ago", secs / 60),
        7200..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// `1.2 s`, `350 ms`.
pub(crate) fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{} ms", d.as_millis()) } else { format!("{:.1} s", d.as_secs_f64()) }
}

/// `1 file`, `2 files`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Column alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table with a header row; columns padded to their widest cell, two spaces apart, no
/// trailing spaces.
pub(crate) struct Table {
    header: Vec<&'static str>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(columns: &[(&'static str, Align)]) -> Self {
        Table { header: columns.iter().map(|c| c.0).collect(), align: columns.iter().map(|c| c.1).collect(), rows: Vec::new() }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let width = |i: usize| {
            self.rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).chain([self.header[i].len()]).max().unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                match self.align[i] {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_iec_and_times_relative() {
        assert_eq!([size(0), size(1536), size(4 << 20)], ["0 B", "1.5 KiB", "4 MiB"]);
        let now = Timestamp::from_unix_millis(1_000_000_000);
        let at = |s: u64| Some(now.saturating_sub(Duration::from_secs(s)));
        assert_eq!(
            [ago(None, now), ago(at(1), now), ago(at(42), now), ago(at(600), now), ago(at(10_800), now), ago(at(864_000), now)],
            ["-", "just now", "42 s ago", "10 min ago", "3 h ago", "10 days ago"]
        );
        assert_eq!(
            (duration(Duration::from_millis(350)), duration(Duration::from_millis(1250))),
            ("350 ms".into(), "1.2 s".into())
        );
        assert_eq!((count(1, "file", "files"), count(2, "file", "files")), ("1 file".into(), "2 files".into()));
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&[("ID", Align::Left), ("SIZE", Align::Right), ("PINNED", Align::Left)]);
        t.row(vec!["org/model".into(), "4 MiB".into(), "yes".into()]);
        t.row(vec!["a/b".into(), "12 B".into(), String::new()]);
        insta::assert_snapshot!(t.render(), @r"
        ID          SIZE  PINNED
        org/model  4 MiB  yes
        a/b         12 B
        ");
    }
}
