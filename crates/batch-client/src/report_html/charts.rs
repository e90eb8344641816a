//! The charts of report.html, drawn with plotters' SVG backend: a line chart of one measure
//! against one varied parameter (one line per combination of the other varied parameters),
//! and a heatmap of one measure over a two-axis matrix.
//!
//! plotters draws the axes, ticks, grid, lines and heatmap cells, and maps values to pixels.
//! What it cannot draw is interactive: SVG `<title>` hover text. So each chart also returns
//! [`Mark`]s (points, failed jobs, heatmap cells) at the pixels plotters computed, which the
//! template draws over the plot with their hover titles.

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width and height of a line chart, px (small multiples: many fit side by side).
pub const LINE_SIZE: (u32, u32) = (250, 168);
/// Width and height of a heatmap, px.
pub const HEAT_SIZE: (u32, u32) = (270, 190);

/// Series colours (colour-blind friendly, distinct on white); they repeat past ten series.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (0x4e, 0x79, 0xa7),
    (0xf2, 0x8e, 0x2b),
    (0xe1, 0x57, 0x59),
    (0x76, 0xb7, 0xb2),
    (0x59, 0xa1, 0x4f),
    (0xed, 0xc9, 0x48),
    (0xb0, 0x7a, 0xa1),
    (0xff, 0x9d, 0xa7),
    (0x9c, 0x75, 0x5f),
    (0x79, 0x70, 0x6e),
];

/// `#rrggbb` of series `i`.
pub fn series_color(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// What a mark shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A job's value.
    Point,
    /// A job whose output is byte-identical to an earlier job's (hollow).
    Same,
    /// A failed job (a cross at the bottom of the chart).
    Failed,
    /// A heatmap cell's hover area.
    Cell,
}

/// Something the template draws over a plot, at pixel (x, y), with a hover title.
#[derive(Debug, Clone)]
pub struct Mark {
    pub x: i32,
    pub y: i32,
    /// Cell width and height (heatmaps only).
    pub w: i32,
    pub h: i32,
    pub kind: MarkKind,
    pub color: String,
    pub title: String,
}

/// One job's place in a line chart.
#[derive(Debug, Clone)]
pub struct LinePoint {
    /// Index of the parameter value on the x axis.
    pub x: usize,
    pub series: usize,
    /// `None` for a failed job.
    pub y: Option<f64>,
    pub kind: MarkKind,
    pub title: String,
}

/// A chart's SVG (from plotters) and the marks to draw over it.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub svg: String,
    pub marks: Vec<Mark>,
    pub width: u32,
    pub height: u32,
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// The y range shown for `values`: their span with a margin, never empty.
pub fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.1 } else { lo.abs().max(1.0) * 0.1 };
    let lo = if lo >= 0.0 { (lo - pad).max(0.0) } else { lo - pad };
    (lo, hi + pad)
}

/// A tick label: as many decimals as ticks a quarter of `span` apart need; thousands as `k`.
pub fn tick_label(v: f64, span: f64) -> String {
    if v.abs() >= 10_000.0 {
        return format!("{:.1}k", v / 1000.0);
    }
    let step = (span / 4.0).abs().max(1e-9);
    let decimals = (-step.log10().floor()).clamp(0.0, 4.0) as usize;
    format!("{v:.decimals$}")
}

