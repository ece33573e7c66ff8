//! Draws the scale curves of `cargo xtask bench` as one SVG: a log–log panel per curve,
//! each series as a line with its points, and a dashed line through the first point of
//! each panel growing linearly with the work, so a curve steeper than it stands out.
//!
//! `scalechart OUT.svg < DATA`, where each line of DATA is
//! `panel TAB x-label TAB series TAB x TAB seconds` (panels and series in order of first
//! appearance).
#![expect(clippy::print_stderr, reason = "a command-line helper")]

use std::io::Read as _;
use std::process::ExitCode;

use plotters::prelude::*;

/// One panel: its title, the x axis' label and its series (name, `(x, seconds)` points).
struct Panel {
    title: String,
    x_label: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

fn parse(text: &str) -> Result<Vec<Panel>, String> {
    let mut panels: Vec<Panel> = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [title, x_label, series, x, y] = fields[..] else {
            return Err(format!("line {}: expected 5 tab-separated fields", n + 1));
        };
        let num = |s: &str| s.trim().parse::<f64>().map_err(|e| format!("line {}: `{s}`: {e}", n + 1));
        let (x, y) = (num(x)?, num(y)?);
        if x <= 0.0 || y <= 0.0 {
            return Err(format!("line {}: a log scale needs positive values", n + 1));
        }
        let at = panels.iter().position(|p| p.title == title).unwrap_or_else(|| {
            panels.push(Panel { title: title.to_owned(), x_label: x_label.to_owned(), series: Vec::new() });
            panels.len() - 1
        });
        let panel = &mut panels[at];
        let line_at = panel.series.iter().position(|s| s.0 == series).unwrap_or_else(|| {
            panel.series.push((series.to_owned(), Vec::new()));
            panel.series.len() - 1
        });
        panel.series[line_at].1.push((x, y));
    }
    Ok(panels)
}

/// The smallest and largest of `values`, widened a little so points are not on the frame.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    (lo / 1.5, hi * 1.5)
}

fn draw(panels: &[Panel], out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rows = u32::try_from(panels.len().div_ceil(2)).unwrap_or(1).max(1);
    let root = SVGBackend::new(out, (1100, 420 * rows)).into_drawing_area();
    root.fill(&WHITE)?;
    let cols = if panels.len() > 1 { 2 } else { 1 };
    let areas = root.split_evenly((rows as usize, cols));
    let colors = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let points = || panel.series.iter().flat_map(|s| s.1.iter().copied());
        let (x0, x1) = range(points().map(|p| p.0));
        // The linear reference through the first point of the first series.
        let first = panel.series.first().and_then(|s| s.1.first().copied());
        let reference: Vec<(f64, f64)> = first.map(|(fx, fy)| vec![(fx, fy), (x1, fy * x1 / fx)]).unwrap_or_default();
        let (y0, y1) = range(points().map(|p| p.1).chain(reference.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(panel.x_label.as_str())
            .y_desc("seconds (median)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| if *y < 0.1 { format!("{:.1} ms", y * 1000.0) } else { format!("{y:.2} s") })
            .draw()?;
        for (i, (name, pts)) in panel.series.iter().enumerate() {
            let color = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        if !reference.is_empty() {
            let grey = RGBColor(150, 150, 150);
            chart
                .draw_series(DashedLineSeries::new(reference, 6, 4, grey.stroke_width(1)))?
                .label("linear growth")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: scalechart OUT.svg < DATA");
        return ExitCode::from(2);
    };
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("scalechart: reading the data: {e}");
        return ExitCode::FAILURE;
    }
    let panels = match parse(&text) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!("scalechart: no data");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("scalechart: {e}");
            return ExitCode::from(2);
        }
    };
    match draw(&panels, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scalechart: writing {out}: {e}");
            ExitCode::FAILURE
        }
    }
}
