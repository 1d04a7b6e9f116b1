//! The latency-over-time PNG of a soak, drawn from its `report.json` alone (so that a report from
//! another machine can be drawn again): p50, p99 and max per second on a log scale, with the
//! rate completed and the errors per second below it, and the fault windows shaded.
//!
//! Owns the drawing. Text is rendered from a font embedded in the binary (DejaVu Sans Mono,
//! `benches/assets/`), never from system fonts, which a CI box or a container may not have.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::report::Report;

/// The embedded font, under the name the chart asks for.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");
const FAMILY: &str = "soak-mono";

/// Why the PNG could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {why}")]
pub struct PlotError {
    path: String,
    why: String,
}

fn register_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font does not load".to_owned())
        })
        .clone()
}

/// Draws `report`'s time series into the PNG at `path` (1200 × 800).
pub fn draw(report: &Report, path: &Path) -> Result<(), PlotError> {
    let err = |why: String| PlotError {
        path: path.display().to_string(),
        why,
    };
    register_font().map_err(err)?;
    draw_inner(report, path).map_err(|e| err(e.to_string()))
}

fn draw_inner(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let series = &report.measured.series;
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(520);
    let t_max = series.last().map_or(1.0, |s| s.t_s).max(1.0);
    let highest = series
        .iter()
        .map(|s| s.max_ms)
        .fold(1.0_f64, f64::max)
        .max(10.0);
    let rate = report
        .asked
        .rate
        .map_or_else(|| "max".to_owned(), |r| format!("{r}/s"));
    let title = format!(
        "soak {rate}, {:.0} s, mix {}: latency per second (ms, log)",
        report.elapsed_s, report.asked.mix
    );
    let mut latency = ChartBuilder::on(&top)
        .caption(title, (FAMILY, 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, (0.05..highest * 1.2).log_scale())?;
    latency
        .configure_mesh()
        .x_desc("s")
        .y_desc("ms")
        .label_style((FAMILY, 12))
        .draw()?;
    for fault in &report.asked.faults {
        let (from, to) = (fault.at_s, fault.at_s + fault.for_s.max(t_max / 200.0));
        latency.draw_series(std::iter::once(Rectangle::new(
            [(from, 0.05), (to, highest * 1.2)],
            RGBColor(255, 200, 200).mix(0.4).filled(),
        )))?;
    }
    type Value = fn(&super::report::Second) -> f64;
    let lines: [(&str, RGBColor, Value); 3] = [
        ("p50", BLUE, |s| s.p50_ms),
        ("p99", RGBColor(220, 120, 0), |s| s.p99_ms),
        ("max", RED, |s| s.max_ms),
    ];
    let lines = lines.map(|(name, color, value)| {
        let points = series
            .iter()
            .filter(|s| s.done > 0)
            .map(|s| (s.t_s, value(s).max(0.05)))
            .collect();
        (name, color, points)
    });
    draw_lines(&mut latency, lines)?;

    let busiest = series.iter().map(|s| s.done).max().unwrap_or(1).max(1) as f64;
    let mut counts = ChartBuilder::on(&bottom)
        .caption(
            "operations completed and errors per second (faults shaded above)",
            (FAMILY, 14),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..busiest * 1.1)?;
    counts
        .configure_mesh()
        .x_desc("s")
        .y_desc("per s")
        .label_style((FAMILY, 12))
        .draw()?;
    let lines: [(&str, RGBColor, Value); 2] = [
        ("completed", GREEN, |s| s.done as f64),
        ("errors", RED, |s| s.errors as f64),
    ];
    draw_lines(
        &mut counts,
        lines.map(|(name, color, value)| {
            (
                name,
                color,
                series.iter().map(|s| (s.t_s, value(s))).collect(),
            )
        }),
    )?;
    root.present()?;
    Ok(())
}

/// Each named line, and the legend of all of them.
fn draw_lines<'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    lines: impl IntoIterator<Item = (&'static str, RGBColor, Vec<(f64, f64)>)>,
) -> Result<(), Box<dyn std::error::Error>> {
    for (name, color, points) in lines {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