/// A line chart: x = the parameter's values (evenly spaced, in order), y = the measure; one
/// line per series through its jobs' values, and a mark per job.
pub fn line_chart(x_labels: &[String], points: &[LinePoint], series: usize) -> Result<Drawn> {
    let (w, h) = LINE_SIZE;
    let (lo, hi) = y_range(points.iter().filter_map(|p| p.y));
    let n = x_labels.len().max(1) as i32;
    let mut svg = String::new();
    let mut marks = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(20)
            .y_label_area_size(40)
            .build_cartesian_2d((0..n - 1).into_segmented(), lo..hi)
            .map_err(plot_err)?;
        let x_text = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => x_labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let y_text = |v: &f64| tick_label(*v, hi - lo);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(x_labels.len())
            .y_labels(4)
            .x_label_formatter(&x_text)
            .y_label_formatter(&y_text)
            .label_style(("sans-serif", 12))
            // No tick marks: the grid lines and labels say the same, in fewer bytes.
            .set_all_tick_mark_size(0)
            .bold_line_style(RGBColor(232, 234, 237))
            .light_line_style(TRANSPARENT)
            .axis_style(RGBColor(150, 156, 164))
            .draw()
            .map_err(plot_err)?;
        for s in 0..series {
            let (r, g, b) = PALETTE[s % PALETTE.len()];
            let line = series_line(points, s, x_labels.len());
            if line.len() > 1 {
                let style = RGBColor(r, g, b).stroke_width(2);
                chart.draw_series(LineSeries::new(line, style)).map_err(plot_err)?;
            }
        }
        for p in points {
            let at = SegmentValue::CenterOf(p.x as i32);
            let (x, y) = chart.backend_coord(&(at, p.y.unwrap_or(lo)));
            // A failed job has no value: its cross sits just above the x axis.
            let y = if p.y.is_none() { y - 6 } else { y };
            let color = series_color(p.series);
            marks.push(Mark { x, y, w: 0, h: 0, kind: p.kind, color, title: p.title.clone() });
        }
        root.present().map_err(plot_err)?;
    }
    // Hollow "same output" rings first, so that a filled point at the same place shows
    // inside its ring; failures last, on top.
    marks.sort_by_key(|m| match m.kind {
        MarkKind::Same => 0,
        MarkKind::Point | MarkKind::Cell => 1,
        MarkKind::Failed => 2,
    });
    Ok(Drawn { svg, marks, width: w, height: h })
}

/// Series `s`'s line: at each x, the mean of its jobs' values there (jobs with the same
/// parameters, such as a baseline repeated in the grid, share a point).
fn series_line(points: &[LinePoint], s: usize, xs: usize) -> Vec<(SegmentValue<i32>, f64)> {
    (0..xs)
        .filter_map(|x| {
            let ys: Vec<f64> =
                points.iter().filter(|p| p.series == s && p.x == x).filter_map(|p| p.y).collect();
            (!ys.is_empty()).then(|| {
                (SegmentValue::CenterOf(x as i32), ys.iter().sum::<f64>() / ys.len() as f64)
            })
        })
        .collect()
}

/// One heatmap cell: its job's value (`None`: failed or missing) and hover title.
#[derive(Debug, Clone)]
pub struct Cell {
    pub col: usize,
    pub row: usize,
    pub value: Option<f64>,
    /// The value as the cell shows it (`failed`, `=` for identical outputs, ...).
    pub text: String,
    pub title: String,
}

/// A heatmap of one measure over a two-axis matrix: columns = the first axis's values, rows
/// = the second's; colour = the value on a viridis scale between the grid's min and max.
pub fn heatmap(cols: &[String], rows: &[String], cells: &[Cell]) -> Result<Drawn> {
    let (w, h) = HEAT_SIZE;
    let (nc, nr) = (cols.len().max(1) as i32, rows.len().max(1) as i32);
    let values: Vec<f64> = cells.iter().filter_map(|c| c.value).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut svg = String::new();
    let mut marks = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(20)
            .y_label_area_size(44)
            .build_cartesian_2d((0..nc - 1).into_segmented(), (0..nr - 1).into_segmented())
            .map_err(plot_err)?;
        let label = |names: &[String], v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let (x_text, y_text) = (|v: &SegmentValue<i32>| label(cols, v), |v: &_| label(rows, v));
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(cols.len())
            .y_labels(rows.len())
            .x_label_formatter(&x_text)
            .y_label_formatter(&y_text)
            .label_style(("sans-serif", 12))
            .set_all_tick_mark_size(0)
            .axis_style(RGBColor(150, 156, 164))
            .draw()
            .map_err(plot_err)?;
        for c in cells {
            let (x0, y0) = (SegmentValue::Exact(c.col as i32), SegmentValue::Exact(c.row as i32));
            let (x1, y1) =
                (SegmentValue::Exact(c.col as i32 + 1), SegmentValue::Exact(c.row as i32 + 1));
            let fill = cell_color(c.value, lo, hi);
            chart
                .draw_series([Rectangle::new(
                    [(x0.clone(), y0.clone()), (x1.clone(), y1.clone())],
                    fill.filled(),
                )])
                .map_err(plot_err)?;
            let center =
                (SegmentValue::CenterOf(c.col as i32), SegmentValue::CenterOf(c.row as i32));
            let ink = if luminance(fill) < 0.5 { WHITE } else { BLACK };
            let style = ("sans-serif", 13)
                .into_font()
                .color(&ink)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series([Text::new(c.text.clone(), center, style)]).map_err(plot_err)?;
            let (px0, py0) = chart.backend_coord(&(x0, y1));
            let (px1, py1) = chart.backend_coord(&(x1, y0));
            marks.push(Mark {
                x: px0,
                y: py0,
                w: px1 - px0,
                h: py1 - py0,
                kind: MarkKind::Cell,
                color: String::new(),
                title: c.title.clone(),
            });
        }
        root.present().map_err(plot_err)?;
    }
    Ok(Drawn { svg, marks, width: w, height: h })
}

/// Viridis between the grid's min and max; light grey for a cell without a value.
fn cell_color(value: Option<f64>, lo: f64, hi: f64) -> RGBColor {
    match value {
        None => RGBColor(225, 228, 232),
        Some(v) => {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            ViridisRGB::get_color_normalized(t, 0.0, 1.0)
        }
    }
}

fn luminance(c: RGBColor) -> f64 {
    (0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2)) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_have_the_decimals_their_spacing_needs() {
        assert_eq!(tick_label(1043.0, 900.0), "1043");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(12.5, 2.0), "12.5");
        assert_eq!(tick_label(25_000.0, 9000.0), "25.0k");
        assert_eq!(y_range([5.0, 5.0].into_iter()), (4.5, 5.5));
        assert_eq!(y_range(std::iter::empty()), (0.0, 1.0));
    }

    #[test]
    fn a_line_chart_marks_every_job_and_draws_a_line_per_series() {
        let labels: Vec<String> = ["20", "50", "100"].map(String::from).to_vec();
        let p =
            |x, series, y, kind| LinePoint { x, series, y, kind, title: format!("j{x}{series}") };
        let points = [
            p(0, 0, Some(900.0), MarkKind::Point),
            p(1, 0, Some(600.0), MarkKind::Point),
            p(2, 0, None, MarkKind::Failed),
            p(0, 1, Some(800.0), MarkKind::Point),
            p(1, 1, Some(800.0), MarkKind::Same),
        ];
        let d = line_chart(&labels, &points, 2).unwrap();
        let kinds: Vec<MarkKind> = d.marks.iter().map(|m| m.kind).collect();
        use MarkKind::*;
        assert_eq!(kinds, [Same, Point, Point, Point, Failed], "rings below, crosses on top");
        assert_eq!(
            d.svg.matches("<polyline fill=\"none\" opacity=\"1\" stroke=\"#4E79A7\"").count(),
            1
        );
        // Larger values are higher up; the failed job sits at the bottom.
        let at = |t: &str| d.marks.iter().find(|m| m.title == t).map(|m| (m.x, m.y)).unwrap();
        let (a, b, c) = (at("j00"), at("j10"), at("j20"));
        assert!(a.1 < b.1 && c.1 > b.1);
        assert!(a.0 < b.0 && b.0 < c.0);
    }

    #[test]
    fn a_heatmap_has_a_cell_per_job() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cell = |col, row, value: Option<f64>| Cell {
            col,
            row,
            value,
            text: value.map(|v| v.to_string()).unwrap_or("failed".into()),
            title: String::new(),
        };
        let cells =
            [cell(0, 0, Some(1.0)), cell(1, 0, Some(2.0)), cell(0, 1, None), cell(1, 1, Some(3.0))];
        let d = heatmap(&names(&["a", "b"]), &names(&["x", "y"]), &cells).unwrap();
        assert_eq!(d.marks.len(), 4);
        assert!(d.marks.iter().all(|m| m.w > 0 && m.h > 0));
        assert!(d.svg.contains("failed"));
    }
}
